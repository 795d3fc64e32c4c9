/**
 * The core's own building blocks this package reuses: its backoff (exponential, full jitter,
 * `Retry-After`, bounded attempts and time) and its single-flight (one task per key, a caller's
 * signal stopping only its own wait). `@dashscope-token/core/neutral` does not export them yet;
 * until it does, this one module takes them from the core's source, and the build bundles them
 * (runtime-neutral: no `node:` import). Nothing else in this package reaches into the core's
 * source.
 */
export { resolveRetryOptions, retrying } from '../../core/src/retry.js';
export { SingleFlight, waitWithSignal } from '../../core/src/token/single-flight.js';

/**
 * The core's backoff (exponential, full jitter, `Retry-After`, bounded attempts and time).
 * `@dashscope-token/core` does not export it from its entry point yet; until its runtime-neutral
 * entry (`@dashscope-token/core/neutral`, issue 11) does, this one module takes it from the core's
 * source, and the build bundles it. Nothing else in this package reaches into the core's source.
 */
export { resolveRetryOptions, retrying } from '../../core/src/retry.js';

/**
 * The core's backoff (exponential, full jitter, `Retry-After`, bounded attempts and time).
 * `@dashscope-token/core/neutral` exports only its defaults (`DEFAULT_RETRY`) so far; until it
 * exports `retrying` and `resolveRetryOptions`, this one module takes them from the core's
 * source, and the build bundles them (runtime-neutral: no `node:` import). Nothing else in this
 * package reaches into the core's source.
 */
export { resolveRetryOptions, retrying } from '../../core/src/retry.js';

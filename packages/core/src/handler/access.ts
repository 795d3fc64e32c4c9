import { DashScopeError, isDashScopeError } from '../errors.js';
import { type ErrorAnswer, INTERNAL_ERROR } from './error-response.js';
import type { AuthorizeResult, DashScopeHandlerOptions } from './types.js';

const FORBIDDEN: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Access denied.',
});

/** The answer for an error thrown by `authorize` or `apiKey`: its own when it is a DashScopeError. */
export function hookErrorAnswer(error: unknown): ErrorAnswer {
  if (!isDashScopeError(error)) return INTERNAL_ERROR;
  const status = error.status >= 400 && error.status <= 599 ? error.status : 500;
  const answer: ErrorAnswer = { status, code: error.code, message: error.message };
  if (error.retryAfterSeconds !== undefined) answer.retryAfterSeconds = error.retryAfterSeconds;
  return answer;
}

function refusal(result: AuthorizeResult | null): ErrorAnswer | undefined {
  if (result === true || result === undefined) return undefined;
  if (typeof result === 'object' && result !== null && result.status === 401) {
    return {
      status: 401,
      code: 'Unauthorized',
      message: typeof result.message === 'string' ? result.message : 'Authentication required.',
      headers: { 'www-authenticate': 'Bearer' },
    };
  }
  if (typeof result === 'object' && result !== null && typeof result.message === 'string') {
    return { ...FORBIDDEN, message: result.message };
  }
  // false, {status: 403}, and anything unexpected (fail closed).
  return FORBIDDEN;
}

/**
 * Runs `authorize` for a request. `true`/`undefined` allow; `false` → 403; `{status: 401}` → 401
 * (with `WWW-Authenticate: Bearer`); `{status: 403}` or any other value → 403. A thrown
 * DashScopeError answers with its own status and code; anything else thrown → 500 without its
 * message.
 *
 * @returns the refusal to answer with, or `undefined` when allowed
 */
export async function checkAccess<Ctx>(
  authorize: DashScopeHandlerOptions<Ctx>['authorize'],
  ctx: Ctx,
): Promise<ErrorAnswer | undefined> {
  if (authorize === undefined) return undefined;
  try {
    return refusal((await authorize(ctx)) as AuthorizeResult | null);
  } catch (error) {
    return hookErrorAnswer(error);
  }
}

function missingApiKey(): DashScopeError {
  return new DashScopeError({
    code: 'MissingApiKey',
    status: 500,
    retryable: false,
    message: 'No Model Studio API key is configured for this request.',
  });
}

/**
 * The permanent key for a request: the `apiKey` option (or its result for `ctx`), else
 * `DASHSCOPE_API_KEY`.
 * @throws DashScopeError `MissingApiKey` (500) when there is none: a server configuration problem,
 *   not the client's (refuse clients with `authorize` instead). Errors thrown by an `apiKey`
 *   function are re-thrown.
 */
export async function resolveApiKey<Ctx>(
  apiKey: DashScopeHandlerOptions<Ctx>['apiKey'],
  ctx: Ctx,
): Promise<string> {
  const key =
    typeof apiKey === 'function'
      ? await apiKey(ctx)
      : apiKey !== undefined
        ? apiKey
        : process.env.DASHSCOPE_API_KEY;
  if (typeof key !== 'string' || key === '') throw missingApiKey();
  return key;
}

function checkedKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') throw missingApiKey();
  return key;
}

/**
 * {@link resolveApiKey} without a promise when none is needed (the hot path of the proxy): the
 * key itself for a configured key, `DASHSCOPE_API_KEY`, or an `apiKey` function that answers
 * synchronously; a promise only when the function returns one. Same errors, thrown (or
 * rejected) the same way.
 */
export function resolveApiKeyNow<Ctx>(
  apiKey: DashScopeHandlerOptions<Ctx>['apiKey'],
  ctx: Ctx,
): string | Promise<string> {
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  if (typeof apiKey !== 'function') {
    return checkedKey(apiKey !== undefined ? apiKey : process.env.DASHSCOPE_API_KEY);
  }
  const key: unknown = apiKey(ctx);
  if (
    key !== null &&
    typeof key === 'object' &&
    typeof (key as PromiseLike<unknown>).then === 'function'
  ) {
    return Promise.resolve(key as PromiseLike<unknown>).then(checkedKey);
  }
  return checkedKey(key);
}

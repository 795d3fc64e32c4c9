/**
 * Admission, the same for every route and every runtime: `authorize` → the permanent key for
 * the request → a temporary key, each step either going on or giving the answer to refuse with.
 */
import { processEnv } from '../env.js';
import { missingKeyError } from '../token/errors.js';
import type { GetTokenOptions, TemporaryToken, TokenProvider } from '../types.js';
import { CLIENT_GONE, type ErrorAnswer, failureAnswer } from './answers.js';
import type { ClientIdentity } from './client-identity.js';
import type { ApiKeyOption, AuthorizeOption, AuthorizeResult, Identity } from './options.js';
import type { RemintLimiter } from './remint.js';

/** What admission needs from the resolved options. */
export interface AccessPolicy<Ctx> {
  apiKey: ApiKeyOption<Ctx> | undefined;
  authorize: AuthorizeOption<Ctx> | undefined;
  /** Longest wait for `authorize` and `apiKey` together, ms (`hookTimeoutMs`); 0 = none. */
  hookTimeoutMs: number;
}

/** An admitted request: its permanent key (stays on the server), and who it is from. */
export interface Admitted {
  apiKey: string;
  /** The identity `authorize` returned, if any. */
  identity?: Identity;
  /**
   * Who the request counts against, worked out once per request by `clientIdentity` (so that
   * `limits.key` is called once, whichever of limits, concurrency, budgets and metering asks).
   */
  client?: ClientIdentity;
}

/** A refused request: the answer to give. */
export interface Refused {
  refused: ErrorAnswer;
}

const FORBIDDEN: ErrorAnswer = Object.freeze({
  status: 403,
  code: 'AccessDenied',
  message: 'Access denied.',
});

/** The identity in an `authorize` result: an object with a non-empty string `id`, no `status`. */
function identityOf(result: unknown): Identity | undefined {
  if (typeof result !== 'object' || result === null || 'status' in result) return undefined;
  const id = (result as { id?: unknown }).id;
  return typeof id === 'string' && id !== '' ? { id } : undefined;
}

function refusal(answer: AuthorizeResult | null): ErrorAnswer | undefined {
  if (answer === true || answer === undefined) return undefined;
  if (identityOf(answer) !== undefined) return undefined;
  const result = answer as boolean | null | { status?: number; message?: unknown };
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

/** `DASHSCOPE_API_KEY`, where the runtime has an environment. */
function environmentKey(): string | undefined {
  return processEnv().DASHSCOPE_API_KEY;
}

function checkedKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') throw missingKeyError();
  return key;
}

function isPromise(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * The permanent key for a request: the `apiKey` option (or its result for `ctx`), else
 * `DASHSCOPE_API_KEY`; without a promise when none is needed (the proxy's hot path).
 * @throws DashScopeError `MissingApiKey` (500) when there is none. Errors thrown by an `apiKey`
 *   function are re-thrown (or rejected).
 */
export function resolveApiKey<Ctx>(
  apiKey: ApiKeyOption<Ctx> | undefined,
  ctx: Ctx,
): string | Promise<string> {
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  if (typeof apiKey !== 'function') {
    return checkedKey(apiKey !== undefined ? apiKey : environmentKey());
  }
  const key: unknown = apiKey(ctx);
  if (isPromise(key)) return Promise.resolve(key).then(checkedKey);
  return checkedKey(key);
}

async function keyAfterAuthorize<Ctx>(
  access: AccessPolicy<Ctx>,
  ctx: Ctx,
  authorized: Promise<unknown>,
): Promise<Admitted | Refused> {
  let result: AuthorizeResult | null;
  try {
    result = (await authorized) as AuthorizeResult | null;
  } catch (error) {
    return { refused: failureAnswer(error, 'hook') };
  }
  const refused = refusal(result);
  if (refused !== undefined) return { refused };
  return keyOf(access, ctx, identityOf(result));
}

function keyOf<Ctx>(
  access: AccessPolicy<Ctx>,
  ctx: Ctx,
  identity?: Identity,
): Admitted | Refused | Promise<Admitted | Refused> {
  let key: string | Promise<string>;
  try {
    key = resolveApiKey(access.apiKey, ctx);
  } catch (error) {
    return { refused: failureAnswer(error, 'hook') };
  }
  if (typeof key === 'string')
    return identity === undefined ? { apiKey: key } : { apiKey: key, identity };
  return key.then(
    (apiKey) => (identity === undefined ? { apiKey } : { apiKey, identity }),
    (error: unknown) => ({ refused: failureAnswer(error, 'hook') }),
  );
}

/**
 * Runs `authorize` for `ctx`, then resolves its permanent key. `true`/`undefined` allow;
 * `{ id }` allows as that identity;
 * `false` → 403; `{status: 401}` → 401 (with `WWW-Authenticate: Bearer`); `{status: 403}` or any
 * other value → 403. A thrown DashScopeError (from either hook) answers with its own status and
 * code; anything else thrown → 500 without its message. Synchronous when neither hook needs a
 * promise (no `authorize`, a configured key).
 */
export function admit<Ctx>(
  access: AccessPolicy<Ctx>,
  ctx: Ctx,
): Admitted | Refused | Promise<Admitted | Refused> {
  if (access.authorize === undefined) return keyOf(access, ctx);
  let result: unknown;
  try {
    result = access.authorize(ctx);
  } catch (error) {
    return { refused: failureAnswer(error, 'hook') };
  }
  if (isPromise(result)) return keyAfterAuthorize(access, ctx, Promise.resolve(result));
  const refused = refusal(result as AuthorizeResult | null);
  if (refused !== undefined) return { refused };
  return keyOf(access, ctx, identityOf(result));
}

const HOOK_TIMEOUT: ErrorAnswer = Object.freeze({
  status: 504,
  code: 'Timeout',
  message: 'The request could not be authorised in time.',
});

/**
 * Bounds an admission that is waiting for `authorize` or `apiKey`: refused with 504 `Timeout`
 * after `access.hookTimeoutMs`, and abandoned as soon as `signal` aborts (the client left), so
 * that a hook that never settles holds neither the request nor a WebSocket session slot. (The
 * hook's own promise cannot be cancelled; its late result is ignored.)
 */
export function boundAdmission<Ctx>(
  access: AccessPolicy<Ctx>,
  pending: Promise<Admitted | Refused>,
  signal: AbortSignal | undefined,
): Promise<Admitted | Refused> {
  const timeoutMs = access.hookTimeoutMs;
  if (timeoutMs <= 0 && signal === undefined) return pending;
  if (signal?.aborted) return Promise.resolve({ refused: CLIENT_GONE });
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (outcome: Admitted | Refused) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = () => done({ refused: CLIENT_GONE });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs > 0) timer = setTimeout(() => done({ refused: HOOK_TIMEOUT }), timeoutMs);
    pending.then(done);
  });
}

/**
 * A temporary key from `provider`, or the answer for the failure (see `failureAnswer`, site
 * `token`; the permanent key is redacted from any message).
 */
export async function obtainToken(
  provider: TokenProvider,
  call: GetTokenOptions & { apiKey: string },
): Promise<TemporaryToken | Refused> {
  try {
    return await provider.getToken(call);
  } catch (error) {
    return { refused: failureAnswer(error, 'token', [call.apiKey]) };
  }
}

/** No replay after a 401: re-mints for this key are rate-limited; answer the 401 without one. */
export interface NoReplay {
  noReplay: true;
}

const NO_REPLAY: NoReplay = Object.freeze({ noReplay: true });

/**
 * A key to replay with after `rejected` got an upstream 401. When another request already
 * replaced the cached key, that one is used without minting again; otherwise the cached key is
 * invalidated and a new one minted (concurrent callers share that mint), at most once per key
 * per `REMINT_INTERVAL_MS` (`remints`): beyond, {@link NoReplay} (the 401 is answered without a replay).
 */
export async function tokenAfterUnauthorized(
  provider: TokenProvider,
  apiKey: string,
  rejected: string,
  minValiditySeconds: number,
  remints: RemintLimiter,
  signal?: AbortSignal,
): Promise<TemporaryToken | Refused | NoReplay> {
  const call = { apiKey, minValiditySeconds, ...(signal !== undefined && { signal }) };
  const current = await obtainToken(provider, call);
  if ('refused' in current || current.token !== rejected) return current;
  if (!remints.allow(apiKey)) return NO_REPLAY;
  provider.invalidate(apiKey);
  return obtainToken(provider, call);
}

/**
 * `handler.getToken(ctx, opts)`: a key for the app's own server-side calls, from the proxy's
 * provider, for `ctx`'s permanent key (no `authorize`: the app asks, not a client).
 * @throws DashScopeError `MissingApiKey`, or the provider's error.
 */
export async function appToken<Ctx>(
  access: AccessPolicy<Ctx> & { minValiditySeconds: number },
  provider: TokenProvider,
  ctx: Ctx,
  opts: { minValiditySeconds?: number; forceRefresh?: boolean; signal?: AbortSignal },
): Promise<TemporaryToken> {
  const apiKey = await resolveApiKey(access.apiKey, ctx);
  return provider.getToken({
    apiKey,
    minValiditySeconds: opts.minValiditySeconds ?? access.minValiditySeconds,
    ...(opts.forceRefresh !== undefined && { forceRefresh: opts.forceRefresh }),
    ...(opts.signal !== undefined && { signal: opts.signal }),
  });
}

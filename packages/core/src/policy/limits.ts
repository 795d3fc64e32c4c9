/**
 * Per-client limits: separate budgets for the token route, the proxy and WebSocket session
 * starts, keyed by the client (its identity from `authorize`, else its address), checked after
 * admission and before anything is sent upstream. Counted in a fixed window per key, in memory
 * by default, or in the shared store when it offers a rate limiter (`@dashscope-token/redis`:
 * `rate-limiter-flexible`'s `RateLimiterRedis`, one Lua script per check), so one budget holds
 * across every instance. A store that fails or is slow is not an outage: the check falls back
 * to the local counters. Runtime-neutral.
 */
import type { DashScopeError } from '../errors.js';
import { DEFAULT_STORE_TIMEOUT_MS, failed, StoreGuard } from '../store/guard.js';
import { invalidOption } from '../token/errors.js';
import { type AccessPolicy, type Admitted, admit, type Refused } from './admission.js';
import { type ErrorAnswer, failureAnswer } from './answers.js';
import type { Budgets } from './budgets.js';
import { clientIdentity } from './client-identity.js';
import {
  ClientConcurrency,
  type ConcurrencyStats,
  resolveConcurrentRequests,
} from './concurrency.js';
import { requestModel } from './meter.js';
import { bodyJson, type ReadBody } from './proxy.js';
import type { LimitHitMessage, Telemetry } from './telemetry.js';

/** One budget: `points` requests per `durationSeconds` window, per client. */
export interface LimitRule {
  /** Requests allowed in one window (an integer >= 1). */
  points: number;
  /** Length of the window, seconds (an integer >= 1); it starts with a client's first request. */
  durationSeconds: number;
}

/** The three budgets a handler keeps. */
export type LimitedRoute = 'tokenRoute' | 'proxy' | 'websocket';

/** The `limits` option. */
export interface LimitsOptions<Ctx> {
  /**
   * `POST {prefix}/token` per client, or `false` for none.
   * @default { points: 60, durationSeconds: 60 }
   */
  tokenRoute?: LimitRule | false;
  /**
   * Proxied HTTP requests per client, or `false` for none.
   * @default { points: 600, durationSeconds: 60 }
   */
  proxy?: LimitRule | false;
  /**
   * WebSocket session starts (upgrades) per client, or `false` for none.
   * @default { points: 30, durationSeconds: 60 }
   */
  websocket?: LimitRule | false;
  /**
   * Proxied HTTP requests (streams included, PAI-EAS service calls too) one client may have in
   * progress at once, per handler instance, or `false` for no maximum. One more is answered
   * 429 `Throttling.ClientConcurrency` (retryable, `Retry-After: 1`) and nothing is sent
   * upstream. Keep it well below `proxy.connections`, so that no one client can hold the
   * upstream pool. WebSocket sessions do not count here (they have `websocket.maxSessions`).
   * @default 16
   */
  concurrentRequests?: number | false;
  /**
   * The client a request counts against. Returning `undefined` (or `''`) uses the default.
   * Called once per request: the same client counts for the rate, `concurrentRequests`,
   * `budgets` (unless `budgets.key`) and the `identity` of usage events.
   * @default the `id` `authorize` returned, else the client address (Express `req.ip`, Koa
   *   `ctx.ip`, Fastify `request.ip`, node:http the socket address, Fetch the `clientAddress`
   *   the runtime passes or `clientAddressHeader`)
   */
  key?: (ctx: Ctx) => string | undefined;
  /**
   * A request header that holds the client address, for a handler behind a proxy that sets it
   * (`cf-connecting-ip`, `x-real-ip`, `x-forwarded-for`: its last entry is used, the one your
   * proxy appended). Only set it when such a proxy is always in front: a client can send any
   * header.
   * @default undefined (the address the framework or runtime gives)
   */
  clientAddressHeader?: string;
}

/** Default budget of the token route: a page load or two per second per client. */
export const DEFAULT_TOKEN_ROUTE_LIMIT: LimitRule = Object.freeze({
  points: 60,
  durationSeconds: 60,
});
/** Default budget of the proxy per client. */
export const DEFAULT_PROXY_LIMIT: LimitRule = Object.freeze({ points: 600, durationSeconds: 60 });
/** Default budget of WebSocket session starts per client. */
export const DEFAULT_WEBSOCKET_LIMIT: LimitRule = Object.freeze({
  points: 30,
  durationSeconds: 60,
});

/** One check's outcome. */
export interface RateLimitDecision {
  allowed: boolean;
  /** Milliseconds until the client's window ends. */
  msBeforeNext: number;
}

/** A counter of one budget: one atomic operation per `consume`. */
export interface RateLimiter {
  consume(key: string): RateLimitDecision | Promise<RateLimitDecision>;
}

/**
 * What a shared store offers when it can also keep limits (`@dashscope-token/redis` does):
 * a counter per budget, shared by every instance on the store.
 */
export interface RateLimitStore {
  createRateLimiter(options: { name: string } & LimitRule): RateLimiter;
}

/** Counters of the limits, in the handler's `stats().limits`. */
export interface LimitStats {
  /** Requests admitted, per budget. */
  allowed: Record<LimitedRoute, number>;
  /** Requests answered 429, per budget. */
  limited: Record<LimitedRoute, number>;
  /** Shared-store checks that failed or timed out (decided by the local counters instead). */
  storeErrors: number;
  /** Whether the limits are kept in a shared store. */
  shared: boolean;
  /** Proxied requests in progress (`limits.concurrentRequests`); absent when `false`. */
  concurrency?: ConcurrencyStats;
}

/** Keys the memory counters sweep expired windows beyond. */
const SWEEP_AT = 10_000;

/**
 * A fixed window per key in memory, the semantics of `rate-limiter-flexible`'s
 * `RateLimiterMemory` (the window starts at a key's first request; every request counts, those
 * over the budget too) without its Node-only entry point.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { consumed: number; endsAt: number }>();
  readonly #points: number;
  readonly #durationMs: number;
  #sweepAt = SWEEP_AT;

  constructor(
    rule: LimitRule,
    private readonly now: () => number = Date.now,
  ) {
    this.#points = rule.points;
    this.#durationMs = rule.durationSeconds * 1000;
  }

  consume(key: string): RateLimitDecision {
    const t = this.now();
    let window = this.#windows.get(key);
    if (window === undefined || window.endsAt <= t) {
      if (window === undefined && this.#windows.size >= this.#sweepAt) this.#sweep(t);
      window = { consumed: 0, endsAt: t + this.#durationMs };
      this.#windows.set(key, window);
    }
    window.consumed++;
    return { allowed: window.consumed <= this.#points, msBeforeNext: window.endsAt - t };
  }

  #sweep(t: number): void {
    for (const [key, window] of this.#windows) {
      if (window.endsAt <= t) this.#windows.delete(key);
    }
    this.#sweepAt = Math.max(SWEEP_AT, this.#windows.size * 2);
  }
}

/** The shared options a handler's limits come from. */
export interface LimitsSettings<Ctx> {
  limits?: false | LimitsOptions<Ctx>;
  store?: unknown;
  storeTimeoutMs?: number;
  onStoreError?: (error: DashScopeError) => void;
}

function rule(value: unknown, fallback: LimitRule, name: string): LimitRule | undefined {
  if (value === false) return undefined;
  if (value === undefined) return fallback;
  const r = value as Partial<LimitRule> | null;
  for (const field of ['points', 'durationSeconds'] as const) {
    const v = r?.[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw invalidOption(
        `Invalid limits.${name}.${field} ${String(v)}: expected an integer >= 1 (or limits.${name}: false).`,
      );
    }
  }
  return { points: r!.points!, durationSeconds: r!.durationSeconds! };
}

function isRateLimitStore(store: unknown): store is RateLimitStore {
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof (store as RateLimitStore).createRateLimiter === 'function'
  );
}

/** One budget: its local counters, and the shared ones when the store keeps limits. */
interface Budget {
  local: MemoryRateLimiter;
  shared: RateLimiter | undefined;
}

function tooManyRequests(msBeforeNext: number): ErrorAnswer {
  const seconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return {
    status: 429,
    code: 'Throttling.ClientLimit',
    message: `Too many requests from this client; retry after ${seconds} s.`,
    retryAfterSeconds: seconds,
  };
}

function lastEntry(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[value.length - 1] : value;
  if (text === undefined) return undefined;
  const comma = text.lastIndexOf(',');
  const entry = (comma < 0 ? text : text.slice(comma + 1)).trim();
  return entry === '' ? undefined : entry;
}

/** The facts of a request its client is known by. */
export interface ClientFacts {
  /** The address the framework or runtime trusts, if it gave one. */
  address: string | undefined;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The limits of one handler, resolved once. */
export class Limits<Ctx> {
  readonly #budgets: Partial<Record<LimitedRoute, Budget>>;
  readonly #key: ((ctx: Ctx) => string | undefined) | undefined;
  readonly #header: string | undefined;
  readonly #guard: StoreGuard | undefined;
  readonly #stats: LimitStats;
  /** Per-client requests in progress; `undefined` when `concurrentRequests: false`. */
  readonly concurrency: ClientConcurrency | undefined;

  private constructor(options: LimitsOptions<Ctx>, settings: LimitsSettings<Ctx>) {
    const rules: Record<LimitedRoute, LimitRule | undefined> = {
      tokenRoute: rule(options.tokenRoute, DEFAULT_TOKEN_ROUTE_LIMIT, 'tokenRoute'),
      proxy: rule(options.proxy, DEFAULT_PROXY_LIMIT, 'proxy'),
      websocket: rule(options.websocket, DEFAULT_WEBSOCKET_LIMIT, 'websocket'),
    };
    if (options.key !== undefined && typeof options.key !== 'function') {
      throw invalidOption('Invalid limits.key: expected a function of the request context.');
    }
    this.#key = options.key;
    const concurrent = resolveConcurrentRequests(options.concurrentRequests);
    this.concurrency = concurrent === undefined ? undefined : new ClientConcurrency(concurrent);
    this.#header = options.clientAddressHeader?.toLowerCase();
    const store = isRateLimitStore(settings.store) ? settings.store : undefined;
    this.#guard =
      store === undefined
        ? undefined
        : new StoreGuard(
            settings.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
            Date.now,
            settings.onStoreError,
            'counting limits locally',
          );
    this.#budgets = {};
    for (const route of ['tokenRoute', 'proxy', 'websocket'] as const) {
      const r = rules[route];
      if (r === undefined) continue;
      this.#budgets[route] = {
        local: new MemoryRateLimiter(r),
        shared: store?.createRateLimiter({ name: route, ...r }),
      };
    }
    this.#stats = {
      allowed: { tokenRoute: 0, proxy: 0, websocket: 0 },
      limited: { tokenRoute: 0, proxy: 0, websocket: 0 },
      storeErrors: 0,
      shared: store !== undefined,
    };
  }

  /**
   * The limits of `settings.limits` (`undefined` when `false`), with the defaults for the
   * budgets not given.
   * @throws DashScopeError `InvalidParameter` for an invalid budget or key.
   */
  static resolve<Ctx>(settings: LimitsSettings<Ctx>): Limits<Ctx> | undefined {
    const options = settings.limits;
    if (options === false) return undefined;
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw invalidOption(
        'Invalid limits: expected { tokenRoute?, proxy?, websocket?, concurrentRequests?, key? } or false.',
      );
    }
    return new Limits(options ?? {}, settings);
  }

  /** The client `ctx` counts against, as a limiter key (`key:…`, `id:…` or `ip:…`). */
  clientOf(ctx: Ctx, admitted: Admitted, client: ClientFacts): string {
    return clientIdentity(this, ctx, admitted, client).key;
  }

  /** The client's address: `clientAddressHeader`'s last entry, else the one the runtime gave. */
  addressOf(client: ClientFacts): string {
    const header = this.#header === undefined ? undefined : lastEntry(client.headers[this.#header]);
    return header ?? client.address ?? 'unknown';
  }

  /** What `limits.key` returns for `ctx` (`undefined` when unset or empty). */
  ownKeyOf(ctx: Ctx): string | undefined {
    const own = this.#key?.(ctx);
    return typeof own === 'string' && own !== '' ? own : undefined;
  }

  /** Counts one request of `client` against `route`'s budget: the 429 to answer when over it. */
  check(
    route: LimitedRoute,
    client: string,
  ): ErrorAnswer | undefined | Promise<ErrorAnswer | undefined> {
    const budget = this.#budgets[route];
    if (budget === undefined) return undefined;
    if (budget.shared === undefined || this.#guard!.resting()) {
      return this.#decided(route, budget.local.consume(client));
    }
    const shared = budget.shared;
    return this.#guard!.call(async () => shared.consume(client)).then((decision) => {
      if (!failed(decision)) return this.#decided(route, decision);
      this.#stats.storeErrors++;
      return this.#decided(route, budget.local.consume(client));
    });
  }

  #decided(route: LimitedRoute, decision: RateLimitDecision): ErrorAnswer | undefined {
    if (decision.allowed) {
      this.#stats.allowed[route]++;
      return undefined;
    }
    this.#stats.limited[route]++;
    return tooManyRequests(decision.msBeforeNext);
  }

  /** A copy of the counters. */
  stats(): LimitStats {
    const s = this.#stats;
    const stats: LimitStats = {
      allowed: { ...s.allowed },
      limited: { ...s.limited },
      storeErrors: s.storeErrors,
      shared: s.shared,
    };
    if (this.concurrency !== undefined) stats.concurrency = this.concurrency.stats();
    return stats;
  }
}

/** What {@link admitWithinLimits} needs from the resolved options. */
export interface LimitedAccess<Ctx> extends AccessPolicy<Ctx> {
  limits: Limits<Ctx> | undefined;
  /** Per-identity budgets of the proxy and WebSocket session starts; `undefined` when none. */
  budgets?: Budgets<Ctx> | undefined;
  /** Where limit and budget refusals are published (`undefined`: nowhere). */
  telemetry?: Telemetry | undefined;
}

/**
 * The admission unless `check` refuses it; a throwing `check` (a throwing `limits.key` or
 * `budgets.key`) answers 500, like a throwing hook.
 */
function admittedUnless(
  admitted: Admitted,
  check: () => ErrorAnswer | undefined | Promise<ErrorAnswer | undefined>,
): Admitted | Refused | Promise<Admitted | Refused> {
  let refused: ErrorAnswer | undefined | Promise<ErrorAnswer | undefined>;
  try {
    refused = check();
  } catch (error) {
    return { refused: failureAnswer(error, 'hook') };
  }
  if (refused instanceof Promise) {
    return refused.then((r) => (r === undefined ? admitted : { refused: r }));
  }
  return refused === undefined ? admitted : { refused };
}

function withinBudget<Ctx>(
  limits: Limits<Ctx>,
  route: LimitedRoute,
  ctx: Ctx,
  admitted: Admitted,
  client: ClientFacts,
): Admitted | Refused | Promise<Admitted | Refused> {
  return admittedUnless(admitted, () =>
    limits.check(route, limits.clientOf(ctx, admitted, client)),
  );
}

/**
 * The budgets of an admitted request (see `Budgets`): a request of an identity whose budget is
 * spent is refused with 429 `BudgetExceeded`. A throwing `budgets.key` answers 500.
 */
export function withinBudgets<Ctx>(
  budgets: Budgets<Ctx>,
  limits: Limits<Ctx> | undefined,
  ctx: Ctx,
  admitted: Admitted,
  client: ClientFacts,
): Admitted | Refused | Promise<Admitted | Refused> {
  return admittedUnless(admitted, () =>
    budgets.check(budgets.identityOf(ctx, admitted, client, limits)),
  );
}

/**
 * The per-model budgets (`budgets.models`) of an admitted request, once its body is read and
 * checked and before any key is minted: a request naming a model whose budget is spent for its
 * identity is refused with 429 `BudgetExceeded` (published like the other budget refusals).
 * The request's model is its JSON body's `model`, else its `model` query parameter (or, for a
 * WebSocket session start, the URL's `model`). Synchronous and free when there are no per-model
 * budgets. A body naming `model` twice is refused with 400 (upstream might read the other one).
 * A throwing `budgets.key` answers 500.
 */
export function withinModelBudgets<Ctx>(
  access: LimitedAccess<Ctx>,
  ctx: Ctx,
  admitted: Admitted,
  client: ClientFacts,
  request: { read: ReadBody | undefined; query: string } | { model: string | undefined },
): Admitted | Refused | Promise<Admitted | Refused> {
  const { budgets, limits } = access;
  if (budgets === undefined || !budgets.byModel) return admitted;
  let model: string | undefined;
  if ('model' in request) model = request.model;
  else {
    // The body was checked already (`checkProxyBody`: one parse, a duplicate `model` refused).
    const read = request.read;
    model = requestModel(read === undefined ? undefined : bodyJson(read), request.query);
  }
  if (model === undefined) return admitted;
  return published(
    admittedUnless(admitted, () =>
      budgets.checkModel(budgets.identityOf(ctx, admitted, client, limits), model),
    ),
    access.telemetry,
    'budget',
  );
}

/** `step`, its 429 refusal published on `dashscope-token:limit:hit` as a hit of `limit`. */
function published(
  step: Admitted | Refused | Promise<Admitted | Refused>,
  telemetry: Telemetry | undefined,
  limit: LimitHitMessage['limit'],
): Admitted | Refused | Promise<Admitted | Refused> {
  if (telemetry === undefined) return step;
  const tell = (result: Admitted | Refused): Admitted | Refused => {
    if ('refused' in result && result.refused.status === 429) {
      telemetry.limitHit({ limit, code: result.refused.code });
    }
    return result;
  };
  return step instanceof Promise ? step.then(tell) : tell(step);
}

/** `next` after `step` unless it refused, awaiting only what is a promise. */
function andThen(
  step: Admitted | Refused | Promise<Admitted | Refused>,
  next: (admitted: Admitted) => Admitted | Refused | Promise<Admitted | Refused>,
): Admitted | Refused | Promise<Admitted | Refused> {
  if (step instanceof Promise) return step.then((a) => ('refused' in a ? a : next(a)));
  return 'refused' in step ? step : next(step);
}

function limited<Ctx>(
  access: LimitedAccess<Ctx>,
  route: LimitedRoute,
  ctx: Ctx,
  admitted: Admitted,
  client: ClientFacts,
): Admitted | Refused | Promise<Admitted | Refused> {
  const { limits, budgets, telemetry } = access;
  const within =
    limits === undefined
      ? admitted
      : published(withinBudget(limits, route, ctx, admitted, client), telemetry, route);
  if (budgets === undefined || route === 'tokenRoute') return within;
  return andThen(within, (a) =>
    published(withinBudgets(budgets, limits, ctx, a, client), telemetry, 'budget'),
  );
}

/**
 * Admission (see `admit`), then `route`'s budget of the client: a request over it is refused
 * with 429 and `Retry-After`, before anything is sent upstream; then, for the proxy and
 * WebSocket session starts, the identity's `budgets` (429 `BudgetExceeded`). Synchronous when
 * no step needs a promise. A throwing `limits.key` or `budgets.key` answers 500 (like a
 * throwing hook).
 */
export function admitWithinLimits<Ctx>(
  access: LimitedAccess<Ctx>,
  route: LimitedRoute,
  ctx: Ctx,
  client: ClientFacts,
): Admitted | Refused | Promise<Admitted | Refused> {
  return andThen(admit(access, ctx), (a) => limited(access, route, ctx, a, client));
}

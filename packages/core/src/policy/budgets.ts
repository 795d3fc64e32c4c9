/**
 * Budgets: how many requests and tokens one identity may spend per period, over every model
 * and, optionally, per model (`budgets.models`).
 * Periods are fixed windows aligned to the Unix epoch (a day-long period resets at 00:00 UTC),
 * so every instance agrees on when one ends without talking to the others. Requests are
 * counted at admission; tokens after the answer, from the usage events of `config.metering`
 * (so one request can overshoot a token budget by its own size). Counted in memory, and in the
 * shared store too when it offers budget counters (`@dashscope-token/redis` does), so one
 * budget holds across instances. A store that fails or is slow is not an outage: each instance
 * then decides by what it counted itself. Runtime-neutral.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import type { DashScopeError } from '../errors.js';
import { DEFAULT_STORE_TIMEOUT_MS, failed, StoreGuard } from '../store/guard.js';
import { invalidOption } from '../token/errors.js';
import type { Admitted } from './admission.js';
import type { ErrorAnswer } from './answers.js';
import type { ClientFacts, Limits } from './limits.js';
import { type Metering, type UsageEvent, usageIdentity } from './usage.js';

/** The `budgets` option: what one identity may spend per period. */
export interface BudgetsOptions<Ctx> {
  /**
   * Tokens (`totalTokens` of the usage upstream reports) per identity per period, an integer
   * >= 1. Counted after each answer, so the request that crosses the budget completes (it may
   * overshoot by its own size); the requests after it are refused until the period resets.
   * Needs answers that carry usage (see `meterStreams` for streams).
   * @default undefined (tokens not limited)
   */
  tokens?: number;
  /**
   * Proxied HTTP requests and WebSocket session starts per identity per period, an integer
   * >= 1. Counted at admission: every request past `limits` counts, also one that then fails.
   * @default undefined (requests not limited)
   */
  requests?: number;
  /**
   * Length of a period in seconds (an integer in 1..31622400). Periods are aligned to the
   * Unix epoch, not to a client's first request: `86400` resets at 00:00 UTC every day, `3600`
   * at the start of every hour, on every instance alike.
   */
  periodSeconds: number;
  /**
   * The identity a request counts against. Returning `undefined` (or `''`) uses the default.
   * A throw answers 500 (like a throwing `limits.key`).
   * @default what `limits.key` returns, else the `id` `authorize` returned, else the client
   *   address (the identity of `onUsage` events)
   */
  key?: (ctx: Ctx) => string | undefined;
  /**
   * Budgets per model, in addition to the overall `tokens` / `requests` (which become optional
   * when `models` is given): `{ 'qwen-max': { tokens: 100000 }, 'qwen-plus': { requests: 500 } }`,
   * per identity, over the same `periodSeconds`. The model of a request is the one it names (its
   * JSON body's `model`, else its `model` query parameter), not the dated variant an answer
   * may name; with `models` set, proxied JSON bodies are read whole (bounded by
   * `proxy.maxBodyBytes` and `proxy.bodyReadTimeoutMs`, as with `proxy.allowModels`), and a
   * request whose model's budget is spent is refused with 429 `BudgetExceeded` before anything
   * goes upstream. A model not listed is only under the overall budget. WebSocket sessions
   * count their tokens against the URL's `model` (realtime) or the `run-task`'s model (speech).
   * @default undefined (no per-model budgets)
   */
  models?: Record<string, ModelBudgetOptions>;
}

/** One model's budget (`budgets.models[model]`): at least one of the two. */
export interface ModelBudgetOptions {
  /**
   * Tokens of this model per identity per period, an integer >= 1 (counted like `budgets.tokens`).
   * @default undefined (this model's tokens not limited on their own)
   */
  tokens?: number;
  /**
   * Requests naming this model per identity per period, an integer >= 1.
   * @default undefined (this model's requests not limited on their own)
   */
  requests?: number;
}

/** What a budget counts. */
export type BudgetKind = 'requests' | 'tokens';

/** One period of a budget: its index since the epoch and when it starts and ends (ms). */
export interface BudgetWindow {
  /** `floor(time / period)`: the same number on every instance during one period. */
  index: number;
  /** Milliseconds since the epoch at which the period started. */
  startsAt: number;
  /** Milliseconds since the epoch at which it ends (the next one starts). */
  endsAt: number;
}

/**
 * The counts of one budget, per identity, per period. `key` is a hash of the identity (32 hex
 * digits), never the identity itself. A count belongs to one `window`: a new window starts at 0,
 * and a store may forget a window once it ended (`window.endsAt`).
 */
export interface BudgetCounter {
  /** Adds `amount` (an integer >= 1) to `key`'s count in `window`: the count after it. */
  add(key: string, amount: number, window: BudgetWindow): number | Promise<number>;
  /** `key`'s count in `window` (0 when none). */
  get(key: string, window: BudgetWindow): number | Promise<number>;
}

/**
 * What a shared store offers when it can also keep budgets (`@dashscope-token/redis` does): a
 * counter per budget kind, shared by every instance on the store.
 */
export interface BudgetStore {
  /**
   * `name` is the budget's kind (`requests`, `tokens`), or `{kind}:{model}` for a model's
   * budget (`tokens:qwen-max`): each name counts on its own.
   */
  createBudgetCounter(options: { name: string; periodSeconds: number }): BudgetCounter;
}

/** Counters of the budgets, in the handler's `stats().budgets`. */
export interface BudgetStats {
  /** Requests within their budgets (the overall ones and, for its model, `budgets.models`). */
  allowed: number;
  /** Requests answered 429 `BudgetExceeded`, by the budget that was spent. */
  refused: Record<BudgetKind, number>;
  /** Tokens counted from usage events. */
  tokens: number;
  /** Shared-store calls that failed or timed out (decided by the local counts instead). */
  storeErrors: number;
  /** Whether the budgets are kept in a shared store. */
  shared: boolean;
}

/** Longest period, seconds (a leap year). */
export const MAX_BUDGET_PERIOD_SECONDS = 366 * 86_400;

/** The period of `periodMs` that contains `now` (ms since the epoch). */
export function budgetWindow(periodMs: number, now: number): BudgetWindow {
  const index = Math.floor(now / periodMs);
  const startsAt = index * periodMs;
  return { index, startsAt, endsAt: startsAt + periodMs };
}

/** Keys the memory counters sweep ended periods beyond. */
const SWEEP_AT = 10_000;

/** Counts in memory, one entry per key, for the current period only. */
export class MemoryBudgetCounter implements BudgetCounter {
  readonly #counts = new Map<string, { index: number; count: number }>();
  #sweepAt = SWEEP_AT;

  add(key: string, amount: number, window: BudgetWindow): number {
    let entry = this.#counts.get(key);
    if (entry === undefined || entry.index !== window.index) {
      if (entry === undefined && this.#counts.size >= this.#sweepAt) this.#sweep(window.index);
      entry = { index: window.index, count: 0 };
      this.#counts.set(key, entry);
    }
    entry.count += amount;
    return entry.count;
  }

  get(key: string, window: BudgetWindow): number {
    const entry = this.#counts.get(key);
    return entry === undefined || entry.index !== window.index ? 0 : entry.count;
  }

  #sweep(index: number): void {
    for (const [key, entry] of this.#counts) {
      if (entry.index !== index) this.#counts.delete(key);
    }
    this.#sweepAt = Math.max(SWEEP_AT, this.#counts.size * 2);
  }
}

/** The shared options a handler's budgets come from. */
export interface BudgetsSettings<Ctx> {
  budgets?: BudgetsOptions<Ctx> | undefined;
  store?: unknown;
  storeTimeoutMs?: number;
  onStoreError?: (error: DashScopeError) => void;
  /** The clock (tests). @default Date.now */
  now?: () => number;
}

function isBudgetStore(store: unknown): store is BudgetStore {
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof (store as BudgetStore).createBudgetCounter === 'function'
  );
}

function amount(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalidOption(`Invalid budgets.${name} ${String(value)}: expected an integer >= 1.`);
  }
  return value;
}

/** The `[model, limits]` of `budgets.models`, validated. */
function modelLimits(value: unknown): [string, ModelBudgetOptions][] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidOption('Invalid budgets.models: expected { [model]: { tokens?, requests? } }.');
  }
  return Object.entries(value).map(([model, limits]) => {
    const name = `models[${JSON.stringify(model)}]`;
    if (typeof limits !== 'object' || limits === null) {
      throw invalidOption(`Invalid budgets.${name}: expected { tokens?, requests? }.`);
    }
    const l = limits as ModelBudgetOptions;
    const tokens = amount(l.tokens, `${name}.tokens`);
    const requests = amount(l.requests, `${name}.requests`);
    if (tokens === undefined && requests === undefined) {
      throw invalidOption(`Invalid budgets.${name}: give tokens, requests or both.`);
    }
    return [
      model,
      { ...(tokens !== undefined && { tokens }), ...(requests !== undefined && { requests }) },
    ];
  });
}

/** `3600` → `1 h`, `90` → `90 s`: the period in a refusal's message. */
function periodText(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** The key a counter stores an identity under: 32 hex digits of its SHA-256. */
function budgetKey(identity: string): string {
  return bytesToHex(sha256(utf8ToBytes(identity))).slice(0, 32);
}

/** One kind of budget: its limit, its local counts and the shared ones. */
interface Budget {
  kind: BudgetKind;
  limit: number;
  /** The model it is the budget of; `undefined` for the overall one. */
  model: string | undefined;
  local: MemoryBudgetCounter;
  shared: BudgetCounter | undefined;
}

/** The budgets of one model. */
interface ModelBudget {
  requests: Budget | undefined;
  tokens: Budget | undefined;
}

/** The budgets of one handler, resolved once. */
export class Budgets<Ctx> {
  readonly #requests: Budget | undefined;
  readonly #tokens: Budget | undefined;
  readonly #models: ReadonlyMap<string, ModelBudget>;
  readonly #periodSeconds: number;
  readonly #periodMs: number;
  readonly #key: ((ctx: Ctx) => string | undefined) | undefined;
  readonly #guard: StoreGuard | undefined;
  readonly #now: () => number;
  readonly #stats: BudgetStats;
  /** Whether there are budgets per model (`budgets.models`): bodies are then read for the model. */
  readonly byModel: boolean;

  private constructor(options: BudgetsOptions<Ctx>, settings: BudgetsSettings<Ctx>) {
    const period = options.periodSeconds;
    if (
      typeof period !== 'number' ||
      !Number.isInteger(period) ||
      period < 1 ||
      period > MAX_BUDGET_PERIOD_SECONDS
    ) {
      throw invalidOption(
        `Invalid budgets.periodSeconds ${String(period)}: expected an integer in 1..${MAX_BUDGET_PERIOD_SECONDS}.`,
      );
    }
    const requests = amount(options.requests, 'requests');
    const tokens = amount(options.tokens, 'tokens');
    const models = modelLimits(options.models);
    if (requests === undefined && tokens === undefined && models.length === 0) {
      throw invalidOption(
        'Invalid budgets: give budgets.requests, budgets.tokens or budgets.models (or several).',
      );
    }
    if (options.key !== undefined && typeof options.key !== 'function') {
      throw invalidOption('Invalid budgets.key: expected a function of the request context.');
    }
    this.#key = options.key;
    this.#periodSeconds = period;
    this.#periodMs = period * 1000;
    this.#now = settings.now ?? Date.now;
    const store = isBudgetStore(settings.store) ? settings.store : undefined;
    this.#guard =
      store === undefined
        ? undefined
        : new StoreGuard(
            settings.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS,
            this.#now,
            settings.onStoreError,
            'counting budgets locally',
          );
    const budget = (
      kind: BudgetKind,
      limit: number | undefined,
      model?: string,
    ): Budget | undefined =>
      limit === undefined
        ? undefined
        : {
            kind,
            limit,
            model,
            local: new MemoryBudgetCounter(),
            shared: store?.createBudgetCounter({
              name: model === undefined ? kind : `${kind}:${model}`,
              periodSeconds: period,
            }),
          };
    this.#requests = budget('requests', requests);
    this.#tokens = budget('tokens', tokens);
    this.#models = new Map(
      models.map(([model, limits]) => [
        model,
        {
          requests: budget('requests', limits.requests, model),
          tokens: budget('tokens', limits.tokens, model),
        },
      ]),
    );
    this.byModel = this.#models.size > 0;
    this.#stats = {
      allowed: 0,
      refused: { requests: 0, tokens: 0 },
      tokens: 0,
      storeErrors: 0,
      shared: store !== undefined,
    };
  }

  /**
   * The budgets of `settings.budgets` (`undefined` when not given), counting tokens from the
   * usage events of `metering` when there is a token budget.
   * @throws DashScopeError `InvalidParameter` for invalid options.
   */
  static resolve<Ctx>(
    settings: BudgetsSettings<Ctx>,
    metering: Metering<Ctx>,
  ): Budgets<Ctx> | undefined {
    const options = settings.budgets;
    if (options === undefined) return undefined;
    if (typeof options !== 'object' || options === null) {
      throw invalidOption(
        'Invalid budgets: expected { requests?, tokens?, periodSeconds, key?, models? }.',
      );
    }
    const budgets = new Budgets(options, settings);
    let countsTokens = budgets.#tokens !== undefined;
    for (const model of budgets.#models.values()) countsTokens ||= model.tokens !== undefined;
    if (countsTokens) {
      metering.listen((event, ctx) => budgets.spent(event, ctx));
    }
    return budgets;
  }

  /** Who `ctx` counts against: `budgets.key`, else the identity of usage events. */
  identityOf(
    ctx: Ctx,
    admitted: Admitted,
    client: ClientFacts,
    limits: Limits<Ctx> | undefined,
  ): string {
    const own = this.#key?.(ctx);
    if (typeof own === 'string' && own !== '') return own;
    return usageIdentity(limits, ctx, admitted, client);
  }

  /**
   * Counts one request of `identity` (requests budget) and checks both budgets: the 429 to
   * answer when one is spent.
   */
  check(identity: string): ErrorAnswer | undefined | Promise<ErrorAnswer | undefined> {
    return this.#check(identity, this.#requests, this.#tokens);
  }

  /**
   * Counts one request of `identity` naming `model` against that model's budgets
   * (`budgets.models`) and checks them: the 429 to answer when one is spent. A model not
   * listed (or none) passes without counting.
   */
  checkModel(
    identity: string,
    model: string | undefined,
  ): ErrorAnswer | undefined | Promise<ErrorAnswer | undefined> {
    const budget = model === undefined ? undefined : this.#models.get(model);
    if (budget === undefined) return undefined;
    return this.#check(identity, budget.requests, budget.tokens);
  }

  #check(
    identity: string,
    requests: Budget | undefined,
    tokens: Budget | undefined,
  ): ErrorAnswer | undefined | Promise<ErrorAnswer | undefined> {
    const window = budgetWindow(this.#periodMs, this.#now());
    const key = budgetKey(identity);
    const localRequests = requests?.local.add(key, 1, window) ?? 0;
    const localTokens = tokens?.local.get(key, window) ?? 0;
    const guard = this.#guard;
    if (guard === undefined || guard.resting()) {
      return this.#decided(requests, localRequests, tokens, localTokens, window);
    }
    return guard
      .call(async () =>
        Promise.all([
          requests?.shared?.add(key, 1, window) ?? 0,
          tokens?.shared?.get(key, window) ?? 0,
        ]),
      )
      .then((counts) => {
        if (failed(counts)) {
          this.#stats.storeErrors++;
          return this.#decided(requests, localRequests, tokens, localTokens, window);
        }
        // The shared count includes this instance's; the local one covers a store that forgot.
        return this.#decided(
          requests,
          Math.max(counts[0], localRequests),
          tokens,
          Math.max(counts[1], localTokens),
          window,
        );
      });
  }

  /**
   * Counts the tokens of one usage event against its identity's budget, and against the budget
   * of the model the request named (`requestModel`, else `model`) when `budgets.models` lists it.
   */
  spent(event: UsageEvent, ctx: Ctx): void {
    const total = event.totalTokens;
    if (total === undefined || !(total > 0)) return;
    const model = event.requestModel ?? event.model;
    const byModel = model === undefined ? undefined : this.#models.get(model)?.tokens;
    if (this.#tokens === undefined && byModel === undefined) return;
    const n = Math.ceil(total);
    const own = this.#key?.(ctx);
    const identity = typeof own === 'string' && own !== '' ? own : event.identity;
    const window = budgetWindow(this.#periodMs, this.#now());
    const key = budgetKey(identity);
    this.#stats.tokens += n;
    if (this.#tokens !== undefined) this.#add(this.#tokens, key, n, window);
    if (byModel !== undefined) this.#add(byModel, key, n, window);
  }

  #add(tokens: Budget, key: string, n: number, window: BudgetWindow): void {
    tokens.local.add(key, n, window);
    const shared = tokens.shared;
    const guard = this.#guard;
    if (shared === undefined || guard === undefined || guard.resting()) return;
    void guard
      .call(async () => shared.add(key, n, window))
      .then((count) => {
        if (failed(count)) this.#stats.storeErrors++;
      });
  }

  #decided(
    r: Budget | undefined,
    requests: number,
    t: Budget | undefined,
    tokens: number,
    window: BudgetWindow,
  ): ErrorAnswer | undefined {
    const spent =
      r !== undefined && requests > r.limit
        ? r
        : t !== undefined && tokens >= t.limit
          ? t
          : undefined;
    // A model's check follows the overall one, which counted the request as allowed already.
    const ofModel = (r ?? t)?.model !== undefined;
    if (spent === undefined) {
      if (!ofModel) this.#stats.allowed++;
      return undefined;
    }
    if (ofModel) this.#stats.allowed = Math.max(0, this.#stats.allowed - 1);
    this.#stats.refused[spent.kind]++;
    return this.#refusal(spent, window);
  }

  #refusal(budget: Budget, window: BudgetWindow): ErrorAnswer {
    const seconds = Math.max(1, Math.ceil((window.endsAt - this.#now()) / 1000));
    const resets = new Date(window.endsAt).toISOString();
    const of =
      budget.model === undefined ? '' : ` for model ${JSON.stringify(budget.model.slice(0, 100))}`;
    return {
      status: 429,
      code: 'BudgetExceeded',
      message:
        `The ${budget.kind} budget of this client${of} (${budget.limit} per ` +
        `${periodText(this.#periodSeconds)}) is spent; it resets at ${resets} (in ${seconds} s).`,
      retryAfterSeconds: seconds,
      // Sending it again is refused until the period ends: no SDK should retry it by itself.
      retryable: false,
    };
  }

  /** A copy of the counters. */
  stats(): BudgetStats {
    const s = this.#stats;
    return { ...s, refused: { ...s.refused } };
  }
}

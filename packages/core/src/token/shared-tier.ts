/**
 * The second tier of the token cache: a {@link SharedStore} shared by every instance of a
 * service, so that a key is minted once per refresh period across all of them. A flight that
 * needs a token reads the store; if nothing usable is there it takes the key's short lock and
 * mints (others poll and read the result); a failed mint releases the lock. Every store call is
 * guarded: when the store fails the flight mints locally, as without a store.
 */
import { LRUCache } from 'lru-cache';
import { sleep } from '../retry.js';
import { failed, type StoreGuard } from '../store/guard.js';
import { type StoreSlot, storeSlot } from '../store/sealing.js';
import type { SharedStore } from '../store/types.js';
import type { Entry } from './expiry.js';

/** Milliseconds between two reads of a waiter whose key another instance is minting. */
export const STORE_POLL_MS = 25;

/** What one flight asks of the shared tier. */
export interface SharedRequest {
  /** The provider's cache key (a local hash) of `apiKey`. */
  readonly key: string;
  readonly apiKey: string;
  /** Life the token must have left, ms. */
  readonly minValidityMs: number;
  /** The entry being replaced, if any: a store token is usable only if it is newer. */
  readonly current: Entry | undefined;
  /** Skip reading the store first (`forceRefresh`: the current token is suspected bad). */
  readonly fresh: boolean;
  /** Fires on `close()`. */
  readonly signal: AbortSignal;
}

/** What is sealed in the store for one token. */
interface Record_ {
  /** The temporary key. */
  t: string;
  /** Its `expires_at` as Model Studio sent it, UNIX seconds. */
  e: number;
  /** Local (wall clock) ms after which it counts as expired (skew-corrected by its minter). */
  x: number;
  /** Local ms before which no instance refreshes it. */
  r: number;
}

function toRecord(entry: Entry): string {
  const record: Record_ = {
    t: entry.token.token,
    e: entry.token.expiresAt,
    x: entry.expiresAt,
    r: entry.refreshFrom,
  };
  return JSON.stringify(record);
}

function fromRecord(text: string | undefined): Entry | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = parsed as Partial<Record_> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    typeof r.t !== 'string' ||
    r.t === '' ||
    typeof r.e !== 'number' ||
    typeof r.x !== 'number' ||
    typeof r.r !== 'number' ||
    !Number.isFinite(r.e + r.x + r.r)
  ) {
    return undefined;
  }
  const token = Object.freeze({ token: r.t, expiresAt: r.e });
  return { token, promise: Promise.resolve(token), expiresAt: r.x, refreshFrom: r.r, shared: true };
}

/** The shared tier of one provider. */
export class SharedTier {
  readonly #slots: LRUCache<string, Promise<StoreSlot>>;

  constructor(
    private readonly store: SharedStore,
    private readonly guard: StoreGuard,
    /** Base URL and TTL: what else distinguishes a key's tokens. */
    private readonly scope: string,
    /** How long the lock is held at most: the longest a mint with its retries can take. */
    private readonly lockMs: number,
    private readonly now: () => number,
    maxKeys: number,
  ) {
    this.#slots = new LRUCache({ max: maxKeys });
  }

  /**
   * A token for `request`: from the store, or from `mint` (run by this instance when it holds
   * the key's lock, or when the store fails). Rejects only with `mint`'s error.
   */
  async obtain(request: SharedRequest, mint: () => Promise<Entry>): Promise<Entry> {
    const { guard } = this;
    if (guard.resting()) return this.#fallback(mint);
    const slot = await this.#slot(request);
    if (slot === undefined) return this.#fallback(mint);
    const tokenKey = `token:${slot.id}`;
    const lockKey = `lock:${slot.id}`;

    if (!request.fresh) {
      const found = await this.#read(slot, tokenKey, request);
      if (failed(found)) return this.#fallback(mint);
      if (found !== undefined) return found;
    }
    const owner = globalThis.crypto.randomUUID();
    const deadline = this.now() + this.lockMs;
    for (;;) {
      const locked = await guard.call(() => this.store.setIfAbsent(lockKey, owner, this.lockMs));
      if (failed(locked)) return this.#fallback(mint);
      if (locked) return this.#mintHoldingLock(slot, tokenKey, lockKey, owner, request, mint);
      // Another instance is minting this key: wait for its token, or for its lock to go.
      for (;;) {
        await sleep(STORE_POLL_MS, request.signal);
        const found = await this.#read(slot, tokenKey, request);
        if (failed(found)) return this.#fallback(mint);
        if (found !== undefined) return found;
        if (this.now() > deadline) return this.#fallback(mint);
        const holder = await guard.call(() => this.store.get(lockKey));
        if (failed(holder)) return this.#fallback(mint);
        if (holder === undefined || holder === null) break;
      }
    }
  }

  async #mintHoldingLock(
    slot: StoreSlot,
    tokenKey: string,
    lockKey: string,
    owner: string,
    request: SharedRequest,
    mint: () => Promise<Entry>,
  ): Promise<Entry> {
    try {
      if (!request.fresh) {
        // The holder before us may have stored a token between our read and our lock.
        const found = await this.#read(slot, tokenKey, request);
        if (!failed(found) && found !== undefined) return found;
      }
      const entry = await mint();
      const ttlMs = Math.floor(entry.expiresAt - this.now());
      if (ttlMs >= 1) {
        const sealed = await slot.seal(toRecord(entry));
        await this.guard.call(() => this.store.set(tokenKey, sealed, ttlMs));
      }
      return entry;
    } finally {
      await this.guard.call(() => this.store.deleteIfEquals(lockKey, owner));
    }
  }

  /** A usable token in the store, `undefined` when there is none (or garbage), `FAILED` on failure. */
  async #read(slot: StoreSlot, tokenKey: string, request: SharedRequest) {
    const raw = await this.guard.call(() => this.store.get(tokenKey));
    if (failed(raw)) return raw;
    const entry = fromRecord(await slot.open(raw));
    if (entry === undefined) return undefined;
    const t = this.now();
    const current = request.current;
    const usable =
      entry.expiresAt - t >= request.minValidityMs &&
      (current === undefined ||
        (entry.token.token !== current.token.token && entry.expiresAt > current.expiresAt));
    if (!usable) return undefined;
    this.guard.counters.hits++;
    return entry;
  }

  async #slot(request: SharedRequest): Promise<StoreSlot | undefined> {
    let slot = this.#slots.get(request.key);
    if (slot === undefined) {
      slot = storeSlot(request.apiKey, this.scope);
      this.#slots.set(request.key, slot);
    }
    try {
      return await slot;
    } catch {
      this.#slots.delete(request.key);
      return undefined;
    }
  }

  #fallback(mint: () => Promise<Entry>): Promise<Entry> {
    this.guard.counters.fallbacks++;
    return mint();
  }
}

import { randomBytes } from 'node:crypto';

/** What an `Authorization` credential turned out to be. */
export type KeyCheck =
  | { kind: 'permanent'; key: string; workspace: string | undefined }
  | { kind: 'temporary'; key: string; expiresAt: number; workspace: string | undefined }
  | { kind: 'invalid' };

interface TemporaryKey {
  expiresAt: number;
  /** The workspace of the key that minted it (a temporary key inherits its permissions). */
  workspace: string | undefined;
}

/** Prefix of temporary keys, as minted by Model Studio. */
export const TEMPORARY_KEY_PREFIX = 'st-';

/** Prune expired temporary keys once the store holds this many. */
const PRUNE_AT = 10_000;

/** The permanent keys the emulator accepts and the temporary keys it minted. */
export class KeyStore {
  /** Permanent keys and the workspace each is bound to (undefined: the account's default). */
  readonly #permanent = new Map<string, string | undefined>();
  readonly #temporary = new Map<string, TemporaryKey>();

  constructor(permanent: readonly string[]) {
    for (const key of permanent) this.add(key);
  }

  /** The permanent keys, in insertion order. */
  get permanentKeys(): readonly string[] {
    return [...this.#permanent.keys()];
  }

  add(key: string, workspace?: string): void {
    if (typeof key !== 'string' || key.trim() === '' || /\s/.test(key)) {
      throw new TypeError('an API key must be a non-empty string without whitespace');
    }
    if (key.startsWith(TEMPORARY_KEY_PREFIX)) {
      throw new TypeError(`a permanent API key cannot start with "${TEMPORARY_KEY_PREFIX}"`);
    }
    this.#permanent.set(key, workspace);
  }

  revoke(key: string): void {
    this.#permanent.delete(key);
  }

  /** Mints a temporary key valid until `expiresAt` (UNIX seconds on the emulator's clock). */
  mint(expiresAt: number, now: number, workspace?: string): string {
    if (this.#temporary.size >= PRUNE_AT) this.prune(now);
    const token = TEMPORARY_KEY_PREFIX + randomBytes(20).toString('hex');
    this.#temporary.set(token, { expiresAt, workspace });
    return token;
  }

  /** Classifies `key` at emulator time `now`; an expired temporary key is invalid. */
  check(key: string | undefined, now: number): KeyCheck {
    if (!key) return { kind: 'invalid' };
    if (this.#permanent.has(key))
      return { kind: 'permanent', key, workspace: this.#permanent.get(key) };
    const temp = this.#temporary.get(key);
    if (temp && now < temp.expiresAt)
      return { kind: 'temporary', key, expiresAt: temp.expiresAt, workspace: temp.workspace };
    return { kind: 'invalid' };
  }

  /** Forgets temporary keys that expired more than an hour before `now`. */
  prune(now: number): void {
    for (const [token, { expiresAt }] of this.#temporary) {
      if (expiresAt < now - 3600) this.#temporary.delete(token);
    }
  }
}

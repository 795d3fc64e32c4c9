/** `x-acs-signature-nonce` values seen in the last 15 minutes, per AccessKey. */

/** How long a nonce is remembered: as long as a signature's date is accepted. */
export const NONCE_WINDOW_SECONDS = 15 * 60;

/** Prune once the store holds this many nonces. */
const PRUNE_AT = 10_000;

export class NonceStore {
  readonly #seen = new Map<string, number>();

  /**
   * Records `nonce` for `accessKeyId` at `now` (UNIX seconds); false when it was already used
   * within the window.
   */
  use(accessKeyId: string, nonce: string, now: number): boolean {
    if (this.#seen.size >= PRUNE_AT) this.prune(now);
    const key = `${accessKeyId}\n${nonce}`;
    const at = this.#seen.get(key);
    if (at !== undefined && now - at < NONCE_WINDOW_SECONDS * 2) return false;
    this.#seen.set(key, now);
    return true;
  }

  /** Forgets nonces older than twice the window (dates are accepted 15 minutes either way). */
  prune(now: number): void {
    for (const [key, at] of this.#seen) {
      if (now - at >= NONCE_WINDOW_SECONDS * 2) this.#seen.delete(key);
    }
  }
}

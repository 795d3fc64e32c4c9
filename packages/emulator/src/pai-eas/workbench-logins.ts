/** One-time Workbench logins: a random token per issued URL, usable once, for a while. */
import { randomBytes } from 'node:crypto';

/** What a Workbench URL logs into. */
export interface WorkbenchLogin {
  service: string;
  instance: string;
  worker: string | undefined;
}

/** Why a login was refused. */
export type LoginRefusal = 'unknown' | 'used' | 'expired';

interface Issued extends WorkbenchLogin {
  expiresAt: number;
  used: boolean;
}

const PRUNE_AT = 10_000;

export class WorkbenchLogins {
  readonly #issued = new Map<string, Issued>();

  constructor(readonly ttlSeconds: number) {}

  /** Issues a login token valid until `now + ttlSeconds` (UNIX seconds). */
  issue(login: WorkbenchLogin, now: number): string {
    if (this.#issued.size >= PRUNE_AT) this.#prune(now);
    const token = randomBytes(24).toString('hex');
    this.#issued.set(token, { ...login, expiresAt: now + this.ttlSeconds, used: false });
    return token;
  }

  /** Uses `token` once: the login, or why it is refused. */
  redeem(token: string | null, now: number): WorkbenchLogin | LoginRefusal {
    const issued = token ? this.#issued.get(token) : undefined;
    if (!issued) return 'unknown';
    if (issued.used) return 'used';
    if (now >= issued.expiresAt) return 'expired';
    issued.used = true;
    return { service: issued.service, instance: issued.instance, worker: issued.worker };
  }

  #prune(now: number): void {
    for (const [token, issued] of this.#issued) {
      if (issued.used || now >= issued.expiresAt + 3600) this.#issued.delete(token);
    }
  }
}

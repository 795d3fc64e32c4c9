import { EventEmitter } from 'node:events';
import type { RecordedRequest, RecordedRoute } from './types.js';

/** Bytes of each request body kept in a recording. */
export const RECORDED_BODY_BYTES = 64 * 1024;

/** Most recordings kept; the oldest are dropped beyond it (a long-running demo stays small). */
export const MAX_RECORDED_REQUESTS = 5000;

/** Records requests, counts them per route and lets tests wait for one. */
export class Recorder {
  readonly #records: RecordedRequest[] = [];
  readonly #events = new EventEmitter();
  readonly #pending = new Set<{ reject: (e: Error) => void; cleanup: () => void }>();
  readonly counts: Record<RecordedRoute, number> = {
    tokens: 0,
    generation: 0,
    chat: 0,
    embeddings: 0,
    models: 0,
    images: 0,
    tasks: 0,
    files: 0,
    'ws-inference': 0,
    'ws-realtime': 0,
    'pai-eas': 0,
    'pai-eas-workbench': 0,
    'pai-eas-service': 0,
    control: 0,
    unknown: 0,
  };

  constructor() {
    this.#events.setMaxListeners(0);
  }

  /** Counts a request; stores it and emits `request` unless it is a control request. */
  record(entry: RecordedRequest): void {
    this.counts[entry.route] += 1;
    if (entry.route === 'control') return;
    this.#records.push(entry);
    if (this.#records.length > MAX_RECORDED_REQUESTS) this.#records.shift();
    this.#events.emit('request', { ...entry });
  }

  /**
   * Marks a request whose connection closed before the answer ended. Only a close by the
   * client sets `clientClosedEarly` and emits `request-closed`; a close by the emulator
   * (`reset`/`stream-cut` faults, `close()`) only sets `closedAt`.
   */
  closedEarly(entry: RecordedRequest, byClient: boolean): void {
    entry.closedAt = Date.now();
    if (!byClient) return;
    entry.clientClosedEarly = true;
    if (entry.route === 'control') return;
    this.#events.emit('request-closed', { ...entry });
  }

  /**
   * A WebSocket session ended (its `closeCode` is set): like {@link closedEarly}, and pending
   * `waitFor` predicates are evaluated again even when the emulator ended it.
   */
  sessionEnded(entry: RecordedRequest, byClient: boolean): void {
    this.closedEarly(entry, byClient);
    if (!byClient) this.#events.emit('changed', { ...entry });
  }

  /** Snapshot copies, oldest first. */
  list(): RecordedRequest[] {
    return this.#records.map((r) => ({ ...r, headers: { ...r.headers } }));
  }

  clear(): void {
    this.#records.length = 0;
  }

  on(event: 'request' | 'request-closed', fn: (r: RecordedRequest) => void): void {
    this.#events.on(event, fn);
  }

  off(event: 'request' | 'request-closed', fn: (r: RecordedRequest) => void): void {
    this.#events.off(event, fn);
  }

  waitFor(pred: (r: RecordedRequest) => boolean, timeoutMs = 5000): Promise<RecordedRequest> {
    for (const r of this.#records) {
      const copy = { ...r, headers: { ...r.headers } };
      if (pred(copy)) return Promise.resolve(copy);
    }
    return new Promise((resolve, reject) => {
      const check = (r: RecordedRequest) => {
        let matched = false;
        try {
          matched = pred(r);
        } catch (error) {
          cleanup();
          reject(error);
          return;
        }
        if (matched) {
          cleanup();
          resolve(r);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`waitForRequest: no matching request within ${timeoutMs} ms`));
      }, timeoutMs);
      const entry = { reject, cleanup: () => {} };
      const cleanup = () => {
        clearTimeout(timer);
        this.#events.off('request', check);
        this.#events.off('request-closed', check);
        this.#events.off('changed', check);
        this.#pending.delete(entry);
      };
      entry.cleanup = cleanup;
      this.#pending.add(entry);
      this.#events.on('request', check);
      this.#events.on('request-closed', check);
      this.#events.on('changed', check);
    });
  }

  /** Rejects every pending `waitFor` (the emulator is closing). */
  close(): void {
    for (const p of [...this.#pending]) {
      p.cleanup();
      p.reject(new Error('waitForRequest: the emulator was closed'));
    }
  }
}

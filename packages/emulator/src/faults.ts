import type { EmulatorFault, EmulatorRoute } from './types.js';

interface QueuedFault {
  seq: number;
  fault: EmulatorFault;
  remaining: number;
}

const ROUTES: readonly EmulatorRoute[] = [
  'tokens',
  'generation',
  'chat',
  'embeddings',
  'models',
  'images',
  'tasks',
  'files',
  'ws-inference',
  'ws-realtime',
  'pai-eas',
  'pai-eas-workbench',
  'pai-eas-service',
  '*',
];

/** Validates a route name coming from user code or a control route. */
export function isEmulatorRoute(value: unknown): value is EmulatorRoute {
  return typeof value === 'string' && (ROUTES as readonly string[]).includes(value);
}

/** Throws a `TypeError` describing what is wrong with `fault`, if anything. */
export function assertFault(fault: unknown): asserts fault is EmulatorFault {
  if (typeof fault !== 'object' || fault === null) throw new TypeError('fault must be an object');
  const f = fault as Record<string, unknown>;
  const optionalNumber = (name: string, min: number, integer = false) => {
    const v = f[name];
    if (v === undefined) return;
    if (
      typeof v !== 'number' ||
      !Number.isFinite(v) ||
      v < min ||
      (integer && !Number.isInteger(v))
    ) {
      throw new TypeError(`fault.${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}`);
    }
  };
  const optionalString = (name: string) => {
    if (f[name] !== undefined && typeof f[name] !== 'string') {
      throw new TypeError(`fault.${name} must be a string`);
    }
  };
  switch (f.type) {
    case 'throttle':
      optionalNumber('retryAfterSeconds', 0);
      return;
    case 'system-error':
    case 'html-502':
    case 'malformed-json':
    case 'reset':
    case 'hang':
    case 'invalid-api-key':
      return;
    case 'stream-error':
      optionalNumber('afterChunks', 0, true);
      optionalNumber('status', 400, true);
      if (typeof f.status === 'number' && f.status > 599)
        throw new TypeError('fault.status must be 400..599');
      optionalString('code');
      optionalString('message');
      return;
    case 'stream-cut':
      optionalNumber('afterChunks', 0, true);
      return;
    case 'status': {
      const s = f.status;
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 200 || s > 599) {
        throw new TypeError('fault.status must be an integer 200..599');
      }
      if (f.headers !== undefined) {
        if (typeof f.headers !== 'object' || f.headers === null) {
          throw new TypeError('fault.headers must be an object of strings');
        }
        for (const v of Object.values(f.headers)) {
          if (typeof v !== 'string')
            throw new TypeError('fault.headers must be an object of strings');
        }
      }
      return;
    }
    default:
      throw new TypeError(`unknown fault type: ${JSON.stringify(f.type)}`);
  }
}

/** Queued faults, FIFO per route; `'*'` entries compete with a route's own by queue order. */
export class FaultQueue {
  readonly #queues = new Map<EmulatorRoute, QueuedFault[]>();
  #seq = 0;

  add(route: EmulatorRoute, fault: EmulatorFault, times = 1): void {
    if (!isEmulatorRoute(route)) throw new TypeError(`unknown route: ${JSON.stringify(route)}`);
    assertFault(fault);
    if (
      typeof times !== 'number' ||
      !(times >= 1) ||
      (!Number.isInteger(times) && times !== Number.POSITIVE_INFINITY)
    ) {
      throw new RangeError('times must be a positive integer or Infinity');
    }
    const queue = this.#queues.get(route) ?? [];
    queue.push({ seq: this.#seq++, fault: { ...fault }, remaining: times });
    this.#queues.set(route, queue);
  }

  /** Takes the fault for one call to `route`, if any is queued. */
  take(route: Exclude<EmulatorRoute, '*'>): EmulatorFault | undefined {
    const own = this.#queues.get(route);
    const any = this.#queues.get('*');
    const a = own?.[0];
    const b = any?.[0];
    let queue: QueuedFault[] | undefined;
    if (a && (!b || a.seq < b.seq)) queue = own;
    else if (b) queue = any;
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.remaining -= 1;
    if (head.remaining <= 0) queue.shift();
    return head.fault;
  }

  clear(): void {
    this.#queues.clear();
  }

  /** How many faults are queued (an `Infinity` entry counts once). */
  get size(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }
}

/** An in-memory SharedStore for tests, with switches to make it fail, hang or return garbage. */
import type { SharedStore } from '../src/index.js';

export interface MemoryStore extends SharedStore {
  readonly data: Map<string, { value: string; until: number }>;
  /** `'up'`, `'down'` (every call rejects) or `'hang'` (every call never settles). */
  mode: 'up' | 'down' | 'hang';
  calls: number;
}

export function memoryStore(): MemoryStore {
  const data = new Map<string, { value: string; until: number }>();
  const live = (key: string) => {
    const item = data.get(key);
    if (item !== undefined && item.until <= Date.now()) data.delete(key);
    return data.get(key);
  };
  const store: MemoryStore = {
    data,
    mode: 'up',
    calls: 0,
    get: (key) => run(() => live(key)?.value),
    set: (key, value, ttlMs) =>
      run(() => {
        data.set(key, { value, until: Date.now() + ttlMs });
      }),
    setIfAbsent: (key, value, ttlMs) =>
      run(() => {
        if (live(key) !== undefined) return false;
        data.set(key, { value, until: Date.now() + ttlMs });
        return true;
      }),
    deleteIfEquals: (key, value) =>
      run(() => {
        if (live(key)?.value === value) data.delete(key);
      }),
  };
  function run<T>(fn: () => T): Promise<T> {
    store.calls++;
    if (store.mode === 'down') return Promise.reject(new Error('connection refused'));
    if (store.mode === 'hang') return new Promise<T>(() => {});
    return new Promise((resolve) => setImmediate(() => resolve(fn())));
  }
  return store;
}

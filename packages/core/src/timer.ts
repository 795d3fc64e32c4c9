/** Timers that do not keep a process alive, on every runtime. */

/**
 * Unrefs `timer` where the runtime supports it (Node, Bun: a `Timeout` object; Deno: `Deno.unrefTimer`),
 * so a pending timeout never keeps the process alive. A no-op elsewhere.
 */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const handle = timer as unknown as { unref?: () => void };
  if (typeof handle.unref === 'function') {
    handle.unref();
    return;
  }
  const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
  if (typeof timer === 'number' && typeof deno?.unrefTimer === 'function') deno.unrefTimer(timer);
}

/**
 * Upgrades nobody owns. Node hands every upgrade request to the server's `upgrade` listeners
 * and never answers or closes it itself once one listener is attached, so an upgrade that no
 * listener takes would hold its socket (a file descriptor) until the server stops. With the
 * documented wiring (`server.on('upgrade', handler.upgrade)`), the last of the handlers' own
 * listeners answers such an upgrade 404 and closes it, unless another listener (the app's own
 * WebSocket server) is attached to take it.
 */
import type { Duplex } from 'node:stream';
import { NOT_FOUND } from '../../policy/answers.js';
import { refuseUpgrade } from './refuse.js';

/** Marks the `upgrade` listeners of dashscope handlers (one per handler). */
const OURS: unique symbol = Symbol('dashscope-token upgrade listener');

/** Marks `listener` as a dashscope handler's own `upgrade` listener. */
export function markUpgradeListener<F extends (...args: never[]) => unknown>(listener: F): F {
  return Object.assign(listener, { [OURS]: true });
}

interface Listeners {
  listeners(event: 'upgrade'): unknown[];
}

function hasListeners(value: unknown): value is Listeners {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { listeners?: unknown }).listeners === 'function'
  );
}

/**
 * Whether `listener`, called by `emitter` (the server it is attached to: `this` of a listener),
 * is the last `upgrade` listener and every one before it is a dashscope handler's: then nobody
 * else will take an upgrade the handlers left alone.
 */
export function isLastOwnListener(emitter: unknown, listener: unknown): boolean {
  if (!hasListeners(emitter)) return false;
  const listeners = emitter.listeners('upgrade');
  return (
    listeners.at(-1) === listener && listeners.every((l) => typeof l === 'function' && OURS in l)
  );
}

/** Answers an upgrade nobody owns 404 and closes its socket. */
export function refuseStrayUpgrade(socket: Duplex): void {
  socket.on('error', () => {});
  refuseUpgrade(socket, NOT_FOUND);
}

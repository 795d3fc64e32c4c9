import type { IncomingMessage } from 'node:http';
import type { DashScopeHandlerOptions } from './types.js';

/**
 * The options with `context` as the default `websocket.context` (what an adapter gives
 * `authorize` and `apiKey` on upgrades, which do not pass through its framework): unchanged
 * when WebSockets are off or the app set its own `websocket.context`.
 */
export function withUpgradeContext<Ctx>(
  options: DashScopeHandlerOptions<Ctx>,
  context: (req: IncomingMessage) => Ctx,
): DashScopeHandlerOptions<Ctx> {
  if (options.websocket === false || options.websocket?.context !== undefined) return options;
  return { ...options, websocket: { ...options.websocket, context } };
}

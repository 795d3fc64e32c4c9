/**
 * Mount paths and WebSocket routes: upgrades never pass through Express or Koa, so a
 * middleware mounted under a path (`app.use('/ai', mw)`, `mount('/ai', mw)`) serves HTTP at
 * `/ai{prefix}` but WebSockets at `{prefix}` from the server root. The adapters do not guess
 * the mount path for upgrades; they report it here and the app is told the fix once.
 */

import { DEFAULT_PREFIX } from '../policy/config.js';
import { type DashScopeLogger, logMountPathWarning } from '../policy/logging.js';
import { normalisePrefix } from '../policy/routes.js';
import type { DashScopeHandlerOptions } from './types.js';

/** The warning for a middleware mounted at `mountPath` with WebSockets under `prefix`. */
export function mountPathWarning(mountPath: string, prefix: string): string {
  const full = `${mountPath}${prefix}`;
  return (
    `dashscope-token: mounted under ${JSON.stringify(mountPath)}, but WebSocket upgrades do not ` +
    `pass through the framework: they are served at ${JSON.stringify(`${prefix}/api-ws/v1/…`)} ` +
    `from the server root, not under ${JSON.stringify(mountPath)}. Mount the middleware at the ` +
    `root with \`prefix: '${full}'\`, or set \`websocket: false\`.`
  );
}

/**
 * A function the Express and Koa adapters call with each request's mount path (`''` at the
 * root). The first time it is non-empty while WebSockets are on and `prefix` was not set to
 * include it, it logs {@link mountPathWarning} once through `logger.warn` (`console.warn`
 * when there is no logger); every other call does nothing.
 */
export function mountPathCheck(
  options: Pick<DashScopeHandlerOptions<unknown>, 'prefix' | 'websocket' | 'logger'>,
): (mountPath: string) => void {
  if (options.websocket === false) return () => {};
  const explicit = options.prefix === undefined ? undefined : normalisePrefix(options.prefix);
  const prefix = explicit ?? DEFAULT_PREFIX;
  const logger: DashScopeLogger = options.logger ?? console;
  let warned = false;
  return (mountPath) => {
    if (warned || mountPath === '' || mountPath === '/') return;
    const mount = mountPath.replace(/\/+$/, '');
    if (explicit !== undefined && (explicit === mount || explicit.startsWith(`${mount}/`))) return;
    warned = true;
    logMountPathWarning(logger, mountPathWarning(mount, prefix), { mountPath: mount, prefix });
  };
}

/**
 * WebSocket close codes the proxy chooses itself. Codes and reasons sent by either side pass
 * through unchanged; these are used only when the proxy ends a session or a side vanished.
 */

/** `maxSessionSeconds` reached: sent to the client (Model Studio gets 1000). */
export const WS_CLOSE_SESSION_LIMIT = 4000;
/** `idleTimeoutMs` without a message either way: sent to the client (Model Studio gets 1000). */
export const WS_CLOSE_IDLE = 4001;
/**
 * A message not completed within `messageTimeoutMs`, or the proxy's memory for unfinished
 * messages (`maxPendingBytes`) is full: sent to the side that sent it ("Policy Violation").
 */
export const WS_CLOSE_POLICY = 1008;
/** The handler is closing (`handler.close()`): sent to both sides. */
export const WS_CLOSE_GOING_AWAY = 1001;
/** A message over `maxMessageBytes`: sent to both sides. */
export const WS_CLOSE_MESSAGE_TOO_BIG = 1009;
/**
 * Model Studio's connection was lost without a close frame (reset, no pong): sent to the
 * client ("Bad Gateway" in the IANA registry).
 */
export const WS_CLOSE_UPSTREAM_LOST = 1014;

/** Whether `code` may be sent in a close frame (RFC 6455 §7.4, as `ws` checks it). */
export function isSendableCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/**
 * The Node binding of telemetry: the channels of `node:diagnostics_channel`, one set per process
 * (channels are global by name, so every handler and provider publishes on the same ones).
 */
import diagnostics from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import { type DiagnosticsRequest, Telemetry } from '../policy/telemetry.js';

/** The channels the Node entry's handlers and token providers publish on. */
export const nodeTelemetry: Telemetry = /* @__PURE__ */ new Telemetry(diagnostics);

/** Upstream's request id of a relayed answer (written with `writeHead`, not readable back). */
const upstreamIds = new WeakMap<ServerResponse, string>();

/** Remembers upstream's `x-request-id` for the end message, while someone subscribes to it. */
export function noteUpstreamRequestId(
  res: ServerResponse,
  id: string | string[] | undefined,
): void {
  if (typeof id === 'string' && nodeTelemetry.requestsWanted) upstreamIds.set(res, id);
}

/** Publishes the end of a request the node:http executor answered on `res`. */
export function endNodeRequest(
  request: DiagnosticsRequest,
  ctx: unknown,
  res: ServerResponse,
): void {
  const own = res.getHeader('x-request-id');
  nodeTelemetry.endRequest(request, ctx, {
    status: res.headersSent ? res.statusCode : 0,
    requestId: upstreamIds.get(res) ?? (typeof own === 'string' ? own : undefined),
    clientGone: !res.writableEnded,
  });
}

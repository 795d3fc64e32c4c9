/**
 * The node side of WebSocket usage metering: hands the relayed text messages that may carry
 * usage to the session's {@link WebSocketUsageMeter} (after they were sent on, so nothing
 * waits for it) and reports its events through `config.metering`. Only created when
 * `config.metering.active`; binary frames and text messages over
 * {@link MAX_USAGE_MESSAGE_BYTES} are never decoded.
 */
import type { RawData } from 'ws';
import type { Metering, UsageEvent } from '../../policy/usage.js';
import {
  MAX_USAGE_MESSAGE_BYTES,
  WebSocketUsageMeter,
  type WebSocketUsageSession,
} from '../../policy/websocket-usage.js';

/** What the relay calls for the messages it passed on, and once at the end. */
export interface SessionObserver {
  client(data: RawData, isBinary: boolean): void;
  upstream(data: RawData, isBinary: boolean): void;
  end(): void;
}

function bytesOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** The text of a message worth reading, or `undefined` (binary, too large, no marker in it). */
function readable(
  data: RawData,
  isBinary: boolean,
  markers: readonly Buffer[],
): string | undefined {
  if (isBinary || markers.length === 0) return undefined;
  const bytes = bytesOf(data);
  if (bytes.length > MAX_USAGE_MESSAGE_BYTES) return undefined;
  for (const marker of markers) if (bytes.includes(marker)) return bytes.toString('utf8');
  return undefined;
}

/** An observer that meters one session and reports each event with `ctx`. */
export function meterSession<Ctx>(
  metering: Metering<Ctx>,
  session: WebSocketUsageSession,
  ctx: Ctx,
): SessionObserver {
  const meter = new WebSocketUsageMeter(session);
  const upstreamMarkers = meter.upstreamMarkers.map((m) => Buffer.from(m));
  const clientMarkers = meter.clientMarkers.map((m) => Buffer.from(m));
  const report = (events: UsageEvent[]) => {
    for (const event of events) metering.report(event, ctx);
  };
  return {
    client(data, isBinary) {
      const text = readable(data, isBinary, clientMarkers);
      if (text !== undefined) report(meter.client(text));
    },
    upstream(data, isBinary) {
      const text = readable(data, isBinary, upstreamMarkers);
      if (text !== undefined) report(meter.upstream(text));
    },
    end() {
      report(meter.end());
    },
  };
}

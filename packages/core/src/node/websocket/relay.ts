/**
 * The relay between the client's WebSocket and Model Studio's: messages both ways in order
 * (text stays text, binary stays binary), backpressure, close codes and reasons passed through,
 * pings to both sides, and the session time limit.
 */
import type { RawData, WebSocket } from 'ws';
import {
  isSendableCloseCode,
  WS_CLOSE_GOING_AWAY,
  WS_CLOSE_IDLE,
  WS_CLOSE_MESSAGE_TOO_BIG,
  WS_CLOSE_POLICY,
  WS_CLOSE_SESSION_LIMIT,
  WS_CLOSE_UPSTREAM_LOST,
} from './close-codes.js';
import type { SessionObserver } from './metering.js';

export interface RelayOptions {
  /** Pause reading one side once this many bytes wait to be written to the other. */
  maxBufferedBytes: number;
  /** 0 = no pings. */
  pingIntervalMs: number;
  /** 0 = no limit. */
  maxSessionSeconds: number;
  /** Longest time a message may take to arrive whole (its first frame to its last). */
  messageTimeoutMs: number;
  /** Longest time without a whole message either way; 0 = no limit. */
  idleTimeoutMs: number;
  /**
   * Checks each text message of the client before it is forwarded: a reason refuses it (the
   * client is closed with 1008 and that reason, Model Studio with 1000).
   */
  inspectClient?: ((text: string) => string | undefined) | undefined;
  /**
   * Sees each message after it was passed on (usage metering), and the session's end (before
   * `onEnd`); absent when nothing meters.
   */
  observe?: SessionObserver | undefined;
  /** Called once, when both sides are closed. */
  onEnd: () => void;
}

/** A running relay. */
export interface Relay {
  /** Closes both sides with `code` (the proxy is going away); resolves when both are closed. */
  shutdown(code?: number, reason?: string): Promise<void>;
  /** Cuts both connections now. */
  terminate(): void;
  /** Bytes queued in memory for writing, both ways. */
  buffered(): number;
  /** Bytes of messages being received (declared so far), both ways: held until they end. */
  pendingBytes(): number;
  /**
   * Ends the session when a message is late (`messageTimeoutMs`) or it was idle
   * (`idleTimeoutMs`) at `now` (ms). Called periodically by the proxy.
   */
  check(now: number): void;
  /** Ends the session because the proxy's memory for unfinished messages is full. */
  evict(): void;
}

/** The part of `ws`'s receiver (ws 8) that says how much of a message it holds. */
interface ReceiverState {
  _totalPayloadLength?: number;
}

/**
 * Bytes of the message `ws` is receiving on `socket` (the declared lengths of its frames so
 * far: what it holds, or will, until the message ends), 0 between messages. `ws` does not
 * expose this; read defensively (0 when the internals differ, leaving the idle timeout).
 */
function receivingBytes(socket: WebSocket): number {
  const receiver = (socket as unknown as { _receiver?: ReceiverState | null })._receiver;
  const n = receiver?._totalPayloadLength;
  return typeof n === 'number' && n > 0 ? n : 0;
}

/** Close code sent to the other side for a protocol error `ws` reported on one side. */
function codeForError(error: Error & { code?: unknown }): number | undefined {
  switch (error.code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return WS_CLOSE_MESSAGE_TOO_BIG;
    case 'WS_ERR_INVALID_UTF8':
      return 1007;
    case undefined:
      return undefined;
    default:
      return typeof error.code === 'string' && error.code.startsWith('WS_ERR_') ? 1002 : undefined;
  }
}

function closeWith(ws: WebSocket, code: number | undefined, reason: string | Buffer): void {
  if (ws.readyState === ws.CLOSED || ws.readyState === ws.CLOSING) return;
  if (code === undefined) ws.close();
  else ws.close(code, Buffer.byteLength(reason) <= 123 ? reason : '');
}

/** One direction: `from`'s messages sent to `to`, pausing `from` while `to` is backed up. */
class Pipe {
  paused = false;
  /** Whether `from` answered the last ping (or sent anything since). */
  alive = true;
  /** When `from` last sent a whole message (ms), or the relay started. */
  lastMessageAt = Date.now();
  /** When the message `from` is sending now was first seen in progress (ms), if one is. */
  receivingSince: number | undefined;

  constructor(
    readonly from: WebSocket,
    readonly to: WebSocket,
    readonly highWater: number,
    inspect?: (data: RawData) => boolean,
    observe?: (data: RawData, isBinary: boolean) => void,
  ) {
    const lowWater = Math.floor(highWater / 4);
    const onSent = () => {
      if (this.paused && to.bufferedAmount <= lowWater) {
        this.paused = false;
        from.resume();
      }
    };
    from.on('message', (data: RawData, isBinary: boolean) => {
      this.alive = true;
      this.lastMessageAt = Date.now();
      this.receivingSince = undefined;
      if (to.readyState !== to.OPEN) return;
      if (inspect !== undefined && !isBinary && !inspect(data)) return;
      to.send(data as Buffer, { binary: isBinary }, onSent);
      if (!this.paused && to.bufferedAmount > highWater) {
        this.paused = true;
        from.pause();
      }
      observe?.(data, isBinary);
    });
    from.on('pong', () => {
      this.alive = true;
    });
  }

  /** Whether the message `from` is sending has taken longer than `timeoutMs` at `now`. */
  late(now: number, timeoutMs: number): boolean {
    // A paused side is not read: its message cannot progress, which is not its fault.
    if (this.paused || receivingBytes(this.from) === 0) {
      this.receivingSince = undefined;
      return false;
    }
    this.receivingSince ??= now;
    return now - this.receivingSince > timeoutMs;
  }
}

/**
 * Relays between `client` and `upstream` (both open) until one side closes; then closes the
 * other with the same code and reason (1005 → no code; a side that vanished, 1006, → 1001 to
 * Model Studio or {@link WS_CLOSE_UPSTREAM_LOST} to the client).
 */
export function relay(client: WebSocket, upstream: WebSocket, options: RelayOptions): Relay {
  const inspectClient = options.inspectClient;
  const observe = options.observe;
  const up = new Pipe(
    client,
    upstream,
    options.maxBufferedBytes,
    inspectClient === undefined
      ? undefined
      : (data) => {
          const text = (
            Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)
          ).toString('utf8');
          const reason = inspectClient(text);
          if (reason === undefined) return true;
          if (!ending) {
            ending = true;
            closeWith(client, WS_CLOSE_POLICY, reason);
            closeWith(upstream, 1000, reason);
          }
          return false;
        },
    observe?.client,
  );
  const down = new Pipe(upstream, client, options.maxBufferedBytes, undefined, observe?.upstream);
  let clientClosed = false;
  let upstreamClosed = false;
  /** Set once the proxy decided how to close both sides; later close events are not relayed. */
  let ending = false;
  let clientErrorCode: number | undefined;
  let upstreamErrorCode: number | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let limitTimer: NodeJS.Timeout | undefined;
  let ended: (() => void) | undefined;
  const endedPromise = new Promise<void>((resolve) => {
    ended = resolve;
  });

  const finish = () => {
    if (!clientClosed || !upstreamClosed) return;
    clearInterval(pingTimer);
    clearTimeout(limitTimer);
    observe?.end();
    ended?.();
    options.onEnd();
  };

  client.on('error', (error) => {
    clientErrorCode ??= codeForError(error);
  });
  upstream.on('error', (error) => {
    upstreamErrorCode ??= codeForError(error);
  });

  client.on('close', (code, reason) => {
    clientClosed = true;
    if (!ending) {
      ending = true;
      closeWith(upstream, forwardedCloseCode(code, clientErrorCode ?? WS_CLOSE_GOING_AWAY), reason);
    }
    // The client is gone: nothing waits for Model Studio's close frame any more.
    if (upstream.readyState !== upstream.CLOSED && upstreamClosed === false) {
      upstream.resume();
    }
    finish();
  });
  upstream.on('close', (code, reason) => {
    upstreamClosed = true;
    if (!ending) {
      ending = true;
      closeWith(
        client,
        forwardedCloseCode(code, upstreamErrorCode ?? WS_CLOSE_UPSTREAM_LOST),
        reason,
      );
    }
    if (client.readyState !== client.CLOSED && clientClosed === false) client.resume();
    finish();
  });

  // Model Studio's socket was paused until now (see connectUpstream); it may also have gone
  // away while the client's handshake was completed.
  if (upstream.readyState === upstream.OPEN) upstream.resume();
  else {
    upstreamClosed = upstream.readyState === upstream.CLOSED;
    ending = true;
    closeWith(client, WS_CLOSE_UPSTREAM_LOST, '');
  }

  if (options.pingIntervalMs > 0) {
    pingTimer = setInterval(() => {
      for (const pipe of [up, down]) {
        const ws = pipe.from;
        if (ws.readyState !== ws.OPEN) continue;
        // A paused side is not read, so its pongs cannot arrive: not a sign of death.
        if (!pipe.alive && !pipe.paused) {
          ws.terminate();
          continue;
        }
        pipe.alive = false;
        ws.ping();
      }
    }, options.pingIntervalMs);
    pingTimer.unref();
  }
  if (options.maxSessionSeconds > 0) {
    limitTimer = setTimeout(() => {
      if (ending) return;
      ending = true;
      const reason = 'Session time limit reached';
      closeWith(client, WS_CLOSE_SESSION_LIMIT, reason);
      closeWith(upstream, 1000, reason);
    }, options.maxSessionSeconds * 1000);
    limitTimer.unref();
  }

  /** Closes `offender` with `code` and the other side with 1001, once. */
  const end = (offender: WebSocket, code: number, reason: string) => {
    if (ending) return;
    ending = true;
    closeWith(offender, code, reason);
    closeWith(offender === client ? upstream : client, WS_CLOSE_GOING_AWAY, reason);
    // A peer that holds a message back need not be waited for: what `ws` holds for it is
    // released now rather than after the closing handshake's 30 s.
    setTimeout(() => offender.terminate(), 1000).unref();
  };

  return {
    pendingBytes() {
      return receivingBytes(client) + receivingBytes(upstream);
    },
    check(now) {
      if (ending) return;
      for (const pipe of [up, down]) {
        if (pipe.late(now, options.messageTimeoutMs)) {
          end(pipe.from, WS_CLOSE_POLICY, 'Message not completed in time');
          return;
        }
      }
      const idle = options.idleTimeoutMs;
      if (idle > 0 && now - Math.max(up.lastMessageAt, down.lastMessageAt) > idle) {
        ending = true;
        const reason = 'Session idle';
        closeWith(client, WS_CLOSE_IDLE, reason);
        closeWith(upstream, 1000, reason);
      }
    },
    evict() {
      const offender = receivingBytes(client) >= receivingBytes(upstream) ? client : upstream;
      end(offender, WS_CLOSE_POLICY, 'Too much memory held by unfinished messages');
    },
    shutdown(code = WS_CLOSE_GOING_AWAY, reason = 'Server shutting down') {
      if (!ending) {
        ending = true;
        closeWith(client, code, reason);
        closeWith(upstream, code, reason);
      }
      return endedPromise;
    },
    terminate() {
      client.terminate();
      upstream.terminate();
    },
    buffered() {
      return client.bufferedAmount + upstream.bufferedAmount;
    },
  };
}

/**
 * The close code to pass on to the other side: the received one when it may be sent in a close
 * frame, none for 1005 (no code was given), else `fallback` (1006 and the like describe a lost
 * connection and may not be sent).
 */
function forwardedCloseCode(code: number, fallback: number): number | undefined {
  if (isSendableCloseCode(code)) return code;
  return code === 1005 ? undefined : fallback;
}

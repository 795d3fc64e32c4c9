import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from './body.js';
import { Clock } from './clock.js';
import { originAllowed, preflightHeaders } from './cors.js';
import { Exchange } from './exchange.js';
import { answerWithFault } from './fault-answer.js';
import { FaultQueue } from './faults.js';
import { KeyStore } from './keys.js';
import { createPaiEasState } from './pai-eas/options.js';
import { RECORDED_BODY_BYTES, Recorder } from './recorder.js';
import { matchRoute } from './router.js';
import { sleep } from './sleep.js';
import { checkMs, type EmulatorState } from './state.js';
import { TaskStore } from './tasks.js';
import { defaultReply } from './text.js';
import type { Emulator, EmulatorOptions, RecordedRequest } from './types.js';
import { Workspaces } from './workspaces.js';
import { createWebSocketEndpoints } from './ws/endpoints.js';

/**
 * The permanent API key the emulator accepts by default. Obviously fake, but shaped like a
 * real key (`sk-` and 32 letters and digits) so validation code treats it like one.
 */
export const DEFAULT_EMULATOR_API_KEY = 'sk-emulator000000000000000000000000';

/**
 * The workspace the emulator knows by default (an `X-DashScope-WorkSpace` it accepts), shaped
 * like Model Studio's workspace ids (`llm-…`).
 */
export const DEFAULT_EMULATOR_WORKSPACE = 'llm-emulator';

function copyHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? [...value] : value;
  }
  return out;
}

const SECRET_PARAM = /key|token|secret|signature|auth|password/i;

/** A log line for a request: no header values, no body, secret-looking query values redacted. */
function logLine(ex: Exchange, route: string, ms: number, early: boolean): string {
  const note = early
    ? ex.serverClosed
      ? ' (closed by the emulator)'
      : ' (client closed early)'
    : '';
  const params = [...ex.query.entries()].map(
    ([k, v]) =>
      `${encodeURIComponent(k)}=${SECRET_PARAM.test(k) ? '[redacted]' : encodeURIComponent(v)}`,
  );
  const path = (ex.pathname + (params.length > 0 ? `?${params.join('&')}` : '')).replace(
    /\b(sk|st)-[A-Za-z0-9_-]+/g,
    '$1-[redacted]',
  );
  const status = ex.res.headersSent ? String(ex.res.statusCode) : '-';
  return `${ex.req.method ?? '?'} ${path} ${status} ${route} ${Math.round(ms)}ms${note}`;
}

function validateOptions(options: EmulatorOptions): void {
  const { port = 0, apiKeys, cors, reply, log } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError('port must be an integer 0..65535');
  if (apiKeys !== undefined && !Array.isArray(apiKeys))
    throw new TypeError('apiKeys must be an array of strings');
  if (
    cors !== undefined &&
    typeof cors !== 'boolean' &&
    !(Array.isArray(cors) && cors.every((o) => typeof o === 'string'))
  ) {
    throw new TypeError('cors must be a boolean or an array of origins');
  }
  if (reply !== undefined && typeof reply !== 'function')
    throw new TypeError('reply must be a function');
  if (log !== undefined && typeof log !== 'function') throw new TypeError('log must be a function');
}

/**
 * Starts a local, strict Model Studio (DashScope) emulator and resolves once it listens.
 *
 * @example
 * const emulator = await startEmulator();
 * // DASHSCOPE base URL: emulator.url, API key: DEFAULT_EMULATOR_API_KEY
 * await emulator.close();
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  validateOptions(options);
  const state: EmulatorState = {
    clock: new Clock(options.clockOffsetSeconds ?? 0),
    keys: new KeyStore(options.apiKeys ?? [DEFAULT_EMULATOR_API_KEY]),
    workspaces: new Workspaces(options.workspaces ?? [DEFAULT_EMULATOR_WORKSPACE]),
    tasks: new TaskStore(),
    baseUrl: '',
    faults: new FaultQueue(),
    recorder: new Recorder(),
    latencyMs: checkMs('latencyMs', options.latencyMs ?? 0),
    chunkDelayMs: checkMs('chunkDelayMs', options.chunkDelayMs ?? 30),
    cors: Array.isArray(options.cors) ? [...options.cors] : (options.cors ?? true),
    allowTemporaryKeyMinting: options.allowTemporaryKeyMinting ?? false,
    failStreamsOnExpiry: options.failStreamsOnExpiry ?? false,
    controlRoutes: options.controlRoutes ?? true,
    reply: options.reply ?? defaultReply,
    paiEas: createPaiEasState(options.paiEas),
    tokensIssued: 0,
    openConnections: 0,
    openWebSockets: 0,
  };
  const log = options.log;
  const active = new Set<Exchange>();
  let closing: Promise<void> | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const ex = new Exchange(req, res, state);
    const started = performance.now();
    const match = matchRoute(ex.pathname, state.controlRoutes);
    const route = match?.route ?? 'unknown';
    let closedEarly = false;
    active.add(ex);
    res.on('close', () => {
      active.delete(ex);
      closedEarly = !res.writableFinished;
      if (ex.record) {
        if (res.headersSent) ex.record.status = res.statusCode;
        if (closedEarly) state.recorder.closedEarly(ex.record, !ex.serverClosed);
      }
      ex.controller.abort();
      if (log && route !== 'control') {
        try {
          log(logLine(ex, route, performance.now() - started, closedEarly));
        } catch {
          // A failing logger must not break the emulator.
        }
      }
    });
    if (closing) {
      ex.reset();
      return;
    }

    const body = await readBody(req);
    ex.body = body.data;
    const record: RecordedRequest = {
      id: ex.id,
      method: req.method ?? '',
      path: req.url ?? '/',
      headers: copyHeaders(req.headers),
      body: body.data.subarray(0, RECORDED_BODY_BYTES).toString('utf8'),
      receivedAt: Date.now(),
      route,
      clientClosedEarly: false,
    };
    ex.record = record;
    state.recorder.record(record);
    if (closedEarly) state.recorder.closedEarly(record, !ex.serverClosed);
    if (!body.complete || ex.closed) return;

    if (route !== 'control' && !(await sleep(state.latencyMs, ex.signal))) return;

    if (req.method === 'OPTIONS') {
      if (!match) return ex.sendError('not-found');
      const allowed = originAllowed(req.headers.origin, state.cors);
      ex.send(204, '', {
        Allow: [...match.methods, 'OPTIONS'].join(', '),
        ...(allowed ? preflightHeaders(match.methods) : {}),
      });
      return;
    }
    if (!match) return ex.sendError('not-found');
    if (!match.methods.includes(req.method ?? '')) {
      return ex.sendError('method-not-allowed', undefined, {
        Allow: [...match.methods, 'OPTIONS'].join(', '),
      });
    }
    if (body.tooLarge) return ex.sendError('too-large', undefined, { Connection: 'close' });
    if (route !== 'control' && route !== 'unknown') {
      const fault = state.faults.take(route);
      if (fault) {
        if (match.streams && (fault.type === 'stream-error' || fault.type === 'stream-cut'))
          ex.streamFault = fault;
        else return (match.answerFault ?? answerWithFault)(ex, fault, route);
      }
    }
    await match.handle(ex);
  };

  const server = createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch(() => {
      const ex = new Exchange(req, res, state);
      if (!res.headersSent && !res.destroyed) ex.sendError('system-error');
      else ex.reset();
    });
  });
  server.on('connection', (socket) => {
    state.openConnections += 1;
    socket.once('close', () => {
      state.openConnections -= 1;
    });
  });
  const webSockets = createWebSocketEndpoints(state, log);
  server.on('upgrade', webSockets.handleUpgrade);
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost =
    host === '0.0.0.0'
      ? '127.0.0.1'
      : host === '::'
        ? '[::1]'
        : host.includes(':')
          ? `[${host}]`
          : host;
  const url = `http://${urlHost}:${port}`;
  state.baseUrl = url;

  const emulator: Emulator = {
    url,
    port,
    get apiKeys() {
      return state.keys.permanentKeys;
    },
    fault(route, fault, times = 1) {
      state.faults.add(route, fault, times);
    },
    clearFaults() {
      state.faults.clear();
    },
    closeWebSockets(code, reason) {
      return webSockets.closeAll(code, reason);
    },
    setLatency(ms) {
      state.latencyMs = checkMs('latency', ms);
    },
    setChunkDelay(ms) {
      state.chunkDelayMs = checkMs('chunk delay', ms);
    },
    setClockOffset(seconds) {
      state.clock.offsetSeconds = seconds;
    },
    now() {
      return state.clock.now();
    },
    get requests() {
      return state.recorder.list();
    },
    clearRequests() {
      state.recorder.clear();
    },
    stats() {
      return {
        tokensIssued: state.tokensIssued,
        requests: { ...state.recorder.counts },
        openConnections: state.openConnections,
        openWebSockets: state.openWebSockets,
      };
    },
    addApiKey(key, keyOptions) {
      const workspace = keyOptions?.workspace;
      if (workspace !== undefined) state.workspaces.add(workspace);
      state.keys.add(key, workspace);
    },
    revokeApiKey(key) {
      state.keys.revoke(key);
    },
    waitForRequest(pred, timeoutMs = 5000) {
      if (closing) return Promise.reject(new Error('waitForRequest: the emulator was closed'));
      return state.recorder.waitFor(pred, timeoutMs);
    },
    on(event, fn) {
      state.recorder.on(event, fn);
    },
    off(event, fn) {
      state.recorder.off(event, fn);
    },
    close() {
      if (!closing) {
        closing = new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const ex of active) {
            ex.serverClosed = true;
            ex.controller.abort();
          }
          server.closeAllConnections();
          webSockets.close();
          state.recorder.close();
        });
      }
      return closing;
    },
  };
  return emulator;
}

import type { Exchange } from '../exchange.js';
import { assertFault, isEmulatorRoute } from '../faults.js';
import { checkMs } from '../state.js';
import type { RecordedRequest } from '../types.js';

/** Prefix of the control routes. */
export const CONTROL_PREFIX = '/__emulator';

type ControlHandler = (ex: Exchange) => void;

/** Masks permanent keys (`sk-…`) in text served over HTTP; temporary keys stay readable. */
function maskPermanentKeys(value: string): string {
  return value.replace(/\bsk-([A-Za-z0-9_-]{2})[A-Za-z0-9_-]*/g, 'sk-$1****');
}

function forHttp(r: RecordedRequest): RecordedRequest {
  const headers: RecordedRequest['headers'] = {};
  for (const [name, value] of Object.entries(r.headers)) {
    headers[name] = Array.isArray(value) ? value.map(maskPermanentKeys) : maskPermanentKeys(value);
  }
  return { ...r, path: maskPermanentKeys(r.path), headers, body: maskPermanentKeys(r.body) };
}

function stats(ex: Exchange) {
  const s = ex.state;
  return {
    tokensIssued: s.tokensIssued,
    requests: { ...s.recorder.counts },
    openConnections: s.openConnections,
    openWebSockets: s.openWebSockets,
  };
}

function withBody(ex: Exchange, fn: (body: Record<string, unknown>) => void): void {
  const body = ex.jsonBody();
  if (!body) return;
  try {
    fn(body);
  } catch (error) {
    ex.sendError('invalid-parameter', error instanceof Error ? error.message : String(error));
  }
}

/** Control routes by path, then method. */
export const CONTROL_ROUTES: Record<string, Record<string, ControlHandler>> = {
  [CONTROL_PREFIX]: {
    GET: (ex) =>
      ex.sendJson(200, {
        emulator: '@dashscope-token/emulator',
        now: ex.state.clock.now(),
        routes: Object.keys(CONTROL_ROUTES),
      }),
  },
  [`${CONTROL_PREFIX}/faults`]: {
    POST: (ex) =>
      withBody(ex, (body) => {
        const { route = '*', fault, times = 1 } = body;
        if (!isEmulatorRoute(route)) throw new TypeError(`unknown route: ${JSON.stringify(route)}`);
        assertFault(fault);
        const n = times === 'Infinity' || times === null ? Number.POSITIVE_INFINITY : times;
        if (typeof n !== 'number')
          throw new TypeError('times must be a positive integer or "Infinity"');
        ex.state.faults.add(route, fault, n);
        ex.sendJson(200, { queued: ex.state.faults.size });
      }),
    DELETE: (ex) => {
      ex.state.faults.clear();
      ex.sendJson(200, { queued: 0 });
    },
  },
  [`${CONTROL_PREFIX}/requests`]: {
    GET: (ex) => ex.sendJson(200, { requests: ex.state.recorder.list().map(forHttp) }),
    DELETE: (ex) => {
      ex.state.recorder.clear();
      ex.sendJson(200, { requests: [] });
    },
  },
  [`${CONTROL_PREFIX}/clock`]: {
    GET: (ex) =>
      ex.sendJson(200, { now: ex.state.clock.now(), offsetSeconds: ex.state.clock.offsetSeconds }),
    POST: (ex) =>
      withBody(ex, (body) => {
        ex.state.clock.offsetSeconds = body.offsetSeconds as number;
        ex.sendJson(200, {
          now: ex.state.clock.now(),
          offsetSeconds: ex.state.clock.offsetSeconds,
        });
      }),
  },
  [`${CONTROL_PREFIX}/latency`]: {
    POST: (ex) =>
      withBody(ex, (body) => {
        ex.state.latencyMs = checkMs('ms', body.ms as number);
        ex.sendJson(200, { ms: ex.state.latencyMs });
      }),
  },
  [`${CONTROL_PREFIX}/chunk-delay`]: {
    POST: (ex) =>
      withBody(ex, (body) => {
        ex.state.chunkDelayMs = checkMs('ms', body.ms as number);
        ex.sendJson(200, { ms: ex.state.chunkDelayMs });
      }),
  },
  [`${CONTROL_PREFIX}/keys`]: {
    POST: (ex) =>
      withBody(ex, (body) => {
        const { add, revoke, workspace } = body;
        if (add === undefined && revoke === undefined)
          throw new TypeError('give "add" and/or "revoke"');
        if (workspace !== undefined && typeof workspace !== 'string')
          throw new TypeError('"workspace" must be a string');
        if (workspace !== undefined) ex.state.workspaces.add(workspace);
        if (add !== undefined) ex.state.keys.add(add as string, workspace);
        if (revoke !== undefined) {
          if (typeof revoke !== 'string') throw new TypeError('"revoke" must be a string');
          ex.state.keys.revoke(revoke);
        }
        // Never echo keys back.
        ex.sendJson(200, { apiKeys: ex.state.keys.permanentKeys.length });
      }),
  },
  [`${CONTROL_PREFIX}/stats`]: {
    GET: (ex) => ex.sendJson(200, stats(ex)),
  },
};

import type { Exchange } from './exchange.js';
import { customError, HTML_502 } from './responses.js';
import type { EmulatorFault, RecordedRoute } from './types.js';

/** A JSON answer cut in the middle, plausible for `route`. */
function truncatedJson(route: RecordedRoute, requestId: string): string {
  const whole =
    route === 'tokens'
      ? JSON.stringify({ token: 'st-0123456789abcdef0123456789abcdef', expires_at: 1_700_000_000 })
      : route === 'chat' || route === 'models'
        ? JSON.stringify({ id: `chatcmpl-${requestId}`, object: 'chat.completion', choices: [] })
        : JSON.stringify({
            output: { text: 'Hello from the DashScope emulator' },
            request_id: requestId,
          });
  return whole.slice(0, Math.floor(whole.length / 2));
}

/**
 * Answers with `fault` instead of the normal answer. `stream-error`/`stream-cut` arrive here
 * only for requests that do not stream: they become a plain error / a reset.
 */
export function answerWithFault(ex: Exchange, fault: EmulatorFault, route: RecordedRoute): void {
  switch (fault.type) {
    case 'throttle':
      ex.sendError(
        'throttle',
        undefined,
        fault.retryAfterSeconds === undefined
          ? {}
          : { 'Retry-After': String(fault.retryAfterSeconds) },
      );
      return;
    case 'system-error':
      ex.sendError('system-error');
      return;
    case 'invalid-api-key':
      ex.sendError('invalid-api-key');
      return;
    case 'html-502':
      ex.send(502, HTML_502, { 'Content-Type': 'text/html' });
      return;
    case 'malformed-json':
      ex.send(200, truncatedJson(route, ex.id), {
        'Content-Type': 'application/json; charset=utf-8',
      });
      return;
    case 'reset':
    case 'stream-cut':
      ex.reset();
      return;
    case 'hang':
      // Answer nothing: the exchange ends when the client goes away or the emulator closes.
      return;
    case 'stream-error': {
      const status = fault.status ?? 500;
      const code = fault.code ?? 'SystemError';
      const message = fault.message ?? 'An internal error has occurred during streaming.';
      ex.sendJson(status, customError(ex.dialect, status, code, message, ex.id));
      return;
    }
    case 'status': {
      const headers = fault.headers ?? {};
      const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
      if (typeof fault.body === 'string') {
        ex.send(
          fault.status,
          fault.body,
          hasType ? headers : { 'Content-Type': 'text/plain; charset=utf-8', ...headers },
        );
      } else {
        const json = JSON.stringify(fault.body ?? null);
        ex.send(
          fault.status,
          json,
          hasType ? headers : { 'Content-Type': 'application/json; charset=utf-8', ...headers },
        );
      }
      return;
    }
  }
}

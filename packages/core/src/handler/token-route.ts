import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenProvider } from '../types.js';
import { checkAccess, hookErrorAnswer, resolveApiKey } from './access.js';
import type { HandlerConfig } from './config.js';
import { type ErrorAnswer, newRequestId, sendError, tokenErrorAnswer } from './error-response.js';

/** `Allow` of the token route. */
export const TOKEN_ROUTE_ALLOW = 'POST, OPTIONS';

const METHOD_NOT_ALLOWED: ErrorAnswer = Object.freeze({
  status: 405,
  code: 'MethodNotAllowed',
  message: 'Use POST to get a temporary key.',
  headers: { allow: TOKEN_ROUTE_ALLOW },
});

/**
 * `POST {prefix}/token`: a temporary key for a browser or app, `{"token", "expires_at"}` with
 * `Cache-Control: no-store`. Keys come from the token-route provider (TTL
 * `tokenRoute.expireInSeconds`), with at least `tokenRoute.minValiditySeconds` of life left: a
 * burst of page loads shares one mint. A plain `OPTIONS` answers 204 with `Allow`; other methods
 * 405. (Preflights are answered before this.)
 */
export async function handleTokenRoute<Ctx>(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Ctx,
  config: HandlerConfig<Ctx>,
  provider: TokenProvider,
): Promise<void> {
  const tokenRoute = config.tokenRoute!;
  if (req.method !== 'POST') {
    if (req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.setHeader('allow', TOKEN_ROUTE_ALLOW);
      res.setHeader('content-length', '0');
      res.end();
      return;
    }
    sendError(res, 'dashscope', METHOD_NOT_ALLOWED);
    return;
  }
  const refused = await checkAccess(config.authorize, ctx);
  if (refused !== undefined) {
    sendError(res, 'dashscope', refused);
    return;
  }
  let apiKey: string;
  try {
    apiKey = await resolveApiKey(config.apiKey, ctx);
  } catch (error) {
    sendError(res, 'dashscope', hookErrorAnswer(error));
    return;
  }
  let body: string;
  try {
    const token = await provider.getToken({
      apiKey,
      minValiditySeconds: tokenRoute.minValiditySeconds,
    });
    body = JSON.stringify({ token: token.token, expires_at: token.expiresAt });
  } catch (error) {
    sendError(res, 'dashscope', tokenErrorAnswer(error, [apiKey]));
    return;
  }
  if (res.destroyed || res.writableEnded) return;
  res.statusCode = 200;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.setHeader('pragma', 'no-cache');
  res.setHeader('x-request-id', newRequestId());
  res.end(body);
}

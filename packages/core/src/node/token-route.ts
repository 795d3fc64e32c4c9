import type { ServerResponse } from 'node:http';
import { boundAdmission, obtainToken } from '../policy/admission.js';
import type { HandlerConfig } from '../policy/config.js';
import { admitWithinLimits, type ClientFacts } from '../policy/limits.js';
import { tokenAnswer } from '../policy/request.js';
import type { TokenProvider } from '../types.js';
import { sendError, writeAnswer } from './answer.js';
import { clientGoneSignal } from './client-gone.js';

/**
 * `POST {prefix}/token` on node:http: admission and the client's budget, then a temporary key from the token-route
 * provider (TTL `tokenRoute.expireInSeconds`) with at least `tokenRoute.minValiditySeconds` of
 * life left: a burst of page loads shares one mint.
 */
export async function handleTokenRoute<Ctx, Req>(
  res: ServerResponse,
  ctx: Ctx,
  config: HandlerConfig<Ctx, Req>,
  provider: TokenProvider,
  client: ClientFacts,
): Promise<void> {
  let admission = admitWithinLimits(config, 'tokenRoute', ctx, client);
  if (admission instanceof Promise) {
    admission = await boundAdmission(config, admission, clientGoneSignal(res));
  }
  if ('refused' in admission) return sendError(res, 'dashscope', admission.refused);
  const token = await obtainToken(provider, {
    apiKey: admission.apiKey,
    minValiditySeconds: config.tokenRoute!.minValiditySeconds,
  });
  if ('refused' in token) return sendError(res, 'dashscope', token.refused);
  writeAnswer(res, tokenAnswer(token));
}

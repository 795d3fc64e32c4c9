/**
 * `POST {prefix}/pai-eas/workbench` on node:http: the body read within its size and time
 * bounds, then the PAI-EAS policy (target, allow-list, `authorize`, `authorizeWorkbench`) and
 * one `CreateServiceInstanceToken` call. The Workbench URL goes into the answer only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { INTERNAL_ERROR, payloadTooLargeAnswer } from '../policy/answers.js';
import type { HandlerConfig } from '../policy/config.js';
import {
  authorizeOnly,
  authorizeWorkbench,
  checkWorkbenchFraming,
  fetchWorkbenchUrl,
  type PaiEasConfig,
  WORKBENCH_BODY_TIMEOUT,
  workbenchAnswer,
  workbenchTarget,
} from '../policy/pai-eas.js';
import { sendError, writeAnswer } from './answer.js';
import { isPayloadTooLarge, readBody } from './body.js';
import { isClientGone } from './client-gone.js';

class BodyTimeout extends Error {}

/** `readBody` that gives up after `timeoutMs` (a client trickling its body). */
async function readBodyWithin(req: IncomingMessage, limit: number, timeoutMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeout()), timeoutMs);
  });
  try {
    return await Promise.race([readBody(req, limit), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Answers one Workbench request. */
export async function handleWorkbenchRoute<Ctx>(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Ctx,
  config: HandlerConfig<Ctx, IncomingMessage>,
  paiEas: PaiEasConfig<Ctx>,
  parsed: { value: unknown } | undefined,
): Promise<void> {
  let body: { bytes: Uint8Array } | { value: unknown };
  if (req.readableEnded && parsed !== undefined) body = parsed;
  else {
    const framing = checkWorkbenchFraming(
      paiEas,
      req.headers['content-length'],
      req.headers['transfer-encoding'],
    );
    if (framing !== undefined) return sendError(res, 'dashscope', framing);
    try {
      body = { bytes: await readBodyWithin(req, paiEas.maxBodyBytes, paiEas.bodyTimeoutMs) };
    } catch (error) {
      if (isClientGone(error)) return;
      if (error instanceof BodyTimeout) {
        sendError(res, 'dashscope', WORKBENCH_BODY_TIMEOUT);
        req.destroy();
        return;
      }
      return sendError(
        res,
        'dashscope',
        isPayloadTooLarge(error) ? payloadTooLargeAnswer(paiEas.maxBodyBytes) : INTERNAL_ERROR,
      );
    }
  }
  const target = workbenchTarget(paiEas, body);
  if ('refused' in target) return sendError(res, 'dashscope', target.refused);
  const refused =
    (await authorizeOnly(config.authorize, ctx)) ?? (await authorizeWorkbench(paiEas, ctx, target));
  if (refused !== undefined) return sendError(res, 'dashscope', refused.refused);
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  const result = await fetchWorkbenchUrl(paiEas, target, abort.signal);
  res.off('close', onClose);
  if ('refused' in result) return sendError(res, 'dashscope', result.refused, result.requestId);
  writeAnswer(res, workbenchAnswer(result));
}

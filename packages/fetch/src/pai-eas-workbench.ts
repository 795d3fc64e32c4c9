/**
 * `POST {prefix}/pai-eas/workbench` as a `Request` → `Response`: the body read within its size
 * and time bounds, then the PAI-EAS policy (target, allow-list, `authorize`,
 * `authorizeWorkbench`) and one `CreateServiceInstanceToken` call.
 */
import {
  type AuthorizeOption,
  authorizeOnly,
  authorizeWorkbench,
  checkWorkbenchFraming,
  errorAnswer,
  fetchWorkbenchUrl,
  INTERNAL_ERROR,
  type PaiEasConfig,
  payloadTooLargeAnswer,
  WORKBENCH_BODY_TIMEOUT,
  workbenchAnswer,
  workbenchTarget,
} from '@dashscope-token/core/neutral';
import { toResponse } from './answer.js';
import { BodyTooLargeError, readUpTo } from './body.js';

class BodyTimeout extends Error {}

/** The whole body within `limit` bytes and `timeoutMs` (the reader is cancelled after). */
async function readWithin(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      body.cancel().catch(() => {});
      reject(new BodyTimeout());
    }, timeoutMs);
  });
  try {
    const read = await Promise.race([readUpTo(body, limit, limit), timeout]);
    if (!read.done) throw new BodyTooLargeError();
    return read.bytes;
  } finally {
    clearTimeout(timer);
  }
}

/** Answers one Workbench request. */
export async function workbenchRoute<Ctx>(
  request: Request,
  ctx: Ctx,
  authorize: AuthorizeOption<Ctx> | undefined,
  paiEas: PaiEasConfig<Ctx>,
  cors: readonly string[],
): Promise<Response> {
  const fail = (error: Parameters<typeof errorAnswer>[1], requestId?: string) =>
    toResponse(errorAnswer('dashscope', error, requestId), cors);
  const framing = checkWorkbenchFraming(
    paiEas,
    request.headers.get('content-length') ?? undefined,
    request.headers.get('transfer-encoding') ?? undefined,
  );
  if (framing !== undefined) {
    request.body?.cancel().catch(() => {});
    return fail(framing);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readWithin(request.body, paiEas.maxBodyBytes, paiEas.bodyTimeoutMs);
  } catch (error) {
    if (error instanceof BodyTimeout) return fail(WORKBENCH_BODY_TIMEOUT);
    if (error instanceof BodyTooLargeError) return fail(payloadTooLargeAnswer(paiEas.maxBodyBytes));
    return fail(INTERNAL_ERROR);
  }
  const target = workbenchTarget(paiEas, { bytes });
  if ('refused' in target) return fail(target.refused);
  const refused =
    (await authorizeOnly(authorize, ctx)) ?? (await authorizeWorkbench(paiEas, ctx, target));
  if (refused !== undefined) return fail(refused.refused);
  const result = await fetchWorkbenchUrl(paiEas, target, request.signal);
  if ('refused' in result) return fail(result.refused, result.requestId);
  return toResponse(workbenchAnswer(result), cors);
}

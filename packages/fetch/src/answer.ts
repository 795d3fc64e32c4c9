/** The policy's answers and header lists as Web `Response`s and `Headers`. */
import { type Answer, mergeVary } from '@dashscope-token/core/neutral';

/** Appends flat `[name, value, …]` to `headers`; a `Vary` is merged with the one there. */
export function appendHeaders(headers: Headers, flat: readonly string[]): void {
  for (let i = 0; i < flat.length; i += 2) appendHeader(headers, flat[i]!, flat[i + 1]!);
}

function appendHeader(headers: Headers, name: string, value: string): void {
  if (name === 'vary') headers.set('vary', mergeVary(headers.get('vary') ?? undefined, value));
  else headers.append(name, value);
}

/** Statuses whose answers have no body. */
export function isBodyless(status: number, method: string): boolean {
  return method === 'HEAD' || status === 204 || status === 205 || status === 304;
}

/** `answer` as a `Response`, after the request's CORS headers (`cors`, flat). */
export function toResponse(answer: Answer, cors: readonly string[]): Response {
  const headers = new Headers();
  appendHeaders(headers, cors);
  for (const name in answer.headers) appendHeader(headers, name, answer.headers[name]!);
  return new Response(answer.body === '' ? null : answer.body, {
    status: answer.status,
    headers,
  });
}

/**
 * The emulated services behind `InternetEndpoint` (`/api/predict/{service}/…`): an
 * OpenAI-compatible model server (as vLLM, SGLang or BladeLLM deployed on EAS) that checks the
 * service token EAS expects, `Authorization: <token>` (a `Bearer ` prefix is accepted too).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Exchange } from '../exchange.js';
import { chatCompletionsRoute, type ModelServer } from '../routes/compatible.js';
import { lookUpModel } from '../routes/validate.js';
import { PREDICT_PREFIX } from './openapi.js';

/** The EAS gateway's request body limit. */
export const PREDICT_BODY_LIMIT = 1024 * 1024;

/** The service name and the model-server path of a `/api/predict/…` path. */
export function predictTarget(pathname: string): { service: string; rest: string } | undefined {
  if (!pathname.startsWith(PREDICT_PREFIX)) return undefined;
  const tail = pathname.slice(PREDICT_PREFIX.length);
  const slash = tail.indexOf('/');
  const service = slash === -1 ? tail : tail.slice(0, slash);
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(service)) return undefined;
  return { service, rest: slash === -1 ? '' : tail.slice(slash) };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const given = Buffer.from(header.replace(/^Bearer[ \t]+/i, '').trim());
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function plain(ex: Exchange, status: number, text: string): void {
  ex.send(status, text, { 'Content-Type': 'text/plain; charset=utf-8' });
}

/**
 * The exchange as the OpenAI-compatible handlers expect it: errors in OpenAI's shape, and the
 * service token (already checked) standing in for a Model Studio key.
 */
function asModelServer(ex: Exchange, service: string): Exchange {
  return Object.create(ex, {
    dialect: { value: 'compatible' },
    authenticate: { value: () => ({ kind: 'permanent', key: service }) },
  }) as Exchange;
}

/**
 * The service's one model, under the service's name (vLLM answers any other name with 404
 * "The model `x` does not exist."), generating like a catalogue chat model.
 */
function servedModel(name: string): ModelServer {
  return {
    name,
    lookUp(model) {
      if (model === name) return lookUpModel('qwen-plus', ['chat'], 'compatible');
      if (typeof model !== 'string' || model === '') {
        return lookUpModel(model, ['chat'], 'compatible'); // the "missing" answer
      }
      return { problem: 'unknown', message: `The model \`${model}\` does not exist.` };
    },
  };
}

/** Serves `/api/predict/{service}/…`. */
export async function predictRoute(ex: Exchange): Promise<void> {
  const target = predictTarget(ex.pathname);
  const service = target ? ex.state.paiEas.services.get(target.service) : undefined;
  if (!target || !service) {
    plain(ex, 404, 'service not found');
    return;
  }
  if (!tokenMatches(ex.req.headers.authorization, service.token)) {
    plain(ex, 401, 'Unauthorized');
    return;
  }
  if (ex.body.length > PREDICT_BODY_LIMIT) {
    plain(ex, 413, 'Request Entity Too Large');
    return;
  }
  if (target.rest === '/v1/chat/completions' && ex.req.method === 'POST') {
    await chatCompletionsRoute(asModelServer(ex, service.name), servedModel(service.name));
    return;
  }
  if (target.rest === '/v1/models' && ex.req.method === 'GET') {
    ex.sendJson(200, {
      object: 'list',
      data: [{ id: service.name, object: 'model', created: 0, owned_by: 'vllm' }],
    });
    return;
  }
  ex.sendJson(404, { detail: 'Not Found' });
}

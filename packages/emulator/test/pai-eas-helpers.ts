/**
 * Signs EAS OpenAPI requests with the official signer (`@alicloud/openapi-core`), so the
 * emulator is tested against Alibaba Cloud's own V3 implementation, and lets a test tamper
 * with any part of the request afterwards.
 */
import { createHash, randomBytes } from 'node:crypto';
import { OpenApiUtil } from '@alicloud/openapi-core';
import {
  DEFAULT_EMULATOR_ACCESS_KEY,
  DEFAULT_EMULATOR_EAS_SERVICE,
  type Emulator,
  type EmulatorAccessKey,
} from '../src/index.js';

export const SERVICE = DEFAULT_EMULATOR_EAS_SERVICE;
export const INSTANCE = 'emulator-llm-7b56869574-44nq9';
export const DESCRIBE_PATH = `/api/v2/services/cn-shanghai/${SERVICE}`;
export const TOKEN_PATH = `${DESCRIBE_PATH}/instances/${INSTANCE}/token`;

export interface SignedCall {
  path?: string;
  query?: Record<string, string>;
  action?: string;
  key?: EmulatorAccessKey;
  /** Signs with this secret instead of the key's. */
  secret?: string;
  date?: Date;
  nonce?: string;
  body?: string;
  /** Applied to the headers after signing (tampering). */
  tamper?: (headers: Record<string, string>) => void;
}

function acsDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The headers of a signed call (to replay them). */
export function signedHeaders(emulator: Emulator, call: SignedCall = {}): Record<string, string> {
  const key = call.key ?? DEFAULT_EMULATOR_ACCESS_KEY;
  const path = call.path ?? TOKEN_PATH;
  const query = call.query ?? (path === TOKEN_PATH ? { ActionType: 'WorkBench' } : {});
  const body = call.body ?? '';
  const headers: Record<string, string> = {
    host: new URL(emulator.url).host,
    'x-acs-action':
      call.action ?? (path.endsWith('/token') ? 'CreateServiceInstanceToken' : 'DescribeService'),
    'x-acs-version': '2021-07-01',
    'x-acs-date': acsDate(call.date ?? new Date()),
    'x-acs-signature-nonce': call.nonce ?? randomBytes(16).toString('hex'),
    'x-acs-content-sha256': createHash('sha256').update(body).digest('hex'),
    accept: 'application/json',
  };
  if (key.securityToken) headers['x-acs-security-token'] = key.securityToken;
  headers.authorization = OpenApiUtil.getAuthorization(
    { method: call.body ? 'POST' : 'GET', pathname: path, query, headers } as never,
    'ACS3-HMAC-SHA256',
    headers['x-acs-content-sha256']!,
    key.accessKeyId,
    call.secret ?? key.accessKeySecret,
  );
  call.tamper?.(headers);
  return headers;
}

/** Sends a signed call; resolves with the status and the JSON body. */
export async function signedCall(
  emulator: Emulator,
  call: SignedCall = {},
  headers: Record<string, string> = signedHeaders(emulator, call),
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const path = call.path ?? TOKEN_PATH;
  const query = call.query ?? (path === TOKEN_PATH ? { ActionType: 'WorkBench' } : {});
  const qs = new URLSearchParams(query).toString().replace(/\+/g, '%20');
  const { host: _host, ...send } = headers;
  const res = await fetch(`${emulator.url}${path}${qs ? `?${qs}` : ''}`, {
    method: call.body ? 'POST' : 'GET',
    headers: send,
    ...(call.body ? { body: call.body } : {}),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
}

/**
 * Alibaba Cloud signature V3 (`ACS3-HMAC-SHA256`): canonical request, string to sign,
 * signature and the `Authorization` header, for any OpenAPI request.
 */
import type { AlibabaCloudCredentials } from './credentials.js';
import { bytesOf, hmacSha256Hex, randomNonce, sha256Hex } from './digest.js';
import { canonicalQuery, canonicalUri } from './percent-encode.js';

/** The signature algorithm this module implements. */
export const SIGNATURE_ALGORITHM = 'ACS3-HMAC-SHA256';

/** A request to sign. */
export interface SignableRequest {
  /** HTTP method, e.g. `GET`. */
  method: string;
  /** Host name (and port, when not the default), e.g. `pai-eas.cn-shanghai.aliyuncs.com`. */
  host: string;
  /**
   * Path as sent on the wire, each segment already percent-encoded (see `encodePathSegment`).
   * @default '/'
   */
  path?: string;
  /** Query parameters (unencoded). An `undefined` value is sent as `name=`. @default {} */
  query?: Readonly<Record<string, string | undefined>>;
  /** API name, sent as `x-acs-action`, e.g. `CreateServiceInstanceToken`. */
  action: string;
  /** API version, sent as `x-acs-version`, e.g. `2021-07-01`. */
  version: string;
  /**
   * More headers to send. Those named `content-type` or starting with `x-acs-` are signed;
   * others (`accept`, `user-agent`) are sent unsigned. @default {}
   */
  headers?: Readonly<Record<string, string>>;
  /** Request body, hashed into `x-acs-content-sha256`. @default the empty body */
  body?: string | Uint8Array;
}

/** Values that are normally fresh for every request; fixed only to reproduce a test vector. */
export interface SignOptions {
  /** The signing time, sent as `x-acs-date`. @default now */
  date?: Date;
  /** `x-acs-signature-nonce`. @default 16 random bytes in hex */
  nonce?: string;
}

/** A signed request, ready to send. */
export interface SignedRequest {
  /** Path and canonical query (`/p?a=1`), to append to the origin. */
  pathAndQuery: string;
  /**
   * Every header to send, lowercase names, including `authorization`, `host`, `x-acs-date`,
   * `x-acs-signature-nonce`, `x-acs-content-sha256` and, for STS, `x-acs-security-token`.
   * Treat as secret: never log it.
   */
  headers: Record<string, string>;
  /** The `;`-joined names of the signed headers. */
  signedHeaders: string;
}

/** `x-acs-date`: `YYYY-MM-DDTHH:mm:ssZ`, UTC, no milliseconds. */
export function formatAcsDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isSignedHeader(name: string): boolean {
  return name === 'host' || name === 'content-type' || name.startsWith('x-acs-');
}

/**
 * The canonical headers block and the signed-header names of `headers` (names lowercased,
 * values trimmed, sorted; the block ends with a newline).
 */
export function canonicalHeaders(headers: Readonly<Record<string, string>>): {
  block: string;
  signedHeaders: string;
} {
  const values = new Map<string, string[]>();
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (!isSignedHeader(name)) continue;
    const list = values.get(name) ?? [];
    list.push(value.trim());
    values.set(name, list);
  }
  const names = [...values.keys()].sort();
  const block = names.map((name) => `${name}:${values.get(name)!.sort().join(',')}\n`).join('');
  return { block, signedHeaders: names.join(';') };
}

/**
 * The V3 canonical request:
 * `METHOD\nCanonicalURI\nCanonicalQuery\nCanonicalHeaders\nSignedHeaders\nHashedPayload`.
 */
export function canonicalRequest(parts: {
  method: string;
  path: string;
  query: string;
  headers: Readonly<Record<string, string>>;
  payloadHash: string;
}): string {
  const { block, signedHeaders } = canonicalHeaders(parts.headers);
  return [
    parts.method.toUpperCase(),
    canonicalUri(parts.path),
    parts.query,
    block,
    signedHeaders,
    parts.payloadHash,
  ].join('\n');
}

/**
 * Signs `request` with Alibaba Cloud signature V3 (`ACS3-HMAC-SHA256`). STS credentials add a
 * signed `x-acs-security-token`. Each call without `options` uses a new date and nonce.
 *
 * @example
 * const signed = await signRequest(
 *   { method: 'GET', host: 'pai-eas.cn-shanghai.aliyuncs.com', path: '/api/v2/services/cn-shanghai/my_svc',
 *     action: 'DescribeService', version: '2021-07-01' },
 *   { accessKeyId, accessKeySecret },
 * );
 * await fetch(`https://${host}${signed.pathAndQuery}`, { headers: signed.headers });
 */
export async function signRequest(
  request: SignableRequest,
  credentials: AlibabaCloudCredentials,
  options: SignOptions = {},
): Promise<SignedRequest> {
  const path = request.path ?? '/';
  const query = canonicalQuery(request.query);
  const body = request.body === undefined ? new Uint8Array(0) : bytesOf(request.body);
  const payloadHash = await sha256Hex(body);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    headers[name.toLowerCase()] = value;
  }
  headers.host = request.host;
  headers['x-acs-action'] = request.action;
  headers['x-acs-version'] = request.version;
  headers['x-acs-date'] = formatAcsDate(options.date ?? new Date());
  headers['x-acs-signature-nonce'] = options.nonce ?? randomNonce();
  headers['x-acs-content-sha256'] = payloadHash;
  if (credentials.securityToken) headers['x-acs-security-token'] = credentials.securityToken;

  const canonical = canonicalRequest({ method: request.method, path, query, headers, payloadHash });
  const { signedHeaders } = canonicalHeaders(headers);
  const stringToSign = `${SIGNATURE_ALGORITHM}\n${await sha256Hex(canonical)}`;
  const signature = await hmacSha256Hex(credentials.accessKeySecret, stringToSign);
  headers.authorization = `${SIGNATURE_ALGORITHM} Credential=${credentials.accessKeyId},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return { pathAndQuery: query === '' ? path : `${path}?${query}`, headers, signedHeaders };
}

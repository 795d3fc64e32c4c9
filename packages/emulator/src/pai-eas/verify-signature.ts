/**
 * Strict verification of Alibaba Cloud signature V3 (`ACS3-HMAC-SHA256`) requests, written
 * independently of any client (node:crypto): authorization format, the signed-header set,
 * the body hash, `x-acs-date` within 15 minutes, the AccessKey (and its STS token), the
 * signature, nonce reuse, and the key's RAM permissions. Each failure has the gateway's code.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { EasFailure } from './answers.js';
import { NONCE_WINDOW_SECONDS } from './nonces.js';
import type { EmulatedEasAction, EmulatorAccessKey, PaiEasState } from './options.js';

/** What the verifier needs of a request. */
export interface SignedRequestFacts {
  method: string;
  /** Path as received (still percent-encoded). */
  rawPath: string;
  /** Query string as received, without `?`. */
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const AUTHORIZATION =
  /^ACS3-HMAC-SHA256 Credential=([^,\s]+),SignedHeaders=([a-z0-9;-]+),Signature=([0-9a-f]{64})$/;
const ACS_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const REQUIRED_SIGNED = [
  'host',
  'x-acs-action',
  'x-acs-content-sha256',
  'x-acs-date',
  'x-acs-signature-nonce',
  'x-acs-version',
];

function fail(status: number, code: string, message: string): EasFailure {
  return { status, code, message };
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

function canonicalQueryOf(rawQuery: string): string | undefined {
  if (rawQuery === '') return '';
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq === -1 ? part : part.slice(0, eq));
    const value = decode(eq === -1 ? '' : part.slice(eq + 1));
    if (name === undefined || value === undefined) return undefined;
    pairs.push([rfc3986(name), rfc3986(value)]);
  }
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(',') : value).trim();
}

function secretsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies `request` as a call of `action`, at emulator time `now` (UNIX seconds); the
 * AccessKey that signed it, or the failure to answer with.
 */
export function verifySignature(
  state: PaiEasState,
  request: SignedRequestFacts,
  action: EmulatedEasAction,
  now: number,
): { key: EmulatorAccessKey } | { failure: EasFailure } {
  const { headers } = request;
  const authorization = headerValue(headers, 'authorization');
  if (!authorization) {
    return {
      failure: fail(400, 'IncompleteSignature', 'The request has no Authorization header.'),
    };
  }
  const match = AUTHORIZATION.exec(authorization);
  if (!match) {
    return {
      failure: fail(
        400,
        'IncompleteSignature',
        'The Authorization header is not "ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…".',
      ),
    };
  }
  const [, accessKeyId, signedList, signature] = match as unknown as [
    string,
    string,
    string,
    string,
  ];
  const signed = signedList.split(';');
  const sorted = [...signed].sort();
  if (signed.some((name, i) => name !== sorted[i] || name === sorted[i - 1])) {
    return {
      failure: fail(400, 'IncompleteSignature', 'SignedHeaders must be sorted and unique.'),
    };
  }
  const mustSign = [...REQUIRED_SIGNED];
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-acs-') || name === 'content-type') mustSign.push(name);
  }
  const unsigned = mustSign.filter((name) => !signed.includes(name));
  if (unsigned.length > 0) {
    return {
      failure: fail(
        400,
        'IncompleteSignature',
        `These headers must be present and signed: ${[...new Set(unsigned)].sort().join(', ')}.`,
      ),
    };
  }
  const absent = signed.filter((name) => headerValue(headers, name) === undefined);
  if (absent.length > 0) {
    return {
      failure: fail(400, 'IncompleteSignature', `Signed headers missing: ${absent.join(', ')}.`),
    };
  }
  if (headerValue(headers, 'x-acs-action') !== action) {
    return {
      failure: fail(404, 'InvalidApi.NotFound', `x-acs-action must be ${action} on this path.`),
    };
  }
  if (headerValue(headers, 'x-acs-version') !== '2021-07-01') {
    return {
      failure: fail(404, 'InvalidApi.NotFound', 'The API version must be 2021-07-01.'),
    };
  }
  const date = headerValue(headers, 'x-acs-date') as string;
  const signedAt = Date.parse(date) / 1000;
  if (!ACS_DATE.test(date) || !Number.isFinite(signedAt)) {
    return {
      failure: fail(
        400,
        'InvalidTimeStamp.Format',
        'x-acs-date must be yyyy-MM-ddTHH:mm:ssZ in UTC.',
      ),
    };
  }
  if (Math.abs(now - signedAt) > NONCE_WINDOW_SECONDS) {
    return {
      failure: fail(
        400,
        'InvalidTimeStamp.Expired',
        'Specified time stamp or date value is expired (more than 15 minutes from the server time).',
      ),
    };
  }
  const bodyHash = sha256Hex(request.body);
  if (headerValue(headers, 'x-acs-content-sha256') !== bodyHash) {
    return {
      failure: fail(
        400,
        'SignatureDoesNotMatch',
        'x-acs-content-sha256 is not the SHA-256 of the request body.',
      ),
    };
  }
  const key = state.accessKeys.get(accessKeyId);
  const token = headerValue(headers, 'x-acs-security-token');
  if (!key || (key.securityToken !== undefined && token === undefined)) {
    return {
      failure: fail(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.'),
    };
  }
  if (
    token !== undefined &&
    (key.securityToken === undefined || !secretsEqual(token, key.securityToken))
  ) {
    return {
      failure: fail(
        400,
        'InvalidSecurityToken.MismatchWithAccessKey',
        'The security token does not match the access key.',
      ),
    };
  }
  const query = canonicalQueryOf(request.rawQuery);
  if (query === undefined) {
    return { failure: fail(400, 'IncompleteSignature', 'The query string is not well encoded.') };
  }
  const uri =
    request.rawPath === ''
      ? '/'
      : request.rawPath.replace(/\+/g, '%20').replace(/\*/g, '%2A').replace(/%7E/gi, '~');
  const canonicalHeaders = signed.map((name) => `${name}:${headerValue(headers, name)}\n`).join('');
  const canonical = [request.method, uri, query, canonicalHeaders, signedList, bodyHash].join('\n');
  const stringToSign = `ACS3-HMAC-SHA256\n${sha256Hex(canonical)}`;
  const expected = createHmac('sha256', key.accessKeySecret).update(stringToSign).digest('hex');
  if (!secretsEqual(expected, signature)) {
    return {
      failure: fail(
        400,
        'SignatureDoesNotMatch',
        `The request signature does not conform to Alibaba Cloud standards. server string to sign is:${stringToSign}`,
      ),
    };
  }
  const nonce = headerValue(headers, 'x-acs-signature-nonce') as string;
  if (!state.nonces.use(accessKeyId, nonce, now)) {
    return {
      failure: fail(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.'),
    };
  }
  if (key.allow && !key.allow.includes(action)) {
    return {
      failure: fail(
        403,
        'Forbidden.RAM',
        `User not authorized to operate on the specified resource, or this API does not support RAM (eas:${action}).`,
      ),
    };
  }
  return { key };
}

/**
 * SHA-256 and HMAC-SHA256 over WebCrypto (`globalThis.crypto.subtle`), so signing runs on
 * Node, Deno, Bun, workers and edge runtimes alike.
 */

const encoder = new TextEncoder();

function subtle(): typeof globalThis.crypto.subtle {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (globalThis.crypto.subtle) is not available in this runtime.');
  return s;
}

function hex(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

/** Bytes of `data`, UTF-8 for a string. */
export function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

/** Lowercase hex SHA-256 of `data` (UTF-8 for a string). */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  return hex(await subtle().digest('SHA-256', bytesOf(data)));
}

/** Lowercase hex HMAC-SHA256 of `data` under `key` (both UTF-8). */
export async function hmacSha256Hex(key: string, data: string): Promise<string> {
  const s = subtle();
  const cryptoKey = await s.importKey(
    'raw',
    encoder.encode(key),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  return hex(await s.sign('HMAC', cryptoKey, encoder.encode(data)));
}

/** A random nonce: 16 random bytes as 32 lowercase hex characters. */
export function randomNonce(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return hex(bytes.buffer);
}

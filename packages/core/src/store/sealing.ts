/**
 * Nothing usable at rest: a key's store slot is named by an HMAC of the permanent API key (never
 * the key), and what is stored there is sealed with AES-GCM under a key derived from the
 * permanent API key through HKDF, so only holders of the permanent key can find or read it.
 * WebCrypto only (`globalThis.crypto.subtle`): runtime-neutral.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const VERSION = 'v1';

/** The name and the seal of one API key's slot in the store. */
export interface StoreSlot {
  /** Hex HMAC-SHA-256 of the scope, keyed by the API key: the slot's name in the store. */
  readonly id: string;
  /** `v1.<base64 of IV and AES-GCM ciphertext>`, bound to `id`. */
  seal(plaintext: string): Promise<string>;
  /** The plaintext of a sealed value; `undefined` for anything else (garbage, another key, tampering). */
  open(sealed: unknown): Promise<string | undefined>;
}

function subtle(): typeof globalThis.crypto.subtle {
  const crypto = globalThis.crypto;
  if (crypto?.subtle === undefined) {
    throw new Error('WebCrypto (globalThis.crypto.subtle) is not available in this runtime.');
  }
  return crypto.subtle;
}

function toHex(bytes: ArrayBuffer): string {
  let out = '';
  for (const byte of new Uint8Array(bytes)) out += byte.toString(16).padStart(2, '0');
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

/**
 * The slot of `apiKey` for `scope` (what else distinguishes its tokens: base URL and TTL).
 * Rejects only when the runtime has no WebCrypto.
 */
export async function storeSlot(apiKey: string, scope: string): Promise<StoreSlot> {
  const crypto = subtle();
  const secret = encoder.encode(apiKey);
  const hmacKey = await crypto.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const id = toHex(
    await crypto.sign(
      'HMAC',
      hmacKey,
      encoder.encode(`dashscope-token/store-slot/${VERSION}\0${scope}`),
    ),
  ).slice(0, 40);
  const ikm = await crypto.importKey('raw', secret, 'HKDF', false, ['deriveKey']);
  const aesKey = await crypto.deriveKey(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: encoder.encode(`dashscope-token/${VERSION}`),
      info: encoder.encode(`token-cache-encryption\0${scope}`),
    },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
  const additionalData = encoder.encode(id);
  return {
    id,
    async seal(plaintext) {
      const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
      const sealed = new Uint8Array(
        await crypto.encrypt(
          { name: 'AES-GCM', iv, additionalData },
          aesKey,
          encoder.encode(plaintext),
        ),
      );
      const joined = new Uint8Array(iv.length + sealed.length);
      joined.set(iv);
      joined.set(sealed, iv.length);
      return `${VERSION}.${toBase64(joined)}`;
    },
    async open(sealed) {
      if (typeof sealed !== 'string' || !sealed.startsWith(`${VERSION}.`)) return undefined;
      const bytes = fromBase64(sealed.slice(VERSION.length + 1));
      if (bytes === undefined || bytes.length < 12 + 16) return undefined;
      try {
        const plain = await crypto.decrypt(
          { name: 'AES-GCM', iv: bytes.subarray(0, 12), additionalData },
          aesKey,
          bytes.subarray(12),
        );
        return decoder.decode(plain);
      } catch {
        return undefined;
      }
    },
  };
}

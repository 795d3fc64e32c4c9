/**
 * The hash a permanent key is reported by (usage events, telemetry): never the key itself.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/** 16 hex digits of the SHA-256 of `apiKey`. */
export function apiKeyHash(apiKey: string): string {
  return bytesToHex(sha256(utf8ToBytes(apiKey))).slice(0, 16);
}

import { createHash } from 'node:crypto';

/** Default embedding dimension (text-embedding-v3/v4). */
export const DEFAULT_DIMENSION = 1024;

/** Dimensions text-embedding-v3/v4 accept. */
export const ALLOWED_DIMENSIONS: readonly number[] = [2048, 1536, 1024, 768, 512, 256, 128, 64];

/**
 * A deterministic unit vector for `text`: the same text and dimension give the same vector
 * in both dialects. Seeded from SHA-256, values from a xorshift generator, L2-normalised.
 */
export function embed(text: string, dimension: number): number[] {
  const seed = createHash('sha256').update(`${dimension}:${text}`).digest();
  let s0 = seed.readUInt32LE(0) || 1;
  let s1 = seed.readUInt32LE(4) || 2;
  let s2 = seed.readUInt32LE(8) || 3;
  let s3 = seed.readUInt32LE(12) || 4;
  const out = new Array<number>(dimension);
  let norm = 0;
  for (let i = 0; i < dimension; i++) {
    // xoshiro128** step
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    const v = result / 0x1_0000_0000 - 0.5;
    out[i] = v;
    norm += v * v;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimension; i++) out[i] = (out[i] as number) * scale;
  return out;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A vector as OpenAI's `encoding_format: "base64"`: little-endian float32, base64. */
export function toBase64(vector: readonly number[]): string {
  const buf = Buffer.alloc(vector.length * 4);
  for (const [i, v] of vector.entries()) buf.writeFloatLE(v, i * 4);
  return buf.toString('base64');
}

/**
 * xxHash64, the hash Envoy uses for consistent-hash keys, ring points and maglev permutations
 * (HashUtil::xxHash64), from xxhash-wasm. Same input, same 64-bit value as Envoy, so a ring
 * built here places hosts where Envoy's would.
 */
import xxhash from 'xxhash-wasm';

const api = await xxhash();

/** xxHash64 of the UTF-8 bytes of `text`. */
export function xxHash64(text: string, seed: bigint = 0n): bigint {
  return api.h64(text, seed);
}

/** The high and low 32 bits of a 64-bit hash, as plain numbers (no BigInt on lookups). */
export function hiOf(h: bigint): number {
  return Number(h >> 32n);
}

export function loOf(h: bigint): number {
  return Number(h & 0xffffffffn);
}

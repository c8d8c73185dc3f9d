/**
 * Envoy's RING_HASH (ketama; source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc):
 * each host gets points `xxHash64("<address:port>_<i>")` in proportion to its weight, scaled so
 * the lightest host has a whole number of them and the ring has at least `minRingSize` points
 * (at most 8M). A request's hash takes the first point at or after it, wrapping round. Adding or
 * removing a host moves only the keys between its points and their neighbours: about 1/N.
 */
import { hiOf, loOf, xxHash64 } from '../../util/xxhash.ts';

export interface Ring {
  /** Point hashes, sorted, split into 32-bit halves so lookups need no BigInt. */
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  /** Index into the host list for each point. */
  readonly host: Uint32Array;
}

const MAX_RING_SIZE = 8 * 1024 * 1024;

/** `keys[i]` is host i's `address:port`; weights need not be normalised. */
export function buildRing(keys: readonly string[], weights: readonly number[], minRingSize: number): Ring {
  let sum = 0;
  for (const w of weights) sum += w;
  let minWeight = 1;
  for (const w of weights) minWeight = Math.min(minWeight, w / sum);
  const scale = Math.min(Math.ceil(minWeight * minRingSize) / minWeight, MAX_RING_SIZE);
  const hashes: bigint[] = [];
  const owners: number[] = [];
  // Running sums, so fractional shares still add up to the ring size (as Envoy does).
  let current = 0;
  let target = 0;
  for (let h = 0; h < keys.length; h++) {
    target += (scale * weights[h]!) / sum;
    for (let i = 0; current < target; i++, current++) {
      hashes.push(xxHash64(keys[h] + '_' + i));
      owners.push(h);
    }
  }
  const order = hashes
    .map((_, i) => i)
    .sort((a, b) => (hashes[a]! < hashes[b]! ? -1 : hashes[a]! > hashes[b]! ? 1 : 0));
  const n = order.length;
  const ring: Ring = { hi: new Uint32Array(n), lo: new Uint32Array(n), host: new Uint32Array(n) };
  for (let i = 0; i < n; i++) {
    const j = order[i]!;
    ring.hi[i] = hiOf(hashes[j]!);
    ring.lo[i] = loOf(hashes[j]!);
    ring.host[i] = owners[j]!;
  }
  return ring;
}

/**
 * The host index for a 64-bit hash given as halves: first point ≥ hash, else the first point.
 * `attempt` > 0 steps round the ring (Envoy's answer to a retry that must avoid a host).
 */
export function pickFromRing(ring: Ring, hi: number, lo: number, attempt: number): number {
  const n = ring.hi.length;
  let low = 0;
  let high = n;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const mh = ring.hi[mid]!;
    if (mh < hi || (mh === hi && ring.lo[mid]! < lo)) low = mid + 1;
    else high = mid;
  }
  let at = low === n ? 0 : low;
  if (attempt > 0) at = (at + attempt) % n;
  return ring.host[at]!;
}

/**
 * RING_HASH as Envoy builds its points (ketama; ring_hash_lb.cc): a host's points are
 * `xxHash64("<address:port>_<i>")`, in proportion to its weight, and a request's hash takes the
 * first point at or after it, wrapping round.
 *
 * How many points: Envoy spreads `minimumRingSize` over all hosts, so every host's count changes
 * when one is added or removed, and about 1.6/N of the keys move at 10 hosts (measured). sluice
 * gives the lightest host `minimumRingSize` points whatever N is (the ring is then at least that
 * size, as the setting asks), so a host's points never change while it stays, and adding or
 * removing one moves about 1/N of the keys. Past MAX_POINTS in all (hundreds of hosts) the
 * per-host count shrinks to stay within it, bounding the time a ring takes to build.
 */
import { hiOf, loOf, xxHash64 } from '../../util/xxhash.ts';

export interface Ring {
  /** Point hashes, sorted, split into 32-bit halves so lookups need no BigInt. */
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  /** Index into the host list for each point. */
  readonly host: Uint32Array;
}

/** 2^18 points: a ring builds in tens of milliseconds; 256 hosts keep 1024 points each. */
const MAX_POINTS = 1 << 18;

/** `keys[i]` is host i's `address:port`; weights need not be normalised. */
export function buildRing(keys: readonly string[], weights: readonly number[], minRingSize: number): Ring {
  let sum = 0;
  for (const w of weights) sum += w;
  let lightest = Infinity;
  for (const w of weights) lightest = Math.min(lightest, w);
  // Points for the whole ring: the lightest host gets minRingSize, the others in proportion.
  const units = sum / lightest;
  const scale = units * Math.max(1, Math.min(minRingSize, Math.floor(MAX_POINTS / units)));
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

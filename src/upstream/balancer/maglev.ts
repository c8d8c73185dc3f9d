/**
 * Envoy's MAGLEV (source/extensions/load_balancing_policies/maglev/maglev_lb.cc, after the
 * Maglev paper): a table of `tableSize` (prime) slots filled by hosts taking turns along their
 * own permutation (offset `xxHash64(key) % M`, skip `xxHash64(key, 1) % (M − 1) + 1`), each turn
 * weighted. A request takes slot `hash % M`. Lookups are one array read; removing a host moves
 * its keys and, by the paper's measure, a small share more than ring hash would.
 */
import { xxHash64 } from '../../util/xxhash.ts';

/** Host index per slot. */
export type MaglevTable = Uint32Array;

export function buildMaglev(
  keys: readonly string[],
  weights: readonly number[],
  tableSize: number,
): MaglevTable {
  const table = new Uint32Array(tableSize);
  if (keys.length === 0) return table;
  let sum = 0;
  for (const w of weights) sum += w;
  // Hosts in key order, so the table does not depend on the order endpoints were listed in.
  const order = keys
    .map((_, i) => i)
    .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  const m = BigInt(tableSize);
  const offset = order.map((i) => Number(xxHash64(keys[i]!) % m));
  const skip = order.map((i) => Number(xxHash64(keys[i]!, 1n) % (m - 1n)) + 1);
  const weight = order.map((i) => weights[i]! / sum);
  let maxWeight = 0;
  for (const w of weight) maxWeight = Math.max(maxWeight, w);
  const next = order.map(() => 0);
  const target = order.map(() => 0);
  const filled = new Uint8Array(tableSize);
  let count = 0;
  for (let iteration = 1; count < tableSize; iteration++) {
    for (let e = 0; e < order.length && count < tableSize; e++) {
      // A host at the largest weight takes a slot every round; one at a third of it every third.
      if (iteration * weight[e]! < target[e]!) continue;
      target[e]! += maxWeight;
      let c = (offset[e]! + skip[e]! * next[e]!) % tableSize;
      while (filled[c] === 1) {
        next[e]! += 1;
        c = (offset[e]! + skip[e]! * next[e]!) % tableSize;
      }
      table[c] = order[e]!;
      filled[c] = 1;
      next[e]! += 1;
      count++;
    }
  }
  return table;
}

/** 2^32 mod M, so `hash % M` comes from the halves with plain numbers. */
function twoTo32Mod(m: number): number {
  return 4294967296 % m;
}

/** Slot for a 64-bit hash given as halves; `attempt` > 0 flips the hash as Envoy does for retries. */
export function pickFromMaglev(table: MaglevTable, hi: number, lo: number, attempt: number): number {
  const m = table.length;
  if (attempt > 0) {
    // hash ^= ~0 - attempt + 1: for small attempts that is the complement of (attempt - 1).
    hi = ~hi >>> 0;
    lo = (lo ^ (0xffffffff - attempt + 1)) >>> 0;
  }
  const slot = ((hi % m) * twoTo32Mod(m) + lo) % m;
  return table[slot]!;
}

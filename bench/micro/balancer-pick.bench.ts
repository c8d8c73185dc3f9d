/**
 * DR-4 per-request balancer cost: the consistent-hash key (xxHash64 of a header value) and the
 * pick of an endpoint from a built ring-hash ring or maglev table, beside LEAST_REQUEST's pick.
 * Tables are built once per endpoint set (endpoints.ts); only their first request pays that.
 */
import type { HostSet } from '../../src/upstream/endpoints.ts';
import { pickHost } from '../../src/upstream/endpoints.ts';
import { buildRing, pickFromRing } from '../../src/upstream/balancer/ring-hash.ts';
import { buildMaglev, pickFromMaglev } from '../../src/upstream/balancer/maglev.ts';
import { hiOf, loOf, xxHash64 } from '../../src/util/xxhash.ts';
import { bench } from './timing.ts';

const HOSTS = 4;
const keys = Array.from({ length: HOSTS }, (_, i) => `10.0.0.${i + 1}:8080`);
const weights = keys.map(() => 1);
const users = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
const hashes = users.map((u) => xxHash64(u));
const his = hashes.map(hiOf);
const los = hashes.map(loOf);
let n = 0;

/** A host set as endpoints.ts keeps one, with only what a pick reads. */
function setOf(lb: 'LEAST_REQUEST' | 'RING_HASH' | 'MAGLEV', tableSize: number): HostSet {
  return {
    cluster: { lb, hashTableSize: tableSize, outlier: null },
    hosts: keys.map((hostPort) => ({ hostPort, active: 0 })),
    weights,
    state: { healthVersion: 0, ejectedCount: 0 },
    dnsSignature: '',
    view: null,
  } as unknown as HostSet;
}

let t = process.hrtime.bigint();
const ring = buildRing(keys, weights, 1024);
const ringMs = Number(process.hrtime.bigint() - t) / 1e6;
t = process.hrtime.bigint();
const table = buildMaglev(keys, weights, 65537);
const maglevMs = Number(process.hrtime.bigint() - t) / 1e6;
process.stdout.write(
  `build: ring of ${ring.hi.length} points ${ringMs.toFixed(1)} ms; maglev table of ${table.length} ${maglevMs.toFixed(1)} ms (once per endpoint set)\n`,
);

bench('xxHash64 of a header value (the request key)', () => xxHash64(users[n++ & 1023]!));
bench('key → hi/lo halves', () => {
  const h = hashes[n++ & 1023]!;
  return hiOf(h) + loOf(h);
});
bench('pickFromRing (4 hosts, 4096 points)', () => pickFromRing(ring, his[n & 1023]!, los[n++ & 1023]!, 0));
bench('pickFromMaglev (table 65537)', () => pickFromMaglev(table, his[n & 1023]!, los[n++ & 1023]!, 0));

const lr = setOf('LEAST_REQUEST', 0);
const rh = setOf('RING_HASH', 1024);
const mg = setOf('MAGLEV', 65537);
const keyOf = (i: number): { hi: number; lo: number; setCookie: null } => ({
  hi: his[i & 1023]!,
  lo: los[i & 1023]!,
  setCookie: null,
});
const keyed = users.map((_, i) => keyOf(i));
bench('pickHost LEAST_REQUEST', () => pickHost(lr, null, null));
bench('pickHost RING_HASH (key given)', () => pickHost(rh, null, keyed[n++ & 1023]!));
bench('pickHost MAGLEV (key given)', () => pickHost(mg, null, keyed[n++ & 1023]!));

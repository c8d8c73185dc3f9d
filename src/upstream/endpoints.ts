/**
 * Cluster → the endpoints a request may use, and the pick among them. Static sources are built
 * once per Cluster object; DNS sources are rebuilt only when an answer changes. Resolution
 * happens once per request decision (DESIGN §2 endpoints.ts).
 */
import type { Cluster, LbPolicy } from '../snapshot/types.ts';
import { hostFor, type UpstreamHost } from './pools.ts';
import { cachedAnswer, settledAnswer, type DnsAnswer } from './dns.ts';
import { balancerStateFor, type BalancerState } from './balancer/state.ts';
import { pickRoundRobin } from './balancer/round-robin.ts';
import { pickLeastRequest } from './balancer/least-request.ts';
import { pickRandom } from './balancer/random.ts';

export interface HostSet {
  readonly hosts: readonly UpstreamHost[];
  /**
   * What the balancer picks from: `hosts` itself when every weight is equal, else each host
   * repeated in proportion to its endpoint weight (SE-3 `weight`), weights reduced by their gcd
   * and capped so the list stays small.
   */
  readonly candidates: readonly UpstreamHost[];
  readonly lb: LbPolicy;
  readonly state: BalancerState;
  /** For DNS sources: the answer versions this set was built from, joined. */
  readonly dnsSignature: string;
}

const sets = new WeakMap<Cluster, HostSet>();

/**
 * The endpoints of `cluster` now, or a promise when a DNS name has never been resolved (only the
 * first requests after start or a new name wait). An empty `hosts` means no healthy upstream:
 * Envoy's DNS cluster with no answers has zero hosts, so a resolution failure is 503 UH (not UF).
 */
export function hostSetOf(cluster: Cluster): HostSet | Promise<HostSet> {
  const cached = sets.get(cluster);
  const src = cluster.endpoints;
  if (src.kind === 'static') {
    if (cached !== undefined) return cached;
    const hosts: UpstreamHost[] = [];
    const weights: number[] = [];
    for (const ep of src.endpoints) {
      hosts.push(hostFor(cluster, ep.address, ep.port));
      weights.push(ep.weight);
    }
    return remember(cluster, hosts, weights, '');
  }
  const now = Date.now();
  let signature = '';
  let unresolved: DnsAnswer | null = null;
  const eps = src.endpoints;
  for (let i = 0; i < eps.length; i++) {
    const a = cachedAnswer(eps[i]!.address, now);
    if (a.version === 0 && a.pending !== null) unresolved = a;
    signature += a.version + ',';
  }
  if (unresolved !== null) return settledAnswer(unresolved.name).then(() => hostSetOf(cluster));
  if (cached !== undefined && cached.dnsSignature === signature) return cached;
  const hosts: UpstreamHost[] = [];
  const weights: number[] = [];
  const seen = new Set<string>();
  for (const ep of eps) {
    const a = cachedAnswer(ep.address, now);
    // DNS_ROUND_ROBIN uses the first address of each answer (SE-2); DNS balances over all of them.
    const n = src.roundRobin ? Math.min(1, a.addresses.length) : a.addresses.length;
    for (let i = 0; i < n; i++) {
      const k = a.addresses[i] + ':' + ep.port;
      if (seen.has(k)) continue;
      seen.add(k);
      hosts.push(hostFor(cluster, a.addresses[i]!, ep.port));
      weights.push(ep.weight);
    }
  }
  return remember(cluster, hosts, weights, signature);
}

/** Largest total length of a weighted candidate list. */
const MAX_CANDIDATES = 1024;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export function weightedCandidates(
  hosts: readonly UpstreamHost[],
  weights: readonly number[],
): readonly UpstreamHost[] {
  let g = 0;
  let allEqual = true;
  for (let i = 0; i < weights.length; i++) {
    const w = Math.max(1, Math.floor(weights[i]!));
    g = gcd(g, w);
    if (weights[i] !== weights[0]) allEqual = false;
  }
  if (allEqual || hosts.length <= 1) return hosts;
  let total = 0;
  for (const w of weights) total += Math.max(1, Math.floor(w)) / g;
  const scale = total > MAX_CANDIDATES ? MAX_CANDIDATES / total : 1;
  const out: UpstreamHost[] = [];
  // Interleave (smooth weighted round robin) so ROUND_ROBIN does not send bursts to one host.
  const quota = weights.map((w) => Math.max(1, Math.round((Math.max(1, Math.floor(w)) / g) * scale)));
  const current = quota.map(() => 0);
  const sum = quota.reduce((a, b) => a + b, 0);
  for (let n = 0; n < sum; n++) {
    let best = 0;
    for (let i = 0; i < quota.length; i++) {
      current[i]! += quota[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= sum;
    out.push(hosts[best]!);
  }
  return out;
}

function remember(cluster: Cluster, hosts: UpstreamHost[], weights: number[], dnsSignature: string): HostSet {
  const set: HostSet = {
    hosts,
    candidates: weightedCandidates(hosts, weights),
    lb: cluster.lb,
    state: balancerStateFor(cluster.key),
    dnsSignature,
  };
  sets.set(cluster, set);
  return set;
}

/** Starts DNS lookups for every dns cluster so the first requests do not wait (called on apply). */
export function warmEndpoints(clusters: Iterable<Cluster>): void {
  const now = Date.now();
  for (const c of clusters) {
    if (c.endpoints.kind !== 'dns') continue;
    for (const ep of c.endpoints.endpoints) cachedAnswer(ep.address, now);
  }
}

/** Envoy retries host selection up to 5 times to skip hosts already tried (VS-23). */
const HOST_SELECTION_ATTEMPTS = 5;

export function pickHost(set: HostSet, tried: readonly UpstreamHost[] | null): UpstreamHost | null {
  const hosts = set.hosts;
  if (hosts.length === 0) return null;
  let host = pickOnce(set);
  if (tried === null || hosts.length === 1) return host;
  for (let i = 1; i < HOST_SELECTION_ATTEMPTS && tried.includes(host); i++) host = pickOnce(set);
  return host;
}

function pickOnce(set: HostSet): UpstreamHost {
  switch (set.lb) {
    case 'ROUND_ROBIN':
      return pickRoundRobin(set.candidates, set.state);
    case 'RANDOM':
      return pickRandom(set.candidates);
    default:
      return pickLeastRequest(set.candidates);
  }
}

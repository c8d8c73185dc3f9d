/**
 * Cluster → the endpoints a request may use, and the pick among them. Static sources are built
 * once per Cluster object; DNS sources are rebuilt only when an answer changes. Resolution
 * happens once per request decision (DESIGN §2 endpoints.ts).
 */
import type { Cluster } from '../snapshot/types.ts';
import { hostFor, type UpstreamHost } from './pools.ts';
import { cachedAnswer, keepDnsNames, settledAnswer, type DnsAnswer } from './dns.ts';
import { hasClusterState, newClusterState, type ClusterState } from './cluster-state.ts';
import { pickRoundRobin } from './balancer/round-robin.ts';
import { pickLeastRequest } from './balancer/least-request.ts';
import { pickRandom } from './balancer/random.ts';
import { buildRing, pickFromRing, type Ring } from './balancer/ring-hash.ts';
import { buildMaglev, pickFromMaglev, type MaglevTable } from './balancer/maglev.ts';
import { noteJoins, pickWarming } from './balancer/slow-start.ts';
import { inPanic } from './outlier.ts';
import type { RequestHash } from './hash-policy.ts';

export interface HostSet {
  readonly cluster: Cluster;
  readonly hosts: readonly UpstreamHost[];
  readonly weights: readonly number[];
  readonly state: ClusterState;
  /** For DNS sources: the answer versions this set was built from, joined. */
  readonly dnsSignature: string;
  /** What the balancer picks from now; rebuilt when an ejection changes the usable hosts. */
  view: PickView | null;
}

/** The hosts a pick may use (DR-7: ejected ones left out unless in panic), and their tables. */
export interface PickView {
  readonly healthVersion: number;
  readonly hosts: readonly UpstreamHost[];
  /**
   * `hosts` itself when every weight is equal, else each host repeated in proportion to its
   * endpoint weight (SE-3 `weight`), weights reduced by their gcd and capped so the list stays small.
   */
  readonly candidates: readonly UpstreamHost[];
  /** RING_HASH / MAGLEV tables over `hosts`, built on first use. */
  ring: Ring | null;
  maglev: MaglevTable | null;
  readonly weights: readonly number[];
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
  const state = hosts[0]?.state ?? null;
  // maxEjectionPercent is a share of the cluster's endpoints as they are now.
  if (state !== null) {
    state.hostCount = hosts.length;
    noteJoins(state, hosts, cluster.warmup, Date.now());
  }
  const set: HostSet = {
    cluster,
    hosts,
    weights,
    state: state ?? EMPTY_STATE,
    dnsSignature,
    view: null,
  };
  sets.set(cluster, set);
  return set;
}

/** The state of a set with no host: nothing is ever counted on it. */
const EMPTY_STATE: ClusterState = newClusterState('', null);

/** The usable hosts of `set` now (Envoy's healthy hosts, or all of them in panic). */
export function viewOf(set: HostSet): PickView {
  const version = set.state.healthVersion;
  const cached = set.view;
  if (cached !== null && cached.healthVersion === version) return cached;
  let hosts = set.hosts;
  let weights = set.weights;
  const policy = set.cluster.outlier;
  if (policy !== null && set.state.ejectedCount > 0) {
    const usable: UpstreamHost[] = [];
    const usableWeights: number[] = [];
    for (let i = 0; i < hosts.length; i++) {
      if (hosts[i]!.health.ejected) continue;
      usable.push(hosts[i]!);
      usableWeights.push(weights[i]!);
    }
    if (!inPanic(policy, usable.length, hosts.length)) {
      hosts = usable;
      weights = usableWeights;
    }
  }
  const view: PickView = {
    healthVersion: version,
    hosts,
    candidates: weightedCandidates(hosts, weights),
    ring: null,
    maglev: null,
    weights,
  };
  set.view = view;
  return view;
}

/**
 * Called on apply, before unused pools close: starts DNS lookups for every dns cluster so the
 * first requests do not wait, keeping those names cached for `owner` (names the proxy's clients
 * ask for cannot push them out), and builds the host set of clusters with slow start, with a hash
 * balancer, or with state in use, so their new endpoints hold the cluster's state before the old
 * ones let go of it (when each endpoint joined is kept there).
 */
export function warmEndpoints(owner: object, clusters: ReadonlyMap<string, Cluster>): void {
  const names = new Set<string>();
  for (const c of clusters.values())
    if (c.endpoints.kind !== 'static') for (const ep of c.endpoints.endpoints) names.add(ep.address);
  keepDnsNames(owner, names);
  const now = Date.now();
  for (const name of names) cachedAnswer(name, now);
  for (const c of clusters.values()) {
    // A cluster whose state is in use (its endpoints changed, its policy did not) takes its pools
    // now, before the old pools close and drop the state: ejections, breaker counts and
    // slow-start times carry over as Envoy keeps them across EDS updates (DR-7).
    // Hash tables (11-16 ms for a default ring) are built here too, as Envoy builds them on a
    // cluster update, so no request waits for one.
    const hashed = c.lb === 'RING_HASH' || c.lb === 'MAGLEV';
    const keep = c.warmup !== undefined || hashed || hasClusterState(c.stateKey);
    if (!keep) continue;
    const set = hostSetOf(c);
    if (set instanceof Promise) set.then(hashed ? warmTable : undefined).catch(() => undefined);
    else if (hashed) warmTable(set);
  }
}

function warmTable(set: HostSet): void {
  const view = viewOf(set);
  if (view.hosts.length === 0) return;
  if (set.cluster.lb === 'RING_HASH') ringOf(view, set.cluster);
  else maglevOf(view, set.cluster);
}

function ringOf(view: PickView, cluster: Cluster): Ring {
  return (view.ring ??= buildRing(keysOf(view.hosts), view.weights, cluster.hashTableSize));
}

function maglevOf(view: PickView, cluster: Cluster): MaglevTable {
  return (view.maglev ??= buildMaglev(keysOf(view.hosts), view.weights, cluster.hashTableSize));
}

/** Envoy retries host selection up to 5 times to skip hosts already tried (VS-23). */
const HOST_SELECTION_ATTEMPTS = 5;

/**
 * An endpoint for the next attempt: none when no usable endpoint is left (503 UH). `tried`
 * lists endpoints a retry should avoid (null: no avoiding); `hash` is the request's key under a
 * RING_HASH or MAGLEV cluster (null: a random point, as Envoy does without a key).
 */
export function pickHost(
  set: HostSet,
  tried: readonly UpstreamHost[] | null,
  hash: RequestHash | null = null,
): UpstreamHost | null {
  const view = viewOf(set);
  const hosts = view.hosts;
  if (hosts.length === 0) return null;
  let host = pickOnce(set, view, hash, 0);
  if (tried === null || hosts.length === 1) return host;
  for (let i = 1; i < HOST_SELECTION_ATTEMPTS && tried.includes(host); i++)
    host = pickOnce(set, view, hash, i);
  return host;
}

function pickOnce(set: HostSet, view: PickView, hash: RequestHash | null, attempt: number): UpstreamHost {
  const cluster = set.cluster;
  const warmup = cluster.warmup;
  if (warmup !== undefined && set.state.warmingUntilMs > 0) {
    // DR-4 slow start, only while an endpoint is younger than the window.
    const now = Date.now();
    if (now < set.state.warmingUntilMs)
      return pickWarming(view.hosts, view.weights, set.state, warmup, cluster.lb === 'LEAST_REQUEST', now);
    set.state.warmingUntilMs = 0;
  }
  switch (cluster.lb) {
    case 'ROUND_ROBIN':
      return pickRoundRobin(view.candidates, set.state);
    case 'RANDOM':
      return pickRandom(view.candidates);
    case 'RING_HASH': {
      const hi = hash === null ? randomHalf() : hash.hi;
      const lo = hash === null ? randomHalf() : hash.lo;
      return view.hosts[pickFromRing(ringOf(view, cluster), hi, lo, attempt)]!;
    }
    case 'MAGLEV': {
      const hi = hash === null ? randomHalf() : hash.hi;
      const lo = hash === null ? randomHalf() : hash.lo;
      return view.hosts[pickFromMaglev(maglevOf(view, cluster), hi, lo, attempt)]!;
    }
    default:
      return pickLeastRequest(view.candidates);
  }
}

function keysOf(hosts: readonly UpstreamHost[]): string[] {
  return hosts.map((h) => h.hostPort);
}

function randomHalf(): number {
  return (Math.random() * 4294967296) >>> 0;
}

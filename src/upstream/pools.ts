/**
 * Upstream connections per endpoint, under the cluster's circuit breakers as Envoy applies them
 * (DR-6; Envoy source/common/conn_pool/conn_pool_base.cc):
 *
 * - `maxConnections` counts every open or opening connection of the cluster, over all its
 *   endpoints. An endpoint with no connection still gets one, as in Envoy.
 * - A request takes an idle connection, else opens one while the cluster is under
 *   `maxConnections`, else waits in its endpoint's queue; `http1MaxPendingRequests` caps the
 *   waiting requests of the whole cluster. A request for which a connection is being opened is not
 *   counted as waiting (Envoy counts it, so two clients under a cap of 1 trip it now and then).
 * - `http2MaxRequests` caps requests in flight on the cluster.
 * - Over any cap the request is refused at once: 503 UO (forward.ts).
 * - A connection carries at most `maxRequestsPerConnection` requests (the last one is sent with
 *   `connection: close`), takes no new request after `maxConnectionDuration`, and closes after
 *   `idleTimeout` without requests. It stops counting the moment it is closed.
 *
 * One undici Client per connection (pipelining 1), so the counts are exact. Endpoints are keyed
 * by cluster key + address + port, so a snapshot swap that keeps a cluster's settings keeps its
 * warm connections (DESIGN §5); the counts live in the cluster state (cluster-state.ts).
 */
import { Client, Pool, type Dispatcher } from 'undici';
import { isIPv6 } from 'node:net';
import type { Cluster } from '../snapshot/types.ts';
import {
  clusterStateFor,
  healthOf,
  releaseClusterState,
  type ClusterState,
  type EndpointHealth,
} from './cluster-state.ts';

/** The request side of one dispatch: forward.ts's attempt. */
export interface SlotUser extends Dispatcher.DispatchHandler {
  /** The connection carrying the request, set by this module, cleared by releaseSlot. */
  slot: Slot | null;
  /** Set while the request waits for a connection. */
  waiter: Waiter | null;
  /** A queued request found a connection but the cluster is at http2MaxRequests. */
  onOverflow(): void;
}

export interface Waiter {
  readonly user: SlotUser;
  readonly opts: Dispatcher.DispatchOptions;
  readonly host: UpstreamHost;
  live: boolean;
}

export interface Slot {
  readonly client: Client;
  readonly host: UpstreamHost;
  readonly bornMs: number;
  requests: number;
  busy: boolean;
  /** False once this connection must close after its current request. */
  reuse: boolean;
  dead: boolean;
  timer: NodeJS.Timeout | null;
}

export interface UpstreamHost {
  readonly key: string;
  readonly clusterKey: string;
  readonly address: string;
  readonly port: number;
  /** `address:port` as the access log prints it (and as Envoy hashes hosts). */
  readonly hostPort: string;
  readonly origin: string;
  /** The settings these connections follow (every cluster with this key has the same). */
  readonly cluster: Cluster;
  readonly state: ClusterState;
  readonly health: EndpointHealth;
  readonly options: Client.Options;
  readonly slots: Slot[];
  readonly idle: Slot[];
  readonly waiting: Waiter[];
  waitingCount: number;
  /** Requests in flight on this endpoint (LEAST_REQUEST). */
  active: number;
  closing: boolean;
  onClosed: (() => void) | null;
  /** A plain pool for callers that want undici's request() (ext_authz). */
  sidePool: Pool | null;
}

const hosts = new Map<string, UpstreamHost>();

/** Upper bound for idle keep-alive sockets when the upstream sends no keep-alive hint. */
const DEFAULT_KEEPALIVE_MS = 4_000;

/** undici options for one connection to an endpoint of `cluster`. */
function clientOptions(cluster: Cluster): Client.Options {
  const idleMs = cluster.idleTimeoutMs > 0 ? cluster.idleTimeoutMs : 3_600_000;
  return {
    pipelining: 1,
    connect: { timeout: cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000 },
    // Route timeouts (VS-22) are the only request deadline, as in Istio; undici's own are off.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: Math.min(DEFAULT_KEEPALIVE_MS, idleMs),
    keepAliveMaxTimeout: idleMs,
    // The gateway forwards whatever response headers size the upstream sends up to Envoy's 60 KiB.
    maxHeaderSize: 60 * 1024 + 1024,
  };
}

export function hostFor(cluster: Cluster, address: string, port: number): UpstreamHost {
  const key = cluster.key + '|' + address + ':' + port;
  let host = hosts.get(key);
  if (host === undefined) {
    const hostPort = (isIPv6(address) ? '[' + address + ']' : address) + ':' + port;
    const state = clusterStateFor(cluster);
    state.refs += 1;
    host = {
      key,
      clusterKey: cluster.key,
      address,
      port,
      hostPort,
      origin: 'http://' + hostPort,
      cluster,
      state,
      health: healthOf(state, hostPort),
      options: clientOptions(cluster),
      slots: [],
      idle: [],
      waiting: [],
      waitingCount: 0,
      active: 0,
      closing: false,
      onClosed: null,
      sidePool: null,
    };
    hosts.set(key, host);
  }
  return host;
}

/** undici's request() against this endpoint, outside the circuit breakers (ext_authz calls). */
export function requestPool(host: UpstreamHost): Pool {
  host.sidePool ??= new Pool(host.origin, host.options);
  return host.sidePool;
}

// ---------------------------------------------------------------- admission

export type Admission = 'sent' | 'queued' | 'overflow';

/**
 * Sends `opts` to `host` under the cluster's limits, or queues it for a connection, or refuses
 * it (the caller answers 503 UO). Overflows are counted on the cluster state.
 */
export function sendOnHost(host: UpstreamHost, opts: Dispatcher.DispatchOptions, user: SlotUser): Admission {
  const st = host.state;
  const c = host.cluster;
  if (st.requests >= c.maxRequests) {
    st.overflows.requests += 1;
    return 'overflow';
  }
  let slot = takeIdle(host);
  if (slot === null) {
    if (st.connections < c.maxConnections || host.slots.length === 0) slot = openSlot(host);
    else if (st.pending < c.maxPendingRequests) {
      // Envoy's upstream_cx_overflow: the connection cap made this request wait.
      st.overflows.connections += 1;
      const w: Waiter = { user, opts, host, live: true };
      user.waiter = w;
      host.waiting.push(w);
      host.waitingCount += 1;
      st.pending += 1;
      st.waitingHosts.add(host);
      return 'queued';
    } else {
      st.overflows.pending += 1;
      return 'overflow';
    }
  }
  attach(slot, opts, user);
  return 'sent';
}

/** A queued request gave up (client gone, timeout): it stops counting at once. */
export function leaveQueue(user: SlotUser): void {
  const w = user.waiter;
  user.waiter = null;
  if (w === null || !w.live) return;
  w.live = false;
  const host = w.host;
  host.waitingCount -= 1;
  host.state.pending -= 1;
  // Given-up entries leave the queue when reached; compact if they pile up meanwhile.
  if (host.waiting.length > 2 * host.waitingCount + 16) {
    const live = host.waiting.filter((x) => x.live);
    host.waiting.length = 0;
    host.waiting.push(...live);
  }
  maybeClosed(host);
}

/**
 * The request on `user`'s connection is over. A connection that completed its exchange and may
 * be reused serves the next queued request or goes idle; any other is closed, and stops counting
 * against maxConnections now.
 */
export function releaseSlot(user: SlotUser, reusable: boolean): void {
  const slot = user.slot;
  if (slot === null) return;
  user.slot = null;
  const host = slot.host;
  slot.busy = false;
  host.state.requests -= 1;
  if (!reusable || !slot.reuse || slot.dead || host.closing) {
    closeSlot(slot, reusable);
    return;
  }
  const w = nextWaiter(host);
  if (w !== null) {
    attachWaiter(slot, w);
    return;
  }
  host.idle.push(slot);
}

function takeIdle(host: UpstreamHost): Slot | null {
  const maxAge = host.cluster.maxConnectionDurationMs;
  for (;;) {
    const slot = host.idle.pop();
    if (slot === undefined) return null;
    if (slot.dead) continue;
    if (maxAge > 0 && Date.now() - slot.bornMs >= maxAge) {
      closeSlot(slot, true);
      continue;
    }
    return slot;
  }
}

function openSlot(host: UpstreamHost): Slot {
  const client = new Client(host.origin, host.options);
  const slot: Slot = {
    client,
    host,
    bornMs: Date.now(),
    requests: 0,
    busy: false,
    reuse: true,
    dead: false,
    timer: null,
  };
  host.state.connections += 1;
  host.slots.push(slot);
  // The socket closed (keep-alive timeout, upstream close): an idle connection is gone; a busy
  // one ends through its request's error.
  client.on('disconnect', () => {
    if (!slot.busy) closeSlot(slot, true);
  });
  const maxAge = host.cluster.maxConnectionDurationMs;
  if (maxAge > 0) {
    slot.timer = setTimeout(expireSlot, maxAge, slot);
    slot.timer.unref();
  }
  return slot;
}

function expireSlot(slot: Slot): void {
  slot.timer = null;
  slot.reuse = false;
  if (!slot.busy) closeSlot(slot, true);
}

function attach(slot: Slot, opts: Dispatcher.DispatchOptions, user: SlotUser): void {
  const host = slot.host;
  const max = host.cluster.maxRequestsPerConnection;
  slot.busy = true;
  slot.requests += 1;
  host.state.requests += 1;
  user.slot = slot;
  if (max > 0 && slot.requests >= max) slot.reuse = false;
  // The last request of a connection says so (connection: close), and undici closes it after.
  if (!slot.reuse) opts.reset = true;
  slot.client.dispatch(opts, user);
}

function attachWaiter(slot: Slot, w: Waiter): void {
  const user = w.user;
  user.waiter = null;
  const host = slot.host;
  if (host.state.requests >= host.cluster.maxRequests) {
    host.state.overflows.requests += 1;
    host.idle.push(slot);
    user.onOverflow();
    return;
  }
  attach(slot, w.opts, user);
}

/** The next live waiter of `host`, taken off its queue (pending count released). */
function nextWaiter(host: UpstreamHost): Waiter | null {
  while (host.waiting.length > 0) {
    const w = host.waiting.shift()!;
    if (!w.live) continue;
    w.live = false;
    host.waitingCount -= 1;
    host.state.pending -= 1;
    return w;
  }
  return null;
}

function closeSlot(slot: Slot, graceful: boolean): void {
  if (slot.dead) return;
  slot.dead = true;
  const host = slot.host;
  const st = host.state;
  st.connections -= 1;
  if (slot.timer !== null) clearTimeout(slot.timer);
  const i = host.slots.indexOf(slot);
  if (i >= 0) host.slots.splice(i, 1);
  const j = host.idle.indexOf(slot);
  if (j >= 0) host.idle.splice(j, 1);
  (graceful ? slot.client.close() : slot.client.destroy()).catch(() => undefined);
  serveWaiters(st);
  maybeClosed(host);
}

/** A connection closed somewhere in the cluster: queued requests may now get one. */
function serveWaiters(st: ClusterState): void {
  for (const h of st.waitingHosts) {
    const host = h as UpstreamHost;
    while (host.waitingCount > 0) {
      let slot = takeIdle(host);
      if (slot === null) {
        if (st.connections < host.cluster.maxConnections || host.slots.length === 0) slot = openSlot(host);
        else return;
      }
      const w = nextWaiter(host);
      if (w === null) {
        host.idle.push(slot);
        break;
      }
      attachWaiter(slot, w);
    }
    st.waitingHosts.delete(host);
  }
}

// ---------------------------------------------------------------- closing

function maybeClosed(host: UpstreamHost): void {
  if (!host.closing || host.slots.length > 0 || host.waitingCount > 0) return;
  const done = host.onClosed;
  host.onClosed = null;
  if (done !== null) done();
}

function closeHost(host: UpstreamHost, force: boolean): Promise<void> {
  host.closing = true;
  const side = host.sidePool;
  host.sidePool = null;
  const sideClosed =
    side === null ? Promise.resolve() : (force ? side.destroy() : side.close()).catch(() => undefined);
  for (const slot of [...host.idle]) closeSlot(slot, true);
  if (force) {
    for (const slot of [...host.slots]) closeSlot(slot, false);
    for (let w = nextWaiter(host); w !== null; w = nextWaiter(host)) {
      w.user.waiter = null;
      w.user.onError?.(new Error('upstream pool closed'));
    }
  }
  const drained = new Promise<void>((resolve) => {
    host.onClosed = resolve;
    maybeClosed(host);
  });
  return Promise.all([sideClosed, drained]).then(() => {
    host.state.waitingHosts.delete(host);
    releaseClusterState(host.state);
  });
}

/**
 * Cluster keys each running gateway still uses. Pools are process-wide (one per endpoint and
 * settings), so a pool closes only when no gateway in the process uses its cluster key; tests
 * that run several gateways in one process stay independent.
 */
const liveKeysByOwner = new Map<object, ReadonlySet<string>>();

function inUse(clusterKey: string): boolean {
  for (const keys of liveKeysByOwner.values()) if (keys.has(clusterKey)) return true;
  return false;
}

/** Records `owner`'s live cluster keys and closes pools nobody uses; in-flight requests finish first. */
export function closeUnusedPools(owner: object, liveClusterKeys: ReadonlySet<string>): Promise<void> {
  liveKeysByOwner.set(owner, liveClusterKeys);
  return closeUnreferenced(false);
}

/** `owner` is gone: close the pools only it used, gracefully or by destroying them. */
export function releasePools(owner: object, force: boolean): Promise<void> {
  liveKeysByOwner.delete(owner);
  return closeUnreferenced(force);
}

/** Closes every pool (tests). */
export function closeAllPools(force: boolean): Promise<void> {
  liveKeysByOwner.clear();
  return closeUnreferenced(force);
}

function closeUnreferenced(force: boolean): Promise<void> {
  const closing: Promise<void>[] = [];
  for (const [key, host] of hosts) {
    if (inUse(host.clusterKey)) continue;
    hosts.delete(key);
    closing.push(closeHost(host, force));
  }
  return Promise.all(closing).then(() => undefined);
}

// ---------------------------------------------------------------- status

export interface PoolStatus {
  readonly clusterKey: string;
  readonly endpoint: string;
  readonly active: number;
  readonly connected: number;
  readonly pending: number;
  /** Outlier detection (DR-7): out of the balancer now, and how often so far. */
  readonly ejected: boolean;
  readonly ejections: number;
}

export function poolStatus(): PoolStatus[] {
  const out: PoolStatus[] = [];
  for (const host of hosts.values()) {
    out.push({
      clusterKey: host.clusterKey,
      endpoint: host.hostPort,
      active: host.active,
      connected: host.slots.length,
      pending: host.waitingCount,
      ejected: host.health.ejected,
      ejections: host.health.ejections,
    });
  }
  return out;
}

/** Circuit-breaker overflows of each cluster state so far (metrics). */
export interface LimitStatus {
  readonly stateKey: string;
  readonly overflows: Readonly<Record<'connections' | 'pending' | 'requests' | 'retries', number>>;
}

export function limitStatus(): LimitStatus[] {
  const seen = new Set<string>();
  const out: LimitStatus[] = [];
  for (const host of hosts.values()) {
    if (seen.has(host.state.key)) continue;
    seen.add(host.state.key);
    out.push({ stateKey: host.state.key, overflows: { ...host.state.overflows } });
  }
  return out;
}

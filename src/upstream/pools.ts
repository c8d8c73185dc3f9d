/**
 * Upstream connections per endpoint, under the cluster's circuit breakers as Envoy applies them
 * (DR-6; Envoy source/common/conn_pool/conn_pool_base.cc):
 *
 * - `maxConnections` counts every open or opening connection of the cluster, over all its
 *   endpoints, HTTP/1.1 and HTTP/2 alike. An endpoint with no connection still gets one, as in
 *   Envoy.
 * - A request takes an idle connection (HTTP/2: one with a free stream), else opens one while the
 *   cluster is under `maxConnections`, else waits in its endpoint's queue;
 *   `http1MaxPendingRequests` caps the waiting requests of the whole cluster. A request for which
 *   a connection is being opened is not counted as waiting (Envoy counts it, so two clients under
 *   a cap of 1 trip it now and then). HTTP/2 requests that arrive while a connection is being
 *   opened wait for its streams, and count as waiting, as in Envoy.
 * - `http2MaxRequests` caps requests (HTTP/2: streams) in flight on the cluster.
 * - Over any cap the request is refused at once: 503 UO (forward.ts).
 * - A connection carries at most `maxRequestsPerConnection` requests (the last HTTP/1.1 one is
 *   sent with `connection: close`), takes no new request after `maxConnectionDuration`, and closes
 *   after `idleTimeout` without requests. It stops counting the moment it is closed.
 *
 * One H1Connection per HTTP/1.1 connection (h1-connection.ts, one request at a time) and one
 * H2Connection per HTTP/2 connection (h2-connection.ts), so the counts are exact. Endpoints are keyed by cluster key +
 * address + port, so a snapshot swap that keeps a cluster's settings keeps its warm connections
 * (DESIGN §5); the counts live in the cluster state (cluster-state.ts).
 *
 * An endpoint's connections form groups, one per protocol and TLS name, as Envoy keeps a pool per
 * each: one group serves every request, except for clusters whose connections depend on the
 * request (auto SNI from the Host, DR-8; `useClientProtocol`, DP-9), which keep a bounded set.
 */
import { Pool, type Client } from 'undici';
import { isIPv6 } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Cluster } from '../snapshot/types.ts';
import {
  clusterStateFor,
  healthOf,
  releaseClusterState,
  type ClusterState,
  type EndpointHealth,
} from './cluster-state.ts';
import {
  H2Connection,
  type H2ConnectionEvents,
  type H2ConnectionOptions,
  type H2Handler,
  type H2Request,
} from './h2-connection.ts';
import {
  H1Connection,
  DEFAULT_KEEPALIVE_MS,
  MAX_HEAD_BYTES,
  type H1ConnectionOptions,
  type H1Handler,
  type H1Request,
} from './h1-connection.ts';
import { connectOptionsFor, hostOfAuthority, notReadyError, sniFor } from './tls-origination.ts';

/** What forward.ts sends: what HTTP/1.1 and HTTP/2 connections read. */
export type UpstreamRequest = H1Request & H2Request;

/** The request side of one dispatch: forward.ts's attempt. */
export type SlotUser = H1Handler &
  H2Handler & {
    /** The HTTP/1.1 connection carrying the request, set by this module, cleared by releaseSlot. */
    slot: Slot | null;
    /** Set while the request waits for a connection. */
    waiter: Waiter | null;
    /** A queued request found a connection but the cluster is at http2MaxRequests. */
    onOverflow(): void;
  };

export interface Waiter {
  readonly user: SlotUser;
  readonly opts: UpstreamRequest;
  readonly group: ConnGroup;
  live: boolean;
  /**
   * Waits for the HTTP/2 connection opened for it: counted in `requests` (as an HTTP/1.1 request
   * on its opening connection is), not in `pending`.
   */
  readonly opener: boolean;
}

/** One HTTP/1.1 connection. */
export interface Slot {
  readonly conn: H1Connection;
  readonly group: ConnGroup;
  readonly bornMs: number;
  requests: number;
  busy: boolean;
  /** False once this connection must close after its current request. */
  reuse: boolean;
  dead: boolean;
  timer: NodeJS.Timeout | null;
}

/** One HTTP/2 connection. */
interface H2Slot {
  readonly conn: H2Connection;
  readonly group: ConnGroup;
  /** The request it was opened for, started once it is ready. */
  opener: Waiter | null;
  timer: NodeJS.Timeout | null;
}

/** An endpoint's connections for one protocol and TLS name. */
export interface ConnGroup {
  readonly host: UpstreamHost;
  /** As the cluster state's waiting set names it. */
  readonly hostPort: string;
  /** HTTP/2 connections (`h2`), else HTTP/1.1 ones (`h1`). */
  readonly h2: H2ConnectionOptions | null;
  readonly h1: H1ConnectionOptions;
  /** undici's pool for callers outside the request path (requestPool): `origin` with `options`. */
  readonly origin: string;
  readonly options: Client.Options;
  /** TLS: the SNI each request names (undici would take it from the Host and reconnect on change). */
  readonly servername: string | null;
  /** A TLS context without its credential (DR-8): every request fails with this. */
  readonly notReady: Error | null;
  readonly slots: Slot[];
  readonly idle: Slot[];
  readonly conns: H2Slot[];
  readonly waiting: Waiter[];
  waitingCount: number;
  closing: boolean;
}

export interface UpstreamHost {
  readonly key: string;
  readonly clusterKey: string;
  readonly address: string;
  readonly port: number;
  /** `address:port` as the access log prints it (and as Envoy hashes hosts). */
  readonly hostPort: string;
  /** The settings these connections follow (every cluster with this key has the same). */
  readonly cluster: Cluster;
  readonly state: ClusterState;
  readonly health: EndpointHealth;
  /** The connections every request uses, or (see `variants`) those named by the service host. */
  readonly main: ConnGroup;
  /** Groups by protocol and TLS name when they depend on the request; null when `main` serves all. */
  readonly variants: Map<string, ConnGroup> | null;
  /** Variants retired beyond MAX_VARIANTS whose connections or waiters are not done yet. */
  readonly evicted: Set<ConnGroup>;
  /** Open and opening connections, waiting requests: over every group. */
  connections: number;
  waitingCount: number;
  /** Requests in flight on this endpoint (LEAST_REQUEST). */
  active: number;
  closing: boolean;
  onClosed: (() => void) | null;
  /** A plain pool for callers that want undici's request() (ext_authz). */
  sidePool: Pool | null;
}

const hosts = new Map<string, UpstreamHost>();

/** Groups one endpoint keeps per protocol and TLS name at most; the oldest retires beyond it. */
const MAX_VARIANTS = 64;

export function hostFor(cluster: Cluster, address: string, port: number): UpstreamHost {
  const key = cluster.key + '|' + address + ':' + port;
  let host = hosts.get(key);
  if (host === undefined) {
    const hostPort = (isIPv6(address) ? '[' + address + ']' : address) + ':' + port;
    const state = clusterStateFor(cluster);
    state.refs += 1;
    const perRequest =
      cluster.protocol === 'client' || (cluster.tls !== undefined && cluster.tls.sni === null);
    const h: Omit<UpstreamHost, 'main'> & { main: ConnGroup | null } = {
      key,
      clusterKey: cluster.key,
      address,
      port,
      hostPort,
      cluster,
      state,
      health: healthOf(state, hostPort),
      main: null,
      variants: perRequest ? new Map() : null,
      evicted: new Set(),
      connections: 0,
      waitingCount: 0,
      active: 0,
      closing: false,
      onClosed: null,
      sidePool: null,
    };
    // A group points at its host, so the host is made first.
    host = h as UpstreamHost;
    // Per-request clusters' main group: HTTP/1.1 (or HTTP/2), TLS names from the service host.
    h.main = newGroup(host, cluster.protocol === 'http2', cluster.host);
    hosts.set(key, host);
  }
  return host;
}

/**
 * The connections a request to `host` uses: `h2Client` is whether the client spoke HTTP/2
 * (`useClientProtocol`), `headers` the upstream request's, whose Host names the SNI and the
 * checked name when the cluster leaves them to the request (DR-8).
 */
export function groupFor(host: UpstreamHost, h2Client: boolean, headers: readonly string[]): ConnGroup {
  const variants = host.variants;
  if (variants === null) return host.main;
  const authority = upstreamAuthority(headers);
  const c = host.cluster;
  const h2 = c.protocol === 'http2' || (c.protocol === 'client' && h2Client);
  const tlsHost = c.tls !== undefined && c.tls.sni === null ? hostOfAuthority(authority) : '';
  const k = (h2 ? '2 ' : '1 ') + tlsHost;
  let g = variants.get(k);
  if (g === undefined) {
    if (variants.size >= MAX_VARIANTS) {
      // A wildcard host must not open unbounded sets of connections: the oldest set retires.
      const [oldest, old] = variants.entries().next().value!;
      variants.delete(oldest);
      retireGroup(old);
      if (!drained(old)) host.evicted.add(old);
    }
    g = newGroup(host, h2, tlsHost);
    variants.set(k, g);
  }
  return g;
}

function upstreamAuthority(headers: readonly string[]): string {
  for (let i = headers.length - 2; i >= 0; i -= 2)
    if (headers[i]!.toLowerCase() === 'host') return headers[i + 1]!;
  return '';
}

/** undici options for one HTTP/1.1 connection of `cluster` (`tls`: its connect options). */
function clientOptions(cluster: Cluster, tls: ConnectionOptions | null): Client.Options {
  const idleMs = idleTimeoutOf(cluster);
  return {
    pipelining: 1,
    connect: { timeout: connectTimeoutOf(cluster), ...(tls ?? {}) },
    // Route timeouts (VS-22) are the only request deadline, as in Istio; undici's own are off.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: Math.min(DEFAULT_KEEPALIVE_MS, idleMs),
    keepAliveMaxTimeout: idleMs,
    // The gateway forwards whatever response headers size the upstream sends up to Envoy's 60 KiB.
    maxHeaderSize: MAX_HEAD_BYTES,
  };
}

/** The cluster's idleTimeout, else an hour (Envoy's default for upstream connections). */
function idleTimeoutOf(cluster: Cluster): number {
  return cluster.idleTimeoutMs > 0 ? cluster.idleTimeoutMs : 3_600_000;
}

function connectTimeoutOf(cluster: Cluster): number {
  return cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000;
}

/** `authority` names the SNI and the checked name when the TLS settings leave them to the Host. */
function newGroup(host: UpstreamHost, h2: boolean, authority: string): ConnGroup {
  const cluster = host.cluster;
  const t = cluster.tls;
  let tls: ConnectionOptions | null = null;
  let servername: string | null = null;
  if (t !== undefined && t.notReady === null) {
    const auto = t.sni === null && t.subjectAltNames.length === 0 && !t.insecureSkipVerify;
    servername = sniFor(t, authority);
    tls = connectOptionsFor(t, servername, auto ? [hostOfAuthority(authority)] : t.subjectAltNames);
  }
  const s = cluster.http2;
  return {
    host,
    hostPort: host.hostPort,
    h2: h2
      ? {
          address: host.address,
          port: host.port,
          tls,
          connectTimeoutMs: connectTimeoutOf(cluster),
          idleTimeoutMs: idleTimeoutOf(cluster),
          maxConcurrentStreams: s?.maxConcurrentStreams ?? 0,
          keepAliveIntervalMs: s?.keepAliveIntervalMs ?? 0,
          keepAliveTimeoutMs: s?.keepAliveTimeoutMs ?? 0,
        }
      : null,
    h1: {
      address: host.address,
      port: host.port,
      hostPort: host.hostPort,
      tls,
      tlsSession: { session: null },
      connectTimeoutMs: connectTimeoutOf(cluster),
      maxIdleMs: idleTimeoutOf(cluster),
    },
    origin: (t === undefined ? 'http://' : 'https://') + host.hostPort,
    options: clientOptions(cluster, tls),
    servername,
    notReady: t !== undefined && t.notReady !== null ? notReadyError(t.notReady) : null,
    slots: [],
    idle: [],
    conns: [],
    waiting: [],
    waitingCount: 0,
    closing: false,
  };
}

/**
 * undici's request() against this endpoint, outside the circuit breakers (side-request.ts), with
 * the SNI to name; null when the endpoint takes no HTTP/1.1 (an HTTP/2 port) or its TLS
 * credential is missing.
 */
export function requestPool(host: UpstreamHost): { pool: Pool; servername: string | undefined } | null {
  const g = host.main;
  if (g.h2 !== null || g.notReady !== null) return null;
  host.sidePool ??= new Pool(g.origin, g.options);
  return { pool: host.sidePool, servername: g.servername ?? undefined };
}

// ---------------------------------------------------------------- admission

export type Admission = 'sent' | 'queued' | 'overflow';

/**
 * Sends `opts` on `g`'s connections under the cluster's limits, or queues it for a connection,
 * or refuses it (the caller answers 503 UO). Overflows are counted on the cluster state.
 */
export function sendOnHost(g: ConnGroup, opts: UpstreamRequest, user: SlotUser): Admission {
  const host = g.host;
  const st = host.state;
  const c = host.cluster;
  if (st.requests >= c.maxRequests) {
    st.overflows.requests += 1;
    return 'overflow';
  }
  if (g.notReady !== null) {
    // Envoy's transport socket is not ready: the connection fails at once (503 UF).
    const err = g.notReady;
    queueMicrotask(() => user.onError(err));
    return 'sent';
  }
  if (g.h2 !== null) return sendH2(g, opts, user);
  let slot = takeIdle(g);
  if (slot === null) {
    if (st.connections < c.maxConnections || g.slots.length === 0) slot = openSlot(g);
    else return wait(g, opts, user, true);
  }
  attach(slot, opts, user);
  return 'sent';
}

function sendH2(g: ConnGroup, opts: UpstreamRequest, user: SlotUser): Admission {
  const st = g.host.state;
  const free = roomyConn(g);
  if (free !== null) {
    startStream(free, opts, user);
    return 'sent';
  }
  // A connection on its way: its streams will serve the request (Envoy's connecting capacity).
  if (connecting(g)) return wait(g, opts, user, false);
  if (st.connections < g.host.cluster.maxConnections || g.conns.length === 0) {
    openH2(g, { user, opts, group: g, live: true, opener: true });
    return 'sent';
  }
  return wait(g, opts, user, true);
}

/** The request waits for a connection, if the cluster's pending cap allows. */
function wait(g: ConnGroup, opts: UpstreamRequest, user: SlotUser, atConnectionCap: boolean): Admission {
  const st = g.host.state;
  if (st.pending >= g.host.cluster.maxPendingRequests) {
    st.overflows.pending += 1;
    return 'overflow';
  }
  // Envoy's upstream_cx_overflow: the connection cap made this request wait.
  if (atConnectionCap) st.overflows.connections += 1;
  const w: Waiter = { user, opts, group: g, live: true, opener: false };
  user.waiter = w;
  g.waiting.push(w);
  g.waitingCount += 1;
  g.host.waitingCount += 1;
  st.pending += 1;
  st.waitingHosts.add(g);
  return 'queued';
}

/** A queued request gave up (client gone, timeout): it stops counting at once. */
export function leaveQueue(user: SlotUser): void {
  const w = user.waiter;
  user.waiter = null;
  if (w === null || !w.live) return;
  w.live = false;
  const g = w.group;
  const host = g.host;
  if (w.opener) {
    // Its connection opens anyway and serves the next request, or idles.
    host.state.requests -= 1;
    return;
  }
  g.waitingCount -= 1;
  host.waitingCount -= 1;
  host.state.pending -= 1;
  // Given-up entries leave the queue when reached; compact if they pile up meanwhile.
  if (g.waiting.length > 2 * g.waitingCount + 16) {
    const live = g.waiting.filter((x) => x.live);
    g.waiting.length = 0;
    g.waiting.push(...live);
  }
  maybeClosed(g);
}

/**
 * The request on `user`'s HTTP/1.1 connection is over. A connection that completed its exchange
 * and may be reused serves the next queued request or goes idle; any other is closed, and stops
 * counting against maxConnections now. (An HTTP/2 request stops counting when its stream ends.)
 */
export function releaseSlot(user: SlotUser, reusable: boolean): void {
  const slot = user.slot;
  if (slot === null) return;
  user.slot = null;
  const g = slot.group;
  slot.busy = false;
  g.host.state.requests -= 1;
  if (!reusable || !slot.reuse || slot.dead || !slot.conn.reusable || g.closing) {
    closeSlot(slot, reusable);
    return;
  }
  const w = nextWaiter(g);
  if (w !== null) {
    attachWaiter(slot, w);
    return;
  }
  g.idle.push(slot);
}

function takeIdle(g: ConnGroup): Slot | null {
  const maxAge = g.host.cluster.maxConnectionDurationMs;
  for (;;) {
    const slot = g.idle.pop();
    if (slot === undefined) return null;
    if (slot.dead || !slot.conn.reusable) continue;
    if (maxAge > 0 && Date.now() - slot.bornMs >= maxAge) {
      closeSlot(slot, true);
      continue;
    }
    return slot;
  }
}

function openSlot(g: ConnGroup): Slot {
  let slot: Slot | null = null;
  // The socket closed (keep-alive timeout, upstream close): an idle connection is gone; a busy
  // one ends through its request's error.
  const conn = new H1Connection(g.h1, {
    onGone: () => {
      if (!slot!.busy) closeSlot(slot!, true);
    },
    onUnsent: (handler, req) => resend(handler as SlotUser, req as UpstreamRequest),
  });
  slot = {
    conn,
    group: g,
    bornMs: Date.now(),
    requests: 0,
    busy: false,
    reuse: true,
    dead: false,
    timer: null,
  };
  connectionOpened(g);
  g.slots.push(slot);
  const maxAge = g.host.cluster.maxConnectionDurationMs;
  if (maxAge > 0) {
    slot.timer = setTimeout(expireSlot, maxAge, slot);
    slot.timer.unref();
  }
  return slot;
}

/**
 * The upstream closed or spoke on an idle connection just as a request was given to it, before
 * the request was written: the request is admitted again as if it had just come.
 */
function resend(user: SlotUser, opts: UpstreamRequest): void {
  const g = user.slot?.group;
  releaseSlot(user, false);
  if (g === undefined) return;
  if (sendOnHost(g, opts, user) === 'overflow') user.onOverflow();
}

function connectionOpened(g: ConnGroup): void {
  g.host.state.connections += 1;
  g.host.connections += 1;
}

function expireSlot(slot: Slot): void {
  slot.timer = null;
  slot.reuse = false;
  if (!slot.busy) closeSlot(slot, true);
}

function attach(slot: Slot, opts: UpstreamRequest, user: SlotUser): void {
  const g = slot.group;
  const max = g.host.cluster.maxRequestsPerConnection;
  slot.busy = true;
  slot.requests += 1;
  g.host.state.requests += 1;
  user.slot = slot;
  if (max > 0 && slot.requests >= max) slot.reuse = false;
  // The last request of a connection says so (connection: close), and the connection closes after;
  // any other keeps it, also a request resent here from a connection whose last it was.
  opts.reset = !slot.reuse;
  slot.conn.dispatch(opts, user);
}

function attachWaiter(slot: Slot, w: Waiter): void {
  const user = w.user;
  user.waiter = null;
  const st = slot.group.host.state;
  if (st.requests >= slot.group.host.cluster.maxRequests) {
    st.overflows.requests += 1;
    slot.group.idle.push(slot);
    user.onOverflow();
    return;
  }
  attach(slot, w.opts, user);
}

/** The next live waiter of `g`, taken off its queue (pending count released). */
function nextWaiter(g: ConnGroup): Waiter | null {
  while (g.waiting.length > 0) {
    const w = g.waiting.shift()!;
    if (!w.live) continue;
    w.live = false;
    g.waitingCount -= 1;
    g.host.waitingCount -= 1;
    g.host.state.pending -= 1;
    return w;
  }
  return null;
}

function closeSlot(slot: Slot, graceful: boolean): void {
  if (slot.dead) return;
  slot.dead = true;
  const g = slot.group;
  if (slot.timer !== null) clearTimeout(slot.timer);
  const i = g.slots.indexOf(slot);
  if (i >= 0) g.slots.splice(i, 1);
  const j = g.idle.indexOf(slot);
  if (j >= 0) g.idle.splice(j, 1);
  if (graceful) slot.conn.close();
  else slot.conn.destroy();
  connectionClosed(g);
}

/** A connection of `g` stopped counting: queued requests anywhere in the cluster may get one. */
function connectionClosed(g: ConnGroup): void {
  const host = g.host;
  host.state.connections -= 1;
  host.connections -= 1;
  serveWaiters(host.state);
  maybeClosed(g);
}

/** A connection closed somewhere in the cluster: queued requests may now get one. */
function serveWaiters(st: ClusterState): void {
  for (const h of st.waitingHosts) {
    const g = h as ConnGroup;
    if (g.h2 !== null) {
      const served = serveH2(g);
      if (served === 'capped') return;
      if (g.waitingCount === 0) st.waitingHosts.delete(g);
      continue;
    }
    while (g.waitingCount > 0) {
      let slot = takeIdle(g);
      if (slot === null) {
        if (st.connections < g.host.cluster.maxConnections || g.slots.length === 0) slot = openSlot(g);
        else return;
      }
      const w = nextWaiter(g);
      if (w === null) {
        g.idle.push(slot);
        break;
      }
      attachWaiter(slot, w);
    }
    st.waitingHosts.delete(g);
  }
}

// ---------------------------------------------------------------- HTTP/2

function h2Events(slot: () => H2Slot): H2ConnectionEvents {
  return {
    onCapacity: () => h2Capacity(slot()),
    onStreamDone: () => {
      const s = slot();
      s.group.host.state.requests -= 1;
      h2Capacity(s);
    },
    onGone: (_conn, err) => h2Gone(slot(), err),
  };
}

function openH2(g: ConnGroup, opener: Waiter): void {
  const st = g.host.state;
  let slot: H2Slot | null = null;
  const conn = new H2Connection(
    g.h2!,
    h2Events(() => slot!),
  );
  slot = { conn, group: g, opener, timer: null };
  st.requests += 1;
  opener.user.waiter = opener;
  connectionOpened(g);
  g.conns.push(slot);
  const maxAge = g.host.cluster.maxConnectionDurationMs;
  if (maxAge > 0) {
    const s = slot;
    s.timer = setTimeout(() => {
      s.timer = null;
      s.conn.retire();
    }, maxAge);
    s.timer.unref();
  }
}

function roomyConn(g: ConnGroup): H2Slot | null {
  for (const s of g.conns) if (s.conn.hasRoom) return s;
  return null;
}

function connecting(g: ConnGroup): boolean {
  for (const s of g.conns) if (!s.conn.ready && !s.conn.gone) return true;
  return false;
}

/** Counts the stream (the caller has not) and starts it. */
function startStream(slot: H2Slot, opts: UpstreamRequest, user: SlotUser): void {
  slot.group.host.state.requests += 1;
  startCounted(slot, opts, user);
}

function startCounted(slot: H2Slot, opts: UpstreamRequest, user: SlotUser): void {
  const conn = slot.conn;
  conn.start(opts, user);
  const max = slot.group.host.cluster.maxRequestsPerConnection;
  if (max > 0 && conn.started >= max) conn.retire();
}

/** The connection is ready or has a free stream: its opener first, then the group's waiters. */
function h2Capacity(slot: H2Slot): void {
  const g = slot.group;
  const w = slot.opener;
  if (w !== null && slot.conn.ready) {
    slot.opener = null;
    if (w.live) {
      w.live = false;
      w.user.waiter = null;
      startCounted(slot, w.opts, w.user);
    }
  }
  if (g.waitingCount > 0) {
    serveH2(g);
    if (g.waitingCount === 0) g.host.state.waitingHosts.delete(g);
  }
}

/**
 * Gives `g`'s waiters free streams, opening a connection when none is on its way and the cluster
 * allows; 'capped' when the cluster is at maxConnections.
 */
function serveH2(g: ConnGroup): 'served' | 'capped' {
  const st = g.host.state;
  while (g.waitingCount > 0) {
    const free = roomyConn(g);
    if (free === null) {
      if (connecting(g)) return 'served';
      if (st.connections >= g.host.cluster.maxConnections && g.conns.length > 0) return 'capped';
    }
    const w = nextWaiter(g);
    if (w === null) break;
    w.user.waiter = null;
    if (st.requests >= g.host.cluster.maxRequests) {
      st.overflows.requests += 1;
      w.user.onOverflow();
      continue;
    }
    if (free !== null) startStream(free, w.opts, w.user);
    else openH2(g, { user: w.user, opts: w.opts, group: g, live: true, opener: true });
  }
  return 'served';
}

function h2Gone(slot: H2Slot, connectError: Error | null): void {
  const g = slot.group;
  if (slot.timer !== null) clearTimeout(slot.timer);
  const i = g.conns.indexOf(slot);
  if (i >= 0) g.conns.splice(i, 1);
  const st = g.host.state;
  const w = slot.opener;
  slot.opener = null;
  if (w !== null && w.live) {
    w.live = false;
    w.user.waiter = null;
    st.requests -= 1;
    w.user.onError(connectError ?? new Error('upstream connection closed'));
  }
  // As Envoy's pool: a failed connection attempt fails the requests waiting for one, unless
  // another connection may still serve them.
  if (connectError !== null && g.conns.length === 0) {
    for (let q = nextWaiter(g); q !== null; q = nextWaiter(g)) {
      q.user.waiter = null;
      q.user.onError(connectError);
    }
    st.waitingHosts.delete(g);
  }
  connectionClosed(g);
}

// ---------------------------------------------------------------- closing

function drained(g: ConnGroup): boolean {
  return g.slots.length === 0 && g.conns.length === 0 && g.waitingCount === 0;
}

/** `g` lost a connection or a waiter: an evicted group that is done is forgotten, a closing host may be closed. */
function maybeClosed(g: ConnGroup): void {
  const host = g.host;
  if (g.closing && drained(g)) host.evicted.delete(g);
  if (!host.closing || host.connections > 0 || host.waitingCount > 0) return;
  const done = host.onClosed;
  host.onClosed = null;
  if (done !== null) done();
}

/** A group takes no new requests: idle connections close now, busy ones after their requests. */
function retireGroup(g: ConnGroup): void {
  g.closing = true;
  for (const slot of [...g.idle]) closeSlot(slot, true);
  for (const s of [...g.conns]) s.conn.retire();
}

function groupsOf(host: UpstreamHost): ConnGroup[] {
  const all = [host.main, ...host.evicted];
  if (host.variants !== null) all.push(...host.variants.values());
  return all;
}

function closeHost(host: UpstreamHost, force: boolean): Promise<void> {
  host.closing = true;
  const side = host.sidePool;
  host.sidePool = null;
  const sideClosed =
    side === null ? Promise.resolve() : (force ? side.destroy() : side.close()).catch(() => undefined);
  const groups = groupsOf(host);
  // Forced: waiters fail first, so the connections closed next do not open new ones for them.
  if (force)
    for (const g of groups)
      for (let w = nextWaiter(g); w !== null; w = nextWaiter(g)) {
        w.user.waiter = null;
        w.user.onError(new Error('upstream pool closed'));
      }
  for (const g of groups) {
    retireGroup(g);
    if (!force) continue;
    for (const slot of [...g.slots]) closeSlot(slot, false);
    for (const s of [...g.conns]) s.conn.destroy();
  }
  const done = new Promise<void>((resolve) => {
    host.onClosed = resolve;
    maybeClosed(host.main);
  });
  return Promise.all([sideClosed, done]).then(() => {
    for (const g of groupsOf(host)) host.state.waitingHosts.delete(g);
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
      connected: host.connections,
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

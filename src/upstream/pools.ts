/**
 * One pool per upstream endpoint, keyed by cluster key + address + port so a snapshot swap that
 * keeps a cluster's settings keeps its warm connections (DESIGN §5 hot reload). Pools whose
 * cluster key is gone are closed gracefully by reconcile (in-flight requests finish first).
 *
 * HTTP/1.1 endpoints get an undici Pool; HTTP/2 ones an H2Pool (h2-pool.ts); TLS origination
 * (DR-8) gives either its connect options. A cluster whose connections depend on the request
 * (auto SNI from the Host, `useClientProtocol`) keeps one pool per protocol and SNI.
 */
import { Pool, type Dispatcher } from 'undici';
import { isIPv6 } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Cluster } from '../snapshot/types.ts';
import { forgetBalancerStates } from './balancer/state.ts';
import { H2Pool, type H2Handler, type H2Request } from './h2-pool.ts';
import { connectOptionsFor, hostOfAuthority, notReadyError, sniFor } from './tls-origination.ts';

/** What forward.ts dispatches to: an undici Pool or an H2Pool. */
export interface UpstreamPool {
  dispatch(
    // `servername`: undici reads it at run time though its types leave it out.
    opts: Dispatcher.DispatchOptions & H2Request & { servername?: string | undefined },
    handler: Dispatcher.DispatchHandler & H2Handler,
  ): boolean;
  readonly stats: { readonly connected: number; readonly pending: number };
  close(): Promise<void>;
  destroy(): Promise<void>;
  /**
   * TLS pools: the SNI every request must name. undici takes a request's SNI from its Host and
   * reconnects whenever it changes, so forward passes this one instead.
   */
  servername?: string;
}

export interface UpstreamHost {
  readonly key: string;
  readonly clusterKey: string;
  readonly address: string;
  readonly port: number;
  /** `address:port` as the access log prints it. */
  readonly hostPort: string;
  /** The pool when one serves every request (see `variants`). */
  readonly pool: UpstreamPool;
  /** Pools by protocol and SNI for clusters that choose per request; null when `pool` serves all. */
  readonly variants: Map<string, UpstreamPool> | null;
  /** The cluster settings the pools were made for (equal for every cluster of this key). */
  readonly cluster: Cluster;
  /** Requests in flight on this endpoint (LEAST_REQUEST). */
  active: number;
}

const hosts = new Map<string, UpstreamHost>();

/** Upper bound for idle keep-alive sockets when the upstream sends no keep-alive hint. */
const DEFAULT_KEEPALIVE_MS = 4_000;

export function hostFor(cluster: Cluster, address: string, port: number): UpstreamHost {
  const key = cluster.key + '|' + address + ':' + port;
  let host = hosts.get(key);
  if (host === undefined) {
    const perRequest =
      cluster.protocol === 'client' || (cluster.tls !== undefined && cluster.tls.sni === null);
    host = {
      key,
      clusterKey: cluster.key,
      address,
      port,
      hostPort: (isIPv6(address) ? '[' + address + ']' : address) + ':' + port,
      // Per-request clusters' default: HTTP/1.1 (or HTTP/2), SNI and names from the service host.
      pool: createPool(cluster, address, port, cluster.protocol === 'http2', cluster.host),
      variants: perRequest ? new Map() : null,
      cluster,
      active: 0,
    };
    hosts.set(key, host);
  }
  return host;
}

/** Pools one endpoint keeps per protocol and SNI at most; the oldest is closed beyond it. */
const MAX_VARIANTS = 64;

/**
 * The pool for one request to `host`: `h2Client` is whether the client spoke HTTP/2
 * (`useClientProtocol`), `authority` the upstream Host (auto SNI and SAN check, DR-8).
 */
export function poolFor(host: UpstreamHost, h2Client: boolean, authority: string): UpstreamPool {
  const variants = host.variants;
  if (variants === null) return host.pool;
  const c = host.cluster;
  const h2 = c.protocol === 'http2' || (c.protocol === 'client' && h2Client);
  const tlsHost = c.tls === undefined ? '' : hostOfAuthority(authority);
  const k = (h2 ? '2 ' : '1 ') + tlsHost;
  let pool = variants.get(k);
  if (pool === undefined) {
    if (variants.size >= MAX_VARIANTS) {
      const [oldest, p] = variants.entries().next().value!;
      variants.delete(oldest);
      p.close().catch(() => undefined);
    }
    pool = createPool(c, host.address, host.port, h2, tlsHost);
    variants.set(k, pool);
  }
  return pool;
}

/** `authority` names the SNI and the checked name when the TLS settings leave them to the Host. */
function createPool(
  cluster: Cluster,
  address: string,
  port: number,
  h2: boolean,
  authority: string,
): UpstreamPool {
  const t = cluster.tls;
  if (t !== undefined && t.notReady !== null) return notReadyPool(notReadyError(t.notReady));
  let tls: ConnectionOptions | null = null;
  let servername: string | null = null;
  if (t !== undefined) {
    const auto = t.sni === null && t.subjectAltNames.length === 0 && !t.insecureSkipVerify;
    servername = sniFor(t, authority);
    tls = connectOptionsFor(t, servername, auto ? [hostOfAuthority(authority)] : t.subjectAltNames);
  }
  const connectTimeoutMs = cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000;
  const idleMs = cluster.idleTimeoutMs > 0 ? cluster.idleTimeoutMs : 3_600_000;
  const ip = isIPv6(address) ? '[' + address + ']' : address;
  if (h2) {
    const s = cluster.http2;
    return new H2Pool({
      address,
      port,
      tls,
      connectTimeoutMs,
      idleTimeoutMs: idleMs,
      maxConnections: cluster.maxConnections > 0 ? cluster.maxConnections : Infinity,
      maxRequestsPerConnection: cluster.maxRequestsPerConnection,
      maxConcurrentStreams: s?.maxConcurrentStreams ?? 0,
      keepAliveIntervalMs: s?.keepAliveIntervalMs ?? 0,
      keepAliveTimeoutMs: s?.keepAliveTimeoutMs ?? 0,
    }) as unknown as UpstreamPool;
  }
  const pool = new Pool((tls === null ? 'http://' : 'https://') + ip + ':' + port, {
    connections:
      Number.isFinite(cluster.maxConnections) && cluster.maxConnections > 0 ? cluster.maxConnections : null,
    pipelining: 1,
    connect: { timeout: connectTimeoutMs, ...(tls ?? {}) },
    // Route timeouts (VS-22) are the only request deadline, as in Istio; undici's own are off.
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: Math.min(DEFAULT_KEEPALIVE_MS, idleMs),
    keepAliveMaxTimeout: idleMs,
    maxRequestsPerClient: cluster.maxRequestsPerConnection > 1 ? cluster.maxRequestsPerConnection : undefined,
    // The gateway forwards whatever response headers size the upstream sends up to Envoy's 60 KiB.
    maxHeaderSize: 60 * 1024 + 1024,
  }) as unknown as UpstreamPool;
  if (servername !== null) pool.servername = servername;
  return pool;
}

/** A TLS context without its credential (DR-8): every request fails to connect, with the reason. */
function notReadyPool(err: Error): UpstreamPool {
  return {
    dispatch(_opts, handler): boolean {
      queueMicrotask(() => handler.onError(err));
      return true;
    },
    stats: { connected: 0, pending: 0 },
    close: () => Promise.resolve(),
    destroy: () => Promise.resolve(),
  };
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
  forgetBalancerStates(inUse);
  const closing: Promise<void>[] = [];
  for (const [key, host] of hosts) {
    if (inUse(host.clusterKey)) continue;
    hosts.delete(key);
    for (const pool of poolsOf(host))
      closing.push((force ? pool.destroy() : pool.close()).catch(() => undefined));
  }
  return Promise.all(closing).then(() => undefined);
}

export interface PoolStatus {
  readonly clusterKey: string;
  readonly endpoint: string;
  readonly active: number;
  readonly connected: number;
  readonly pending: number;
}

export function poolStatus(): PoolStatus[] {
  const out: PoolStatus[] = [];
  for (const host of hosts.values()) {
    let connected = 0;
    let pending = 0;
    for (const pool of poolsOf(host)) {
      connected += pool.stats.connected;
      pending += pool.stats.pending;
    }
    out.push({
      clusterKey: host.clusterKey,
      endpoint: host.hostPort,
      active: host.active,
      connected,
      pending,
    });
  }
  return out;
}

function poolsOf(host: UpstreamHost): UpstreamPool[] {
  return host.variants === null ? [host.pool] : [host.pool, ...host.variants.values()];
}

/**
 * One undici Pool per upstream endpoint, keyed by cluster key + address + port so a snapshot swap
 * that keeps a cluster's settings keeps its warm connections (DESIGN §5 hot reload). Pools whose
 * cluster key is gone are closed gracefully by reconcile (in-flight requests finish first).
 */
import { Pool } from 'undici';
import { isIPv6 } from 'node:net';
import type { Cluster } from '../snapshot/types.ts';
import { forgetBalancerStates } from './balancer/state.ts';

export interface UpstreamHost {
  readonly key: string;
  readonly clusterKey: string;
  readonly address: string;
  readonly port: number;
  /** `address:port` as the access log prints it. */
  readonly hostPort: string;
  readonly pool: Pool;
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
    const origin = 'http://' + (isIPv6(address) ? '[' + address + ']' : address) + ':' + port;
    const idleMs = cluster.idleTimeoutMs > 0 ? cluster.idleTimeoutMs : 3_600_000;
    const pool = new Pool(origin, {
      connections:
        Number.isFinite(cluster.maxConnections) && cluster.maxConnections > 0 ? cluster.maxConnections : null,
      pipelining: 1,
      connect: { timeout: cluster.connectTimeoutMs > 0 ? cluster.connectTimeoutMs : 10_000 },
      // Route timeouts (VS-22) are the only request deadline, as in Istio; undici's own are off.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: Math.min(DEFAULT_KEEPALIVE_MS, idleMs),
      keepAliveMaxTimeout: idleMs,
      maxRequestsPerClient:
        cluster.maxRequestsPerConnection > 1 ? cluster.maxRequestsPerConnection : undefined,
      // The gateway forwards whatever response headers size the upstream sends up to Envoy's 60 KiB.
      maxHeaderSize: 60 * 1024 + 1024,
    });
    host = {
      key,
      clusterKey: cluster.key,
      address,
      port,
      hostPort: (isIPv6(address) ? '[' + address + ']' : address) + ':' + port,
      pool,
      active: 0,
    };
    hosts.set(key, host);
  }
  return host;
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
    closing.push((force ? host.pool.destroy() : host.pool.close()).catch(() => undefined));
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
    const s = host.pool.stats;
    out.push({
      clusterKey: host.clusterKey,
      endpoint: host.hostPort,
      active: host.active,
      connected: s.connected,
      pending: s.pending,
    });
  }
  return out;
}

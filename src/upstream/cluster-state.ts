/**
 * What a cluster keeps across snapshot swaps (DESIGN §5 hot reload), keyed by `Cluster.stateKey`
 * (name and policy, not endpoints): the circuit-breaker counts of DR-6, the round-robin cursor,
 * and each endpoint's outlier-detection record (DR-7). Envoy counts these per cluster across all
 * its endpoints and worker threads; here they count per process, so with `--workers N` each
 * worker holds its own (see README "Circuit breaking").
 */
import type { Cluster, OutlierPolicy } from '../snapshot/types.ts';

/** One endpoint's outlier-detection record (Envoy's DetectorHostMonitor). */
export interface EndpointHealth {
  readonly hostPort: string;
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocalOrigin: number;
  ejected: boolean;
  ejectedAtMs: number;
  /** Multiplies baseEjectionTime; grows per ejection, shrinks per healthy interval (Envoy's backoff). */
  backoff: number;
  /** 0 until the endpoint first returns from an ejection. */
  returnedAtMs: number;
  /** Ejections so far (metrics, /clusters). */
  ejections: number;
}

/** A host with requests queued for a connection (see pools.ts); only its identity matters here. */
export interface HasWaiters {
  readonly hostPort: string;
}

export interface ClusterState {
  readonly key: string;
  readonly outlier: OutlierPolicy | null;
  /** ROUND_ROBIN cursor. */
  next: number;
  /** DR-6 counts, across every endpoint of the cluster. */
  connections: number;
  pending: number;
  requests: number;
  retries: number;
  /** Requests held back by each limit, for metrics: queued at the connection cap, refused (503 UO) at the others. */
  readonly overflows: { connections: number; pending: number; requests: number; retries: number };
  /** Hosts with requests queued for a connection, served as connections close. */
  readonly waitingHosts: Set<HasWaiters>;
  /** Outlier records by endpoint `address:port`. */
  readonly health: Map<string, EndpointHealth>;
  /** Endpoints in the newest host set (maxEjectionPercent is a share of them). */
  hostCount: number;
  ejectedCount: number;
  /** Bumped on every ejection and return, so balancers rebuild their usable set. */
  healthVersion: number;
  outlierTimer: NodeJS.Timeout | null;
  /** Upstream hosts (pools) holding this state; it is dropped when the last one closes. */
  refs: number;
  /** Slow start (DR-4 warmup): when each endpoint of the newest host set joined the cluster. */
  readonly joinedMs: Map<string, number>;
  /** Until then some endpoint is still warming up; 0 = none is (the usual balancers run). */
  warmingUntilMs: number;
  /** Slow start's smooth weighted round robin: each endpoint's running credit. */
  readonly warmCredit: Map<string, number>;
}

const states = new Map<string, ClusterState>();

export function clusterStateFor(cluster: Cluster): ClusterState {
  let s = states.get(cluster.stateKey);
  if (s === undefined) {
    s = newClusterState(cluster.stateKey, cluster.outlier);
    states.set(cluster.stateKey, s);
  }
  return s;
}

/** Whether some pool holds the state of clusters with this key (it has counts worth keeping). */
export function hasClusterState(key: string): boolean {
  return states.has(key);
}

export function newClusterState(key: string, outlier: OutlierPolicy | null): ClusterState {
  return {
    key,
    outlier,
    next: 0,
    connections: 0,
    pending: 0,
    requests: 0,
    retries: 0,
    overflows: { connections: 0, pending: 0, requests: 0, retries: 0 },
    waitingHosts: new Set(),
    health: new Map(),
    hostCount: 0,
    ejectedCount: 0,
    healthVersion: 0,
    outlierTimer: null,
    refs: 0,
    joinedMs: new Map(),
    warmingUntilMs: 0,
    warmCredit: new Map(),
  };
}

export function healthOf(state: ClusterState, hostPort: string): EndpointHealth {
  let h = state.health.get(hostPort);
  if (h === undefined) {
    h = {
      hostPort,
      consecutive5xx: 0,
      consecutiveGateway: 0,
      consecutiveLocalOrigin: 0,
      ejected: false,
      ejectedAtMs: 0,
      backoff: 0,
      returnedAtMs: 0,
      ejections: 0,
    };
    state.health.set(hostPort, h);
  }
  return h;
}

/** A pool stopped using `state`; the last one out drops it (and its outlier timer). */
export function releaseClusterState(state: ClusterState): void {
  state.refs -= 1;
  if (state.refs > 0) return;
  if (state.outlierTimer !== null) clearInterval(state.outlierTimer);
  state.outlierTimer = null;
  if (states.get(state.key) === state) states.delete(state.key);
}

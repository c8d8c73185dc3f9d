/**
 * Prometheus metrics. One registry per process; label sets are created at config time, never
 * per request. Istio's request metrics (istio_requests_total …) join this registry with the
 * request-path work; what is here is sluice's own process, reload and worker state.
 *
 * With --workers N every process has its own registry: the primary keeps the reload and worker
 * metrics, each worker its process and request metrics, and the primary's metrics port serves
 * all of them merged by prom-client's AggregatorRegistry (`renderAggregated`).
 */
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';

export type MetricsRole = 'single' | 'primary' | 'worker';

export interface Metrics {
  readonly registry: Registry;
  readonly configReloads: Counter<'result'>;
  readonly listeners: Gauge;
  readonly workers: Gauge;
  readonly workerRestarts: Counter;
  /** Per worker slot: the snapshot version it serves (every slot equal when in step). */
  readonly workerSnapshotVersion: Gauge<'worker'>;
  /** ACME orders by issuer and result (issued, failed, locked); the process running the orders counts. */
  readonly acmeOrders: Counter<'issuer' | 'result'>;
  /**
   * What a loaded config sets that sluice does not act on, by kind and field (`*` for a whole
   * resource), once per accepted or rejected load: the warnings model/unsupported.ts makes.
   */
  readonly configUnsupported: Counter<'kind' | 'field'>;
  /** A snapshot went live: version, applied-at timestamp and age follow it. */
  recordApplied(version: number, atMs: number): void;
  /**
   * A remote config source's health (the Kubernetes API): whether every watch works, whether
   * every watch has listed once, and its failures so far. The series exist once a source reports.
   */
  recordProviderHealth(h: {
    readonly source: string;
    readonly connected: boolean;
    readonly synced: boolean;
    readonly failures: number;
    readonly forbidden?: number;
  }): void;
}

/** The JSON one registry yields; what workers send the primary. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export function createMetrics(opts: { role?: MetricsRole; now?: () => number } = {}): Metrics {
  const role = opts.role ?? 'single';
  const now = opts.now ?? Date.now;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  // Workers keep only process metrics (and, later, request metrics); reload state is the primary's.
  const registers = role === 'worker' ? [] : [registry];
  let appliedAtMs = 0;
  let source:
    | {
        up: Gauge<'source'>;
        synced: Gauge<'source'>;
        failures: Counter<'source'>;
        forbidden: Gauge<'source'>;
        counted: Map<string, number>;
      }
    | undefined;
  const snapshotVersion = new Gauge({
    name: 'sluice_snapshot_version',
    help: 'Version of the snapshot serving now (0 before the first).',
    registers,
  });
  const snapshotAppliedAt = new Gauge({
    name: 'sluice_snapshot_applied_timestamp_seconds',
    help: 'Unix time the serving snapshot was applied.',
    registers,
  });
  new Gauge({
    name: 'sluice_snapshot_age_seconds',
    help: 'Seconds since the serving snapshot was applied (0 before the first).',
    registers,
    collect() {
      this.set(appliedAtMs === 0 ? 0 : Math.max(0, (now() - appliedAtMs) / 1000));
    },
  });
  return {
    registry,
    configReloads: new Counter({
      name: 'sluice_config_reloads_total',
      help: 'Config sets processed, by result: accepted, rejected (errors or bind failure), unchanged, failed.',
      labelNames: ['result'],
      registers,
    }),
    listeners: new Gauge({ name: 'sluice_listeners', help: 'Gateway listeners bound now.', registers }),
    workers: new Gauge({
      name: 'sluice_workers',
      help: 'Worker processes running now (1 without --workers).',
      registers,
    }),
    workerRestarts: new Counter({
      name: 'sluice_worker_restarts_total',
      help: 'Worker processes restarted after they died.',
      registers,
    }),
    workerSnapshotVersion: new Gauge({
      name: 'sluice_worker_snapshot_version',
      help: 'Snapshot version each worker serves, by worker slot (--workers > 1).',
      labelNames: ['worker'],
      registers,
    }),
    acmeOrders: new Counter({
      name: 'sluice_acme_orders_total',
      help: 'ACME certificate orders by issuer and result: issued, failed (retried after a back-off), locked (another replica holds the order).',
      labelNames: ['issuer', 'result'],
      registers,
    }),
    configUnsupported: new Counter({
      name: 'sluice_config_unsupported_total',
      help: 'Fields, values and kinds of each loaded config that sluice parses but does not act on (each also a warning), by kind and field.',
      labelNames: ['kind', 'field'],
      registers,
    }),
    recordApplied(version, atMs) {
      appliedAtMs = atMs;
      snapshotVersion.set(version);
      snapshotAppliedAt.set(atMs / 1000);
    },
    recordProviderHealth(h) {
      source ??= {
        up: new Gauge({
          name: 'sluice_config_source_up',
          help: 'Whether every list and watch of a remote config source (kubernetes) works now; 0 during an outage, while the last snapshot keeps serving.',
          labelNames: ['source'],
          registers,
        }),
        synced: new Gauge({
          name: 'sluice_config_source_synced',
          help: 'Whether every watch of a remote config source has listed once (readiness waits for it).',
          labelNames: ['source'],
          registers,
        }),
        failures: new Counter({
          name: 'sluice_config_source_failures_total',
          help: 'Failed lists, watches and discovery requests of a remote config source (each retried with capped back-off).',
          labelNames: ['source'],
          registers,
        }),
        forbidden: new Gauge({
          name: 'sluice_config_source_forbidden_watches',
          help: 'Secret and Pod watches the API server refuses (401/403, missing RBAC): what they would read is left out, the rest applies, each is retried.',
          labelNames: ['source'],
          registers,
        }),
        counted: new Map(),
      };
      source.up.set({ source: h.source }, h.connected ? 1 : 0);
      source.synced.set({ source: h.source }, h.synced ? 1 : 0);
      source.forbidden.set({ source: h.source }, h.forbidden ?? 0);
      const before = source.counted.get(h.source) ?? 0;
      if (h.failures > before) source.failures.inc({ source: h.source }, h.failures - before);
      else source.failures.inc({ source: h.source }, 0);
      source.counted.set(h.source, Math.max(before, h.failures));
    },
  };
}

/** The primary's registry plus every worker's, merged (counters summed, per prom-client's aggregators). */
export async function aggregateRegistries(
  primary: Registry,
  workers: readonly MetricsJson[],
): Promise<Registry> {
  return AggregatorRegistry.aggregate([await primary.getMetricsAsJSON(), ...workers] as Parameters<
    typeof AggregatorRegistry.aggregate
  >[0]);
}

/** /stats as JSON (Envoy's admin /stats?format=json shape: { stats: [{ name, value }] }), sorted. */
export async function statsJson(
  registry: Registry | Promise<Registry>,
): Promise<{ stats: { name: string; labels?: Record<string, string | number>; value: number }[] }> {
  const metrics = await (await registry).getMetricsAsJSON();
  const stats: { name: string; labels?: Record<string, string | number>; value: number }[] = [];
  for (const m of metrics) {
    for (const v of m.values) {
      const labels = v.labels as Record<string, string | number>;
      const name = (v as { metricName?: string }).metricName ?? m.name;
      stats.push(
        Object.keys(labels).length > 0 ? { name, labels, value: v.value } : { name, value: v.value },
      );
    }
  }
  stats.sort((a, b) =>
    a.name < b.name
      ? -1
      : a.name > b.name
        ? 1
        : JSON.stringify(a.labels ?? {}) < JSON.stringify(b.labels ?? {})
          ? -1
          : 1,
  );
  return { stats };
}

/** What one upstream endpoint pool reports (upstream/pools.ts poolStatus()), as metrics need it. */
export interface PoolSample {
  /** Cluster name, e.g. outbound|80||a.ns.svc.cluster.local. */
  readonly cluster: string;
  readonly connected: number;
  readonly active: number;
  readonly pending: number;
  /** Outlier detection: out of the balancer now, and ejections so far. */
  readonly ejected: boolean;
  readonly ejections: number;
}

/** A cluster's requests held back by each circuit breaker so far (upstream/pools.ts limitStatus()). */
export interface OverflowSample {
  readonly cluster: string;
  /** maxConnections (queued), http1MaxPendingRequests, http2MaxRequests, maxRetries (refused). */
  readonly limit: string;
  readonly count: number;
}

/**
 * Upstream pool gauges per cluster, read at scrape time (nothing on the request path). With
 * --workers every worker registers its own and the primary's scrape sums them.
 */
export function registerPoolGauges(registry: Registry, read: () => readonly PoolSample[]): void {
  const byCluster = (pick: (p: PoolSample) => number): Map<string, number> => {
    const out = new Map<string, number>();
    for (const p of read()) out.set(p.cluster, (out.get(p.cluster) ?? 0) + pick(p));
    return out;
  };
  const gauge = (name: string, help: string, pick: (p: PoolSample) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['cluster'],
      registers: [registry],
      collect() {
        // Clusters come and go with reloads: start from nothing each scrape.
        this.reset();
        for (const [cluster, value] of byCluster(pick)) this.set({ cluster }, value);
      },
    });
  };
  gauge(
    'sluice_upstream_connections',
    'Open connections to upstream endpoints, by cluster.',
    (p) => p.connected,
  );
  gauge(
    'sluice_upstream_requests_active',
    'Requests in flight to upstream endpoints, by cluster.',
    (p) => p.active,
  );
  gauge(
    'sluice_upstream_requests_pending',
    'Requests waiting for an upstream connection, by cluster.',
    (p) => p.pending,
  );
  gauge(
    'sluice_upstream_endpoints_ejected',
    'Endpoints ejected by outlier detection now, by cluster.',
    (p) => (p.ejected ? 1 : 0),
  );
  new Counter({
    name: 'sluice_upstream_ejections_total',
    help: 'Ejections by outlier detection so far, by cluster.',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cluster, value] of byCluster((p) => p.ejections)) this.inc({ cluster }, value);
    },
  });
}

/** Circuit-breaker overflows per cluster and limit, read at scrape time. */
export function registerOverflowCounter(registry: Registry, read: () => readonly OverflowSample[]): void {
  new Counter({
    name: 'sluice_upstream_overflow_total',
    help: 'Requests held back by a circuit breaker (DR-6), by cluster and limit: queued at maxConnections, answered 503 UO at http1MaxPendingRequests and http2MaxRequests, not retried at maxRetries.',
    labelNames: ['cluster', 'limit'],
    registers: [registry],
    collect() {
      this.reset();
      for (const o of read()) if (o.count > 0) this.inc({ cluster: o.cluster, limit: o.limit }, o.count);
    },
  });
}

/** Mirrored requests of one cluster by result (upstream/mirror.ts), since the process started. */
export type MirrorCountsByCluster = ReadonlyMap<
  string,
  Readonly<{ completed: number; failed: number; cut: number }>
>;

/**
 * `sluice_mirror_requests_total{cluster,result}` (VS-27): read from the mirror counters at scrape
 * time, nothing on the request path. `completed` got a response (any status), `failed` got none
 * (no endpoint, connect failure, reset, route timeout, circuit breaker), `cut` fell behind the
 * primary's body or lost part of it. With --workers the primary's scrape sums the workers'.
 */
export function registerMirrorCounters(registry: Registry, read: () => MirrorCountsByCluster): void {
  new Counter({
    name: 'sluice_mirror_requests_total',
    help: 'Mirrored requests (VirtualService mirror/mirrors) by mirror cluster and result: completed, failed, cut.',
    labelNames: ['cluster', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cluster, c] of read()) {
        this.inc({ cluster, result: 'completed' }, c.completed);
        this.inc({ cluster, result: 'failed' }, c.failed);
        this.inc({ cluster, result: 'cut' }, c.cut);
      }
    },
  });
}

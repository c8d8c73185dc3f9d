/**
 * Prometheus metrics. One registry per process; label sets are created at config time, never
 * per request. Istio's request metrics (istio_requests_total …) join this registry with the
 * operations work; what is here now is sluice's own process and reload state.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly configReloads: Counter<'result'>;
  readonly snapshotVersion: Gauge;
  readonly snapshotAppliedAt: Gauge;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  return {
    registry,
    configReloads: new Counter({
      name: 'sluice_config_reloads_total',
      help: 'Config sets processed, by result: accepted, rejected (errors or bind failure), unchanged, failed.',
      labelNames: ['result'],
      registers: [registry],
    }),
    snapshotVersion: new Gauge({ name: 'sluice_snapshot_version', help: 'Version of the snapshot serving now (0 before the first).', registers: [registry] }),
    snapshotAppliedAt: new Gauge({
      name: 'sluice_snapshot_applied_timestamp_seconds',
      help: 'Unix time the serving snapshot was applied; age = time() - this.',
      registers: [registry],
    }),
  };
}

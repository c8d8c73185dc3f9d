/**
 * deploy/grafana/sluice-dashboard.json reads only metrics sluice exports: every istio_* and
 * sluice_* name in its queries is registered by request-metrics.ts, metrics.ts or tls-metrics.ts.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { createRequestMetrics } from '../../../src/observability/request-metrics.ts';
import { registerTlsMetrics } from '../../../src/observability/tls-metrics.ts';
import { createTlsStats } from '../../../src/observability/tls-stats.ts';

const DASHBOARD = new URL('../../../deploy/grafana/sluice-dashboard.json', import.meta.url);

function exprsOf(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) exprsOf(n, out);
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'definition') && typeof v === 'string') out.push(v);
      else exprsOf(v, out);
    }
  }
  return out;
}

describe('Grafana dashboard', () => {
  it('queries only metric names sluice exports', async () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: unknown[]; uid: string };
    expect(dash.uid).toBe('sluice-gateway');
    const metrics = createMetrics({ role: 'single' });
    createRequestMetrics({ registry: metrics.registry, workload: 'sluice', namespace: 'ns', labels: {} });
    registerTlsMetrics(metrics.registry, { stats: createTlsStats, certificates: () => [] });
    const exported = new Set<string>();
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (String(m.type) === 'histogram')
        for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
    }
    const used = new Set<string>();
    for (const e of exprsOf(dash))
      for (const m of e.matchAll(/\b((?:istio|sluice)_[a-z0-9_]+)/g)) used.add(m[1]!);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
  });
});

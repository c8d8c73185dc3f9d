/**
 * DR-7 outlierDetection through the gateway against real loopback upstreams that fail, reset or
 * are killed: an ejected endpoint gets no traffic and comes back after its time, the limits of
 * maxEjectionPercent and minHealthPercent hold, ejections survive a reload and show in /clusters
 * and metrics.
 */
import http from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { snapshotFromYaml, startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { startSteered, type SteeredUpstream } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { policyYaml } from '../support/policy-config.ts';
import { registerPoolGauges } from '../../src/observability/metrics.ts';
import { poolSamples } from '../../src/cli/serve.ts';
import type { PoolStatus } from '../../src/upstream/pools.ts';
import { parsePrometheus, sumOf } from '../support/observability.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

function yamlFor(ups: readonly SteeredUpstream[], outlier: string): string {
  return policyYaml({
    name: 'reviews',
    ports: ups.map((u) => u.port),
    rule: 'retries: { attempts: 0 }',
    rules: `  trafficPolicy:\n    loadBalancer: { simple: ROUND_ROBIN }\n    outlierDetection: ${outlier}\n`,
  });
}

async function setup(
  n: number,
  outlier: string,
): Promise<{ gw: TestGateway; ups: SteeredUpstream[]; yaml: string }> {
  const ups = await Promise.all(Array.from({ length: n }, (_, i) => startSteered({ name: `u${i}` })));
  for (const u of ups) cleanups.push(() => u.close());
  const yaml = yamlFor(ups, outlier);
  const gw = await startGatewayFromYaml(yaml);
  cleanups.push(() => gw.close());
  return { gw, ups, yaml };
}

function send(gw: TestGateway): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: gw.port(), path: '/', agent: false, headers: { host: 'example.com' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function sendMany(gw: TestGateway, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send(gw)).status);
  return out;
}

/** The reviews cluster's ejection gauges as /metrics reports them. */
async function ejectionMetrics(gw: TestGateway): Promise<{ ejected: number; ejections: number }> {
  const registry = new Registry();
  registerPoolGauges(registry, () => poolSamples(gw.gateway));
  const samples = parsePrometheus(await registry.metrics());
  const cluster = { cluster: 'outbound|80||reviews.default.svc.cluster.local' };
  return {
    ejected: sumOf(samples, 'sluice_upstream_endpoints_ejected', cluster),
    ejections: sumOf(samples, 'sluice_upstream_ejections_total', cluster),
  };
}

const status = (gw: TestGateway): PoolStatus[] => gw.gateway.clusterStatus() as PoolStatus[];

describe('DR-7 outlier detection', () => {
  it('consecutive5xxErrors: the failing endpoint is ejected, gets nothing, and returns after baseEjectionTime', async () => {
    const { gw, ups } = await setup(
      3,
      '{ consecutive5xxErrors: 3, interval: 50ms, baseEjectionTime: 400ms, maxEjectionPercent: 100 }',
    );
    const bad = ups[1]!;
    bad.status = 500;
    const statuses: number[] = [];
    // The ejection starts with the 3rd 500, not when the 30 requests are done (a busy machine
    // can take a good part of baseEjectionTime to send the rest).
    let ejectedAt = 0;
    for (let i = 0; i < 30; i++) {
      statuses.push((await send(gw)).status);
      if (ejectedAt === 0 && bad.requests === 3) ejectedAt = Date.now();
    }
    // Round robin: the bad endpoint answers its 3rd request, then is out.
    expect(bad.requests).toBe(3);
    expect(statuses.filter((s) => s === 500)).toHaveLength(3);
    expect(status(gw).find((p) => p.endpoint.endsWith(`:${bad.port}`))).toMatchObject({
      ejected: true,
      ejections: 1,
    });
    bad.status = 200;
    await until(async () => (await send(gw)) && bad.requests > 3, {
      timeoutMs: 3000,
      what: 'the endpoint back in rotation',
    });
    expect(Date.now() - ejectedAt).toBeGreaterThanOrEqual(300);
    expect(status(gw).find((p) => p.endpoint.endsWith(`:${bad.port}`))?.ejected).toBe(false);
  });

  it('consecutiveGatewayErrors counts 502/503/504 only; 5xx counting off with consecutive5xxErrors: 0', async () => {
    const { gw, ups } = await setup(
      2,
      '{ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }',
    );
    const bad = ups[0]!;
    bad.status = 500;
    await sendMany(gw, 10);
    expect(bad.requests).toBe(5);
    bad.status = 503;
    await sendMany(gw, 10);
    expect(bad.requests).toBe(7);
  });

  it('splitExternalLocalOriginErrors: refused connections count apart from responses; a connection made resets the count', async () => {
    const { gw, ups } = await setup(
      2,
      '{ consecutive5xxErrors: 0, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }',
    );
    const bad = ups[0]!;
    bad.status = 500;
    await sendMany(gw, 8);
    expect(bad.requests).toBe(4);
    // A reset after the connection was made follows a "connected" (Envoy's pool ready), which
    // clears the local-origin count: resets alone never reach 2 in a row.
    bad.reset = true;
    await sendMany(gw, 8);
    expect(bad.requests).toBe(8);
    // Answers again (500s): each connection made clears the count the last reset left.
    bad.reset = false;
    await sendMany(gw, 2);
    await bad.close();
    const statuses = await sendMany(gw, 10);
    expect(statuses.filter((s) => s === 503)).toHaveLength(2);
    expect(statuses.filter((s) => s === 200)).toHaveLength(8);
  });

  it('a killed endpoint (connection refused) is ejected as 503s; traffic goes to the rest', async () => {
    const { gw, ups } = await setup(
      2,
      '{ consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }',
    );
    await ups[0]!.close();
    const statuses = await sendMany(gw, 10);
    // Retries are off: the two refused connections answer 503 UF, then the endpoint is out.
    expect(statuses.filter((s) => s === 503)).toHaveLength(2);
    expect(statuses.filter((s) => s === 200)).toHaveLength(8);
  });

  it("maxEjectionPercent: Istio's default 10 % of 3 endpoints ejects none (Envoy counts the ejection itself)", async () => {
    const { gw, ups } = await setup(3, '{ consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s }');
    ups[0]!.status = 500;
    await sendMany(gw, 30);
    expect(ups[0]!.requests).toBe(10);
  });

  it('all endpoints ejected: 503 UH no healthy upstream; minHealthPercent (panic) keeps using them', async () => {
    const { gw, ups } = await setup(
      2,
      '{ consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }',
    );
    for (const u of ups) u.status = 500;
    await sendMany(gw, 2);
    const after = await send(gw);
    expect(after).toEqual({ status: 503, body: 'no healthy upstream' });
    const panic = await setup(
      2,
      '{ consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100, minHealthPercent: 60 }',
    );
    panic.ups[0]!.status = 500;
    await sendMany(panic.gw, 10);
    // One of two ejected is 50 % usable, below 60 %: panic, both keep their share.
    expect(panic.ups[0]!.requests).toBe(5);
  });

  it('ejections survive a reload that keeps the cluster, and show in metrics', async () => {
    const { gw, ups, yaml } = await setup(
      3,
      '{ consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }',
    );
    const bad = ups[2]!;
    bad.status = 500;
    await sendMany(gw, 9);
    expect(bad.requests).toBe(2);
    await gw.gateway.apply(
      snapshotFromYaml(`${yaml}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: other, namespace: default }
spec:
  hosts: [other.example.com]
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: reviews.default.svc.cluster.local } }] }]
`),
    );
    await sendMany(gw, 9);
    expect(bad.requests).toBe(2);
    expect(await ejectionMetrics(gw)).toEqual({ ejected: 1, ejections: 1 });
  });

  it('an ejection survives a reload that changes the endpoint set (EDS keeps host state)', async () => {
    const outlier =
      '{ consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }';
    const { gw, ups } = await setup(3, outlier);
    const bad = ups[2]!;
    bad.status = 500;
    await sendMany(gw, 9);
    expect(bad.requests).toBe(2);
    // A fourth endpoint joins; the ejected one stays in the set and must stay ejected.
    const extra = await startSteered({ name: 'u3' });
    cleanups.push(() => extra.close());
    await gw.gateway.apply(snapshotFromYaml(yamlFor([...ups, extra], outlier)));
    const statuses = await sendMany(gw, 12);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(bad.requests).toBe(2);
    expect(extra.requests).toBeGreaterThan(0);
    // And the cluster's ejection record carried over with it.
    expect(await ejectionMetrics(gw)).toEqual({ ejected: 1, ejections: 1 });
  });
});

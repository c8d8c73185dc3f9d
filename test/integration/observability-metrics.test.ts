/**
 * DP-7 Istio metrics end to end: a real gateway with the request observer wired to
 * onRequestDone, real requests (200, 404 NR, 503 UF), metrics scraped over HTTP from a real
 * prom-client registry; names, labels, buckets and the HighErrorRate expression checked.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { AggregatorRegistry, Registry } from 'prom-client';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { closedPort, startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import {
  parsePrometheus,
  serveRegistry,
  shopYaml,
  sumOf,
  untilValue,
  type Sample,
} from '../support/observability.ts';
import {
  createRequestMetrics,
  ISTIO_BUCKETS,
  ISTIO_LABELS,
} from '../../src/observability/request-metrics.ts';
import { createObservability, createRequestObserver } from '../../src/observability/request-observer.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createNetServer } from 'node:net';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function yamlFor(upPort: number, deadPort: number): string {
  return shopYaml({
    upPort,
    extra: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: dead, namespace: default }
spec:
  hosts: [dead.example.org]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${deadPort} } }]
---
`,
    http: `    - match: [{ uri: { prefix: /dead } }]
      route: [{ destination: { host: dead.example.org } }]
      retries: { attempts: 0 }
    - route: [{ destination: { host: shop.default.svc.cluster.local } }]`,
  });
}

async function setup(): Promise<{ g: TestGateway; scrape: () => Promise<Sample[]>; registry: Registry }> {
  const up = await startEcho({ name: 'shop' });
  cleanups.push(() => up.close());
  const registry = new Registry();
  const metrics = createRequestMetrics({
    registry,
    workload: 'sluice',
    namespace: 'istio-system',
    labels: { istio: 'ingressgateway', app: 'sluice-gw', version: 'v1' },
  });
  const g = await startGatewayFromYaml(yamlFor(up.port, await closedPort()), {
    onRequestDone: createRequestObserver({ accessLog: null, metrics, tracing: null }),
  });
  cleanups.push(() => g.close());
  const endpoint = await serveRegistry(registry);
  cleanups.push(() => endpoint.close());
  const scrape = async (): Promise<Sample[]> => {
    const res = await request(endpoint.url);
    expect(res.statusCode).toBe(200);
    return parsePrometheus(await res.body.text());
  };
  return { g, scrape, registry };
}

async function hit(g: TestGateway, path: string, host = 'shop.example.com'): Promise<number> {
  const res = await request(g.url(path), { headers: { host } });
  await res.body.text();
  return res.statusCode;
}

describe('DP-7 Istio request metrics', () => {
  it('counts requests with Istio names and labels, reporter=source, missing = unknown', async () => {
    const { g, scrape } = await setup();
    for (let i = 0; i < 3; i++) expect(await hit(g, '/ok')).toBe(200);
    expect(await hit(g, '/', 'nowhere.example.com')).toBe(404);
    expect(await hit(g, '/dead')).toBe(503);

    const samples = await untilValue(
      async () => {
        const s = await scrape();
        return sumOf(s, 'istio_requests_total') === 5 ? s : null;
      },
      { what: 'five requests counted' },
    );
    const ok = samples.find((s) => s.name === 'istio_requests_total' && s.labels['response_code'] === '200')!;
    expect(ok.value).toBe(3);
    // Every Istio label is present, exactly those.
    expect(Object.keys(ok.labels).sort()).toEqual([...ISTIO_LABELS].sort());
    expect(ok.labels).toMatchObject({
      reporter: 'source',
      source_workload: 'sluice',
      source_workload_namespace: 'istio-system',
      source_app: 'sluice-gw',
      source_version: 'v1',
      source_canonical_service: 'sluice-gw',
      source_canonical_revision: 'v1',
      source_principal: 'unknown',
      destination_service: 'shop.default.svc.cluster.local',
      destination_service_name: 'shop',
      destination_service_namespace: 'default',
      destination_workload: 'unknown',
      request_protocol: 'http',
      response_flags: '-',
      grpc_response_status: '',
      connection_security_policy: 'unknown',
    });
    expect(sumOf(samples, 'istio_requests_total', { response_code: '404', response_flags: 'NR' })).toBe(1);
    expect(
      sumOf(samples, 'istio_requests_total', {
        response_code: '404',
        destination_service: 'unknown',
      }),
    ).toBe(1);
    expect(
      sumOf(samples, 'istio_requests_total', {
        response_code: '503',
        response_flags: 'UF',
        destination_service: 'dead.example.org',
        destination_service_name: 'dead.example.org',
        destination_service_namespace: 'unknown',
      }),
    ).toBe(1);

    // The seeds' HighErrorRate rule: non-2xx share over all requests.
    const all = sumOf(samples, 'istio_requests_total');
    const non2xx = samples
      .filter((s) => s.name === 'istio_requests_total' && !/^2/.test(s.labels['response_code']!))
      .reduce((a, s) => a + s.value, 0);
    expect(non2xx / all).toBeCloseTo(2 / 5);
  });

  it('duration and size histograms use Istio buckets and count every request', async () => {
    const { g, scrape } = await setup();
    for (let i = 0; i < 4; i++) expect(await hit(g, '/ok')).toBe(200);
    const samples = await untilValue(
      async () => {
        const s = await scrape();
        return sumOf(s, 'istio_request_duration_milliseconds_count') === 4 ? s : null;
      },
      { what: 'four durations recorded' },
    );
    for (const name of [
      'istio_request_duration_milliseconds',
      'istio_request_bytes',
      'istio_response_bytes',
    ]) {
      const buckets = samples.filter(
        (s) => s.name === name + '_bucket' && s.labels['response_code'] === '200',
      );
      expect(buckets.map((b) => b.labels['le'])).toEqual([...ISTIO_BUCKETS.map(String), '+Inf']);
      // Cumulative and ending at the count.
      for (let i = 1; i < buckets.length; i++)
        expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      expect(buckets.at(-1)!.value).toBe(4);
      expect(sumOf(samples, name + '_count', { response_code: '200' })).toBe(4);
    }
    // A GET's head alone is tens of bytes; the echo's JSON answer is larger still.
    expect(sumOf(samples, 'istio_request_bytes_sum') / 4).toBeGreaterThan(40);
    expect(sumOf(samples, 'istio_response_bytes_sum') / 4).toBeGreaterThan(100);
    expect(sumOf(samples, 'istio_request_duration_milliseconds_sum')).toBeGreaterThan(0);
    // TCP metrics exist (no TCP listener here, so no series yet).
    const text = samples.map((s) => s.name);
    expect(text.filter((n) => n.startsWith('istio_tcp_'))).toEqual([]);
  });

  it('worker registries merge (AggregatorRegistry sums the istio_* series)', async () => {
    const { g, registry } = await setup();
    for (let i = 0; i < 2; i++) expect(await hit(g, '/ok')).toBe(200);
    await until(async () => {
      const json = await registry.getMetricsAsJSON();
      const m = json.find((j) => j.name === 'istio_requests_total');
      return m !== undefined && m.values.reduce((a, v) => a + v.value, 0) === 2;
    });
    const one = await registry.getMetricsAsJSON();
    const merged = AggregatorRegistry.aggregate([one, one] as Parameters<
      typeof AggregatorRegistry.aggregate
    >[0]);
    const samples = parsePrometheus(await merged.metrics());
    expect(sumOf(samples, 'istio_requests_total', { response_code: '200' })).toBe(4);
    expect(sumOf(samples, 'istio_request_duration_milliseconds_count', { response_code: '200' })).toBe(4);
    expect(sumOf(samples, 'istio_request_duration_milliseconds_bucket', { le: '+Inf' })).toBe(4);
  });

  it("createObservability as serve wires it: istio_* and sluice's own output counters in the process registry", async () => {
    const up = await startEcho({ name: 'shop' });
    cleanups.push(() => up.close());
    const metrics = createMetrics({ role: 'single' });
    const obs = createObservability({
      registry: metrics.registry,
      namespace: 'istio-system',
      labels: { istio: 'ingressgateway', app: 'edge' },
    });
    cleanups.push(() => obs.close());
    const g = await startGatewayFromYaml(yamlFor(up.port, await closedPort()), {
      onRequestDone: obs.onRequestDone,
    });
    cleanups.push(() => g.close());
    expect(await hit(g, '/ok')).toBe(200);
    const samples = await untilValue(
      async () => {
        const s = parsePrometheus(await metrics.registry.metrics());
        return sumOf(s, 'istio_requests_total') === 1 ? s : null;
      },
      { what: 'the request counted' },
    );
    expect(sumOf(samples, 'istio_requests_total', { source_workload: 'edge', source_app: 'edge' })).toBe(1);
    // Access log and tracing are off in this config: their counters exist and stay at zero.
    expect(sumOf(samples, 'sluice_access_log_lines_total', { result: 'written' })).toBe(0);
    expect(sumOf(samples, 'sluice_tracing_spans_total', { result: 'exported' })).toBe(0);
    expect(samples.some((s) => s.name === 'sluice_snapshot_version')).toBe(true);
  });
});

describe('DP-7 Istio TCP metrics', () => {
  function tcpYaml(echoPort: number, deadPort: number): string {
    return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: tls-db, protocol: TLS }
      hosts: [db.example.com]
      tls: { mode: SIMPLE, credentialName: db-cert }
    - port: { number: 8443, name: tls-pass, protocol: TLS }
      hosts: [dead.example.com]
      tls: { mode: PASSTHROUGH }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.internal]
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tcp: ${echoPort} } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: dead, namespace: default }
spec:
  hosts: [dead.internal]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tls: ${deadPort} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  gateways: [istio-system/gw]
  tcp: [{ route: [{ destination: { host: db.internal, port: { number: 5432 } } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: dead, namespace: default }
spec:
  hosts: [dead.example.com]
  gateways: [istio-system/gw]
  tls:
    - match: [{ sniHosts: [dead.example.com] }]
      route: [{ destination: { host: dead.internal, port: { number: 443 } } }]
`;
  }

  /** A TLS client that sends `payload`, reads until the server closes, and reports what it got. */
  function tlsExchange(port: number, servername: string, payload: string): Promise<string> {
    return new Promise((resolve) => {
      let got = '';
      const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: testCa().certPem });
      s.setEncoding('utf8');
      s.once('secureConnect', () => s.end(payload));
      s.on('data', (c: string) => (got += c));
      s.once('error', (e: Error) => resolve(`error: ${e.message}`));
      s.once('close', () => resolve(got));
    });
  }

  it('istio_tcp_* count connections and bytes of tcp routes and passthrough, UF when the upstream refuses', async () => {
    // An echo server that closes its side once the client has finished sending.
    const echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => echo.close(() => r())));
    const registry = new Registry();
    const metrics = createRequestMetrics({
      registry,
      workload: 'sluice',
      namespace: 'istio-system',
      labels: { app: 'sluice-gw' },
    });
    const yaml =
      tlsSecretYaml('db-cert', rsaLeaf(['db.example.com'])) +
      '---\n' +
      tcpYaml((echo.address() as { port: number }).port, await closedPort());
    const g = await startGatewayFromYaml(yaml, { tcp: metrics });
    cleanups.push(() => g.close());
    const endpoint = await serveRegistry(registry);
    cleanups.push(() => endpoint.close());

    const payload = 'x'.repeat(1000);
    expect(await tlsExchange(g.port(8443), 'db.example.com', payload)).toBe(payload);
    expect(await tlsExchange(g.port(8443), 'db.example.com', payload)).toBe(payload);
    expect(await tlsExchange(g.port(8443), 'dead.example.com', 'hi')).toMatch(/^error|^$/);

    const samples = await untilValue(
      async () => {
        const res = await request(endpoint.url);
        const s = parsePrometheus(await res.body.text());
        return sumOf(s, 'istio_tcp_connections_closed_total') === 3 ? s : null;
      },
      { what: 'three TCP connections closed' },
    );
    const db = { destination_service: 'db.internal', request_protocol: 'tcp' };
    expect(sumOf(samples, 'istio_tcp_connections_opened_total', db)).toBe(2);
    expect(sumOf(samples, 'istio_tcp_connections_closed_total', { ...db, response_flags: '-' })).toBe(2);
    // The TLS record overhead is on top of the 1000 payload bytes each way.
    expect(sumOf(samples, 'istio_tcp_received_bytes_total', db)).toBeGreaterThanOrEqual(2000);
    expect(sumOf(samples, 'istio_tcp_sent_bytes_total', db)).toBeGreaterThanOrEqual(2000);
    const dead = { destination_service: 'dead.internal' };
    expect(sumOf(samples, 'istio_tcp_connections_opened_total', dead)).toBe(1);
    expect(sumOf(samples, 'istio_tcp_connections_closed_total', { ...dead, response_flags: 'UF' })).toBe(1);
    expect(sumOf(samples, 'istio_tcp_sent_bytes_total', dead)).toBe(0);
    const one = samples.find((s) => s.name === 'istio_tcp_connections_opened_total')!;
    expect(one.labels).toMatchObject({
      reporter: 'source',
      source_app: 'sluice-gw',
      request_protocol: 'tcp',
    });
  });
});

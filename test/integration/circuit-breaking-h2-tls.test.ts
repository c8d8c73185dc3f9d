/**
 * DR-6 circuit breakers on HTTP/2 and TLS-origination clusters, against real loopback upstreams
 * (h2c sessions, HTTPS servers, a grpc-js server): as in Envoy, an HTTP/2 connection counts
 * against `maxConnections` and each of its streams against `http2MaxRequests`; TLS connections
 * (one set per SNI under auto SNI) count in the one cluster, across its endpoints. Over a limit
 * the answer is 503 UO with `x-envoy-overloaded: true` (gRPC: UNAVAILABLE, trailers-only).
 * Outlier detection and consistent hashing choose HTTP/2 endpoints as they choose HTTP/1.1 ones.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGatewayFromYaml, startRecordingGateway, type TestGateway } from '../support/gateway.ts';
import { startSteered, type SteeredUpstream } from '../support/upstreams.ts';
import { count, runClients } from '../support/client-load.ts';
import { POLICY_GATEWAY, policyServiceYaml, type PolicyConfig } from '../support/policy-config.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import { secretYaml } from '../support/tls-upstream.ts';
import { echoClient, grpcStatus, startEchoServer, unary } from '../support/grpc.ts';
import { entryRouteYaml } from '../support/upstream-route.ts';
import { until } from '../support/until.ts';
import { limitStatus, type PoolStatus } from '../../src/upstream/pools.ts';

let cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()?.catch(() => undefined);
  cleanups = [];
});

const BACKEND = 'backend.example.com';
const API = 'api.example.com';
/** Signed by the test CA for both names, chain included. */
const SERVER = ((): { certPem: string; keyPem: string } => {
  const leaf = rsaLeaf([BACKEND, API], { tag: 'breakers-tls' });
  return { certPem: leaf.certPem + testCa().certPem, keyPem: leaf.keyPem };
})();
const CA_SECRET = secretYaml('backend-ca', { 'ca.crt': testCa().certPem });

async function upstream(opts: Parameters<typeof startSteered>[0]): Promise<SteeredUpstream> {
  const up = await startSteered(opts);
  cleanups.push(() => up.close());
  return up;
}

async function gateway(c: Omit<PolicyConfig, 'name'>, extra = ''): Promise<TestGateway> {
  const yaml = `${POLICY_GATEWAY}---\n${policyServiceYaml({ name: 'ratings', ...c })}${extra === '' ? '' : `\n---\n${extra}`}`;
  const gw = await startGatewayFromYaml(yaml);
  cleanups.push(() => gw.close());
  return gw;
}

/** A DestinationRule trafficPolicy body (indented for policyServiceYaml). */
function policy(lines: string): string {
  return `  trafficPolicy:\n${lines
    .trim()
    .split('\n')
    .map((l) => '    ' + l)
    .join('\n')}`;
}

describe('DR-6 on HTTP/2 (h2c) clusters', () => {
  it('http2MaxRequests caps streams in flight on the one connection: the rest 503 UO, x-envoy-overloaded', async () => {
    const up = await upstream({ h2c: true, delayMs: 300 });
    const gw = await gateway({
      ports: [up.port],
      protocol: 'HTTP2',
      rules: policy('connectionPool:\n  http: { http2MaxRequests: 2 }'),
    });
    const r = await runClients(gw.port(), 5, 1);
    expect(count(r, 200)).toBe(2);
    expect(count(r, 503)).toBe(3);
    expect(r.overloaded).toBe(3);
    // Both streams shared one HTTP/2 connection; no more than the cap reached the upstream.
    expect(up.perConnection).toEqual([2]);
    expect(up.maxInFlight).toBe(2);
  });

  it('maxConnections counts HTTP/2 connections across endpoints: two endpoints, cap 1, 1 stream each, 1 pending → 3 of 6', async () => {
    const a = await upstream({ h2c: true, delayMs: 250 });
    const b = await upstream({ h2c: true, delayMs: 250 });
    const gw = await gateway({
      ports: [a.port, b.port],
      // h2UpgradePolicy on an HTTP port: HTTP/2 by the DestinationRule, not the port (DP-9).
      rules: policy(`connectionPool:
  tcp: { maxConnections: 1 }
  http: { h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 1, http1MaxPendingRequests: 1 }`),
    });
    const before = overflowsNow();
    const r = await runClients(gw.port(), 6, 1);
    // Each endpoint gets its one connection even over the cap (Envoy); one request waits for a
    // free stream, the other three are refused at once. Counted per endpoint, four would pass.
    expect(count(r, 200)).toBe(3);
    expect(count(r, 503)).toBe(3);
    expect(r.overloaded).toBe(3);
    expect(a.maxOpenConnections + b.maxOpenConnections).toBe(2);
    expect(a.maxInFlight).toBe(1);
    expect(b.maxInFlight).toBe(1);
    expect(a.requests + b.requests).toBe(3);
    // The refusals are the pending cap's (metrics: sluice_upstream_overflow_total{limit="pending"}).
    expect(overflowsNow().pending - before.pending).toBe(3);
  });

  it('maxConnectionDuration retires an HTTP/2 connection: later requests open new ones', async () => {
    const up = await upstream({ h2c: true, delayMs: 40 });
    const gw = await gateway({
      ports: [up.port],
      protocol: 'HTTP2',
      rules: policy('connectionPool:\n  tcp: { maxConnectionDuration: 200ms }'),
    });
    const r = await runClients(gw.port(), 1, 15);
    expect(count(r, 200)).toBe(15);
    // 15 × ≥40 ms over connections that take no stream after 200 ms: at least 3 connections.
    expect(up.perConnection.length).toBeGreaterThanOrEqual(3);
    for (const n of up.perConnection) expect(n).toBeLessThanOrEqual(6);
    await until(() => up.openConnections <= 1, { what: 'retired connections closed' });
  });

  it('gRPC: a call over http2MaxRequests is UNAVAILABLE "overflow", trailers-only with x-envoy-overloaded', async () => {
    const server = await startEchoServer();
    cleanups.push(() => server.close());
    const gw = await startRecordingGateway(
      `${entryRouteYaml({
        host: 'echo.internal',
        upstreamPort: server.port,
        port: { number: 50051, name: 'grpc', protocol: 'GRPC' },
      })}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec:
  host: echo.internal
  trafficPolicy:
    connectionPool:
      http: { http2MaxRequests: 1 }
`,
    );
    cleanups.push(() => gw.close());
    const client = echoClient(`127.0.0.1:${gw.port()}`, 'grpc.example.com');
    cleanups.push(() => client.close());
    const slow = unary(client, { text: 'first', delayMs: 400 });
    await until(() => server.calls.length === 1, { what: 'the first call reached the server' });
    const refused = await unary(client, { text: 'second' });
    expect(refused.error?.code).toBe(grpcStatus.UNAVAILABLE);
    expect(refused.error?.details).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    );
    expect(refused.trailers['x-envoy-overloaded']).toBe('true');
    expect((await slow).value?.text).toBe('first');
    expect(server.calls).toHaveLength(1);
    await until(() => gw.done.length === 2);
    expect(gw.done.map((d) => d.responseFlags).sort()).toEqual(['-', 'UO']);
  });
});

describe('host choice on HTTP/2 clusters, as on HTTP/1.1 (DR-4, DR-7)', () => {
  async function h2Upstreams(n: number): Promise<SteeredUpstream[]> {
    return Promise.all(Array.from({ length: n }, (_, i) => upstream({ h2c: true, name: `u${i}` })));
  }

  it('outlierDetection ejects a failing HTTP/2 endpoint', async () => {
    const ups = await h2Upstreams(3);
    const bad = ups[1]!;
    bad.status = 500;
    const gw = await gateway({
      ports: ups.map((u) => u.port),
      protocol: 'HTTP2',
      rule: 'retries: { attempts: 0 }',
      rules: policy(`loadBalancer: { simple: ROUND_ROBIN }
outlierDetection: { consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }`),
    });
    const r = await runClients(gw.port(), 1, 15);
    // Round robin: the bad endpoint answers its 2nd request, then is out.
    expect(bad.requests).toBe(2);
    expect(count(r, 500)).toBe(2);
    expect(count(r, 200)).toBe(13);
    for (const u of ups) expect(u.perConnection.length).toBe(1);
  });

  it('consistentHash sends one key to one HTTP/2 endpoint every time', async () => {
    const ups = await h2Upstreams(3);
    const gw = await gateway({
      ports: ups.map((u) => u.port),
      protocol: 'HTTP2',
      rules: policy('loadBalancer: { consistentHash: { httpHeaderName: x-user } }'),
    });
    for (const user of ['alice', 'bob', 'carol']) {
      const before = ups.map((u) => u.requests);
      const r = await runClients(gw.port(), 1, 10, { headers: () => ({ 'x-user': user }) });
      expect(count(r, 200)).toBe(10);
      const got = ups.map((u, i) => u.requests - before[i]!);
      expect(got.filter((n) => n === 10)).toHaveLength(1);
      expect(got.filter((n) => n === 0)).toHaveLength(2);
    }
  });
});

describe('DR-6 on TLS-origination clusters (DR-8)', () => {
  it('TLS connections count per cluster across endpoints: two HTTPS endpoints, maxConnections 1, 1 pending → 3 of 6', async () => {
    const a = await upstream({ tls: SERVER, delayMs: 250 });
    const b = await upstream({ tls: SERVER, delayMs: 250 });
    const gw = await gateway(
      {
        ports: [a.port, b.port],
        rules: policy(`connectionPool:
  tcp: { maxConnections: 1 }
  http: { http1MaxPendingRequests: 1 }
tls: { mode: SIMPLE, credentialName: backend-ca, sni: ${BACKEND} }`),
      },
      CA_SECRET,
    );
    const r = await runClients(gw.port(), 6, 1);
    expect(count(r, 200)).toBe(3);
    expect(count(r, 503)).toBe(3);
    expect(r.overloaded).toBe(3);
    expect(a.maxOpenConnections + b.maxOpenConnections).toBe(2);
    // Every connection was TLS with the configured SNI, whatever the Host (example.com).
    expect([...a.servernames, ...b.servernames]).toEqual([BACKEND, BACKEND]);
  });

  it('auto SNI keeps connections per Host, all counted in the one cluster: maxConnections 1, 1 pending', async () => {
    const up = await upstream({ tls: SERVER, delayMs: 300 });
    const gw = await gateway(
      {
        ports: [up.port],
        routeHosts: `[${BACKEND}, ${API}]`,
        rules: policy(`connectionPool:
  tcp: { maxConnections: 1 }
  http: { http1MaxPendingRequests: 1 }
tls: { mode: SIMPLE, credentialName: backend-ca }`),
      },
      CA_SECRET,
    );
    // Two requests per Host at once. Each SNI's first request gets a connection (a set of
    // connections with none still gets one, as Envoy's pool per SNI); the cluster is then over
    // its cap, so one of the other two waits and the last is refused.
    const r = await runClients(gw.port(), 4, 1, {
      headers: (client) => ({ host: client < 2 ? BACKEND : API }),
    });
    expect(count(r, 200)).toBe(3);
    expect(count(r, 503)).toBe(1);
    expect(r.overloaded).toBe(1);
    expect([...up.servernames].sort()).toEqual([API, BACKEND]);
    expect(up.maxOpenConnections).toBe(2);
  });
});

describe('auto SNI keeps a bounded set of connection groups per endpoint', () => {
  it('70 Hosts: the oldest groups retire beyond 64 and their idle connections close', async () => {
    const up = await upstream({ tls: SERVER });
    const gw = await gateway(
      {
        ports: [up.port],
        routeHosts: "['*']",
        rules: policy('tls: { mode: SIMPLE, credentialName: backend-ca, insecureSkipVerify: true }'),
      },
      CA_SECRET,
    );
    const r = await runClients(gw.port(), 1, 70, { headers: (_c, i) => ({ host: `h${i}.example.com` }) });
    expect(count(r, 200)).toBe(70);
    // One connection per SNI (the Host), each left idle for keep-alive...
    expect(up.servernames).toEqual(Array.from({ length: 70 }, (_, i) => `h${i}.example.com`));
    // ...but only the newest 64 groups keep theirs: the others close now, well before the 4 s
    // keep-alive would close them.
    const status = (): PoolStatus | undefined =>
      (gw.gateway.clusterStatus() as PoolStatus[]).find((s) => s.endpoint === `127.0.0.1:${up.port}`);
    expect(status()?.connected).toBe(64);
    await until(() => up.openConnections === 64, {
      timeoutMs: 2_000,
      what: 'six retired groups closed their connections',
    });
  });
});

/** Overflows so far of every cluster in this process, by limit. */
function overflowsNow(): { connections: number; pending: number; requests: number } {
  const out = { connections: 0, pending: 0, requests: 0 };
  for (const s of limitStatus()) {
    out.connections += s.overflows.connections;
    out.pending += s.overflows.pending;
    out.requests += s.overflows.requests;
  }
  return out;
}

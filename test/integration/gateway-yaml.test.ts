/**
 * YAML → loadResources → compile → createGateway().apply() → real requests: the whole request
 * path on Istio documents.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { closedPort, startEcho, type EchoBody, type Upstream } from '../support/upstreams.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function echo(name: string, opts: Parameters<typeof startEcho>[0] = {}): Promise<Upstream> {
  const u = await startEcho({ name, ...opts });
  cleanups.push(() => u.close());
  return u;
}

async function gateway(yaml: string): Promise<TestGateway> {
  const g = await startGatewayFromYaml(yaml);
  cleanups.push(() => g.close());
  return g;
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await request(g.url(path), { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

const GATEWAY = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8080, name: http, protocol: HTTP }
      hosts: ['*']
`;

function staticEntry(name: string, host: string, ports: number[], extra = ''): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${host}]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
${ports.map((p, i) => `    - { address: 127.0.0.1, ports: { http: ${p} }, labels: { idx: "${i}" } }`).join('\n')}
${extra}`;
}

describe('gateway from Istio YAML', () => {
  it('a destination host outside the config is resolved by DNS (sluice; Istio gives 503 NC)', async () => {
    const up = await echo('dns');
    const g = await gateway(
      GATEWAY +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: by-dns, namespace: default }
spec:
  hosts: [dns.example.com]
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: 127.0.0.1, port: { number: ${up.port} } } }]
`,
    );
    const r = await get(g, '/hello', { host: 'dns.example.com' });
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text) as EchoBody).toMatchObject({ name: 'dns', url: '/hello' });
  });

  it('VS-21 %VAR% substitution in request and response header values; %% is a literal percent', async () => {
    const up = await echo('vars');
    const g = await gateway(
      GATEWAY +
        staticEntry('v', 'v.internal', [up.port]) +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vars, namespace: default }
spec:
  hosts: [vars.example.com]
  gateways: [istio-system/gw]
  http:
    - name: with-vars
      headers:
        request:
          set:
            x-client-ip: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
            x-user-copy: "user=%REQ(x-user)%"
            x-missing: "%REQ(x-not-sent)%"
            x-share: "100%%"
            x-short: "%REQ(x-user):3%"
        response:
          set:
            x-route: "%ROUTE_NAME%"
            x-cluster: "%UPSTREAM_CLUSTER%"
            x-proto: "%PROTOCOL%"
      route: [{ destination: { host: v.internal } }]
`,
    );
    const r = await get(g, '/', { host: 'vars.example.com', 'x-user': 'alice' });
    expect(r.status, r.text).toBe(200);
    const seen = (JSON.parse(r.text) as EchoBody).headers;
    expect(seen['x-client-ip']).toBe('127.0.0.1');
    expect(seen['x-user-copy']).toBe('user=alice');
    expect(seen['x-share']).toBe('100%');
    expect(seen['x-short']).toBe('ali');
    // A value that renders empty adds no header (Envoy keeps no empty substituted value).
    expect(seen['x-missing']).toBeUndefined();
    expect(r.headers['x-route']).toBe('with-vars');
    expect(r.headers['x-cluster']).toBe('outbound|80||v.internal');
    expect(r.headers['x-proto']).toBe('HTTP/1.1');
  });

  it('routes by VirtualService match to ServiceEntry endpoints', async () => {
    const a = await echo('a');
    const b = await echo('b');
    const g = await gateway(
      GATEWAY +
        staticEntry('a', 'a.internal', [a.port]) +
        staticEntry('b', 'b.internal', [b.port]) +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/gw]
  http:
    - match: [{ uri: { prefix: /b } }]
      route: [{ destination: { host: b.internal } }]
    - route: [{ destination: { host: a.internal } }]
`,
    );
    expect((JSON.parse((await get(g, '/b/1', { host: 'shop.example.com' })).text) as EchoBody).name).toBe(
      'b',
    );
    expect((JSON.parse((await get(g, '/x', { host: 'SHOP.example.com:8080' })).text) as EchoBody).name).toBe(
      'a',
    );
    expect((await get(g, '/x', { host: 'other.example.com' })).status).toBe(404);
  });

  it('VS-20 weights 80/20 over 1000 requests stay within 4 sigma of the binomial mean', async () => {
    const a = await echo('a');
    const b = await echo('b');
    const g = await gateway(
      GATEWAY +
        staticEntry('a', 'a.internal', [a.port]) +
        staticEntry('b', 'b.internal', [b.port]) +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: split, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route:
        - { destination: { host: a.internal }, weight: 80 }
        - { destination: { host: b.internal }, weight: 20 }
`,
    );
    const n = 1000;
    for (let i = 0; i < n; i++) await get(g, '/');
    const toA = a.seen.length;
    expect(toA + b.seen.length).toBe(n);
    // mean 800, sigma = sqrt(1000 · 0.8 · 0.2) ≈ 12.6; 4 sigma ≈ 51
    expect(Math.abs(toA - 800)).toBeLessThanOrEqual(51);
  });

  it('VS-23 default retries skip a refused endpoint (skip previous hosts)', async () => {
    const live = await echo('live');
    const dead = await closedPort();
    const g = await gateway(
      GATEWAY +
        staticEntry('mixed', 'mixed.internal', [dead, live.port]) +
        `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: mixed, namespace: default }
spec:
  host: mixed.internal
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: mixed.internal } }]
`,
    );
    for (let i = 0; i < 10; i++) {
      const r = await get(g, '/');
      expect(r.status).toBe(200);
      // A request body not yet sent to the refused endpoint is still there for the retry.
      const p = await request(g.url('/post'), { method: 'POST', body: `payload-${i}` });
      expect(p.statusCode).toBe(200);
      expect((JSON.parse(await p.body.text()) as EchoBody).body).toBe(`payload-${i}`);
    }
    const attempts = live.seen.map((s) => s.headers['x-envoy-attempt-count']);
    expect(attempts).toContain('2');
  });

  it('VS-23 attempts: 0 disables retries → 503 UF from the refused endpoint', async () => {
    const dead = await closedPort();
    const g = await gateway(
      GATEWAY +
        staticEntry('dead', 'dead.internal', [dead]) +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: dead.internal } }]
      retries: { attempts: 0 }
`,
    );
    const r = await get(g, '/');
    expect(r.status).toBe(503);
    expect(r.text).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: remote connection failure',
    );
  });

  it('VS-24 retryOn 5xx retries an upstream 503 and returns the next answer', async () => {
    let n = 0;
    const flaky = await echo('flaky', {
      handle: (_req, res) => {
        n += 1;
        res.writeHead(n === 1 ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(n === 1 ? 'busy' : 'fine');
      },
    });
    const g = await gateway(
      GATEWAY +
        staticEntry('flaky', 'flaky.internal', [flaky.port]) +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: flaky.internal } }]
      retries: { attempts: 2, retryOn: 5xx }
`,
    );
    const r = await get(g, '/');
    expect(r.status).toBe(200);
    expect(r.text).toBe('fine');
    expect(flaky.seen.map((s) => s.headers['x-envoy-attempt-count'])).toEqual(['1', '2']);
  });

  it('VS-22 timeout from YAML → 504 UT', async () => {
    const slow = await echo('slow', { delayMs: 1500 });
    const g = await gateway(
      GATEWAY +
        staticEntry('slow', 'slow.internal', [slow.port]) +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: slow.internal } }]
      timeout: 200ms
`,
    );
    const r = await get(g, '/');
    expect(r.status).toBe(504);
    expect(r.text).toBe('upstream request timeout');
  });

  it('SE-2 DNS resolution: endpoints named by DNS are resolved and used', async () => {
    const u = await echo('dns');
    const g = await gateway(
      GATEWAY +
        `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: dns, namespace: default }
spec:
  hosts: [dns.internal]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
  endpoints:
    - { address: localhost, ports: { http: ${u.port} } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: dns.internal } }]
`,
    );
    const r = await get(g, '/d');
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as EchoBody).name).toBe('dns');
  });

  it('an unknown destination host that does not resolve → 503 UH (sluice resolves it; Istio gives 503 NC)', async () => {
    const g = await gateway(
      GATEWAY +
        `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
    - route: [{ destination: { host: nowhere.internal } }]
`,
    );
    const r = await get(g, '/');
    expect(r.status).toBe(503);
    expect(r.text).toBe('no healthy upstream');
  });
});

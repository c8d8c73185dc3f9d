/**
 * VirtualServices bound to `mesh` apply to proxied HTTP requests (issue 13 item 2), as a
 * sidecar's outbound routes do: rewrites, header operations, timeouts, retries, and Istio's
 * egress TLS origination (the app sends plain HTTP to port 80, the rule targets port 443, a
 * DestinationRule says SIMPLE). Real clients (curl -x) to real loopback servers.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  curl,
  serviceEntryYaml,
  startEgressProxy,
  statusVia,
  type EgressProxy,
} from '../support/egress-proxy.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { startTlsUpstream, secretYaml, type TlsUpstream } from '../support/tls-upstream.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

let plain: Upstream;
let slow: Upstream;
let flaky: Upstream;
let secure: TlsUpstream;
let flakyCalls = 0;

beforeAll(async () => {
  plain = await startEcho({ name: 'plain' });
  slow = await startEcho({ name: 'slow', delayMs: 3000 });
  flaky = await startEcho({
    name: 'flaky',
    handle: (_req, res) => {
      flakyCalls += 1;
      res.writeHead(flakyCalls % 2 === 1 ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(flakyCalls % 2 === 1 ? 'unavailable' : 'second try');
    },
  });
  secure = await startTlsUpstream({
    cert: {
      certPem: rsaLeaf(['api.example.test']).certPem + testCa().certPem,
      keyPem: rsaLeaf(['api.example.test']).keyPem,
    },
  });
  return async () => {
    await Promise.all([plain.close(), slow.close(), flaky.close(), secure.close()]);
  };
});

function yaml(): string {
  const entries = [
    serviceEntryYaml({
      name: 'api',
      hosts: ['api.example.test'],
      resolution: 'STATIC',
      endpoints: ['127.0.0.1'],
      ports: [
        [80, 'http', 'HTTP', plain.port],
        [443, 'https', 'HTTPS', secure.port],
      ],
    }),
    serviceEntryYaml({
      name: 'slow',
      hosts: ['slow.example.test'],
      resolution: 'STATIC',
      endpoints: ['127.0.0.1'],
      ports: [[80, 'http', 'HTTP', slow.port]],
    }),
    serviceEntryYaml({
      name: 'flaky',
      hosts: ['flaky.example.test'],
      resolution: 'STATIC',
      endpoints: ['127.0.0.1'],
      ports: [[80, 'http', 'HTTP', flaky.port]],
    }),
    serviceEntryYaml({
      name: 'only',
      hosts: ['only.example.test'],
      resolution: 'STATIC',
      endpoints: ['127.0.0.1'],
      ports: [[80, 'http', 'HTTP', plain.port]],
    }),
  ];
  return `${entries.join('---\n')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: default }
spec:
  hosts: [api.example.test]
  http:
    - match: [{ uri: { prefix: /old } }]
      rewrite: { uri: /new }
      headers: { request: { set: { x-egress: mesh-rule } } }
      route: [{ destination: { host: api.example.test, port: { number: 80 } } }]
    - match: [{ uri: { prefix: /secure } }]
      route: [{ destination: { host: api.example.test, port: { number: 443 } } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: slow, namespace: default }
spec:
  hosts: [slow.example.test]
  gateways: [mesh]
  http: [{ timeout: 0.2s, route: [{ destination: { host: slow.example.test } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: flaky, namespace: default }
spec:
  hosts: [flaky.example.test]
  http:
    - retries: { attempts: 2, retryOn: 5xx }
      route: [{ destination: { host: flaky.example.test } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: only, namespace: default }
spec:
  hosts: [only.example.test]
  gateways: [sluice-egress-proxy]
  http:
    - match: [{ uri: { prefix: /tagged }, gateways: [sluice-egress-proxy] }]
      headers: { request: { set: { x-bound: egress-proxy } } }
      route: [{ destination: { host: only.example.test } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: default }
spec:
  host: api.example.test
  trafficPolicy:
    portLevelSettings:
      - port: { number: 443 }
        tls: { mode: SIMPLE, credentialName: backend-ca }
---
${secretYaml('backend-ca', { 'ca.crt': testCa().certPem })}`;
}

let started: EgressProxy | null = null;
afterEach(async () => {
  await started?.gw.close();
  started = null;
});

async function proxy(): Promise<{ p: EgressProxy; routed: RequestContext[] }> {
  const routed: RequestContext[] = [];
  started = await startEgressProxy(yaml(), () => undefined, {}, { onRequestDone: (ctx) => routed.push(ctx) });
  return { p: started, routed };
}

describe('egress proxy: VirtualServices bound to mesh', () => {
  it('rewrite and request headers of the matching rule apply', async () => {
    const { p, routed } = await proxy();
    const r = await curl(['-x', p.proxy, 'http://api.example.test/old/x?q=1']);
    const body = JSON.parse(r.stdout) as { name: string; url: string; headers: Record<string, string> };
    expect(body).toMatchObject({ name: 'plain', url: '/new/x?q=1' });
    expect(body.headers['x-egress']).toBe('mesh-rule');
    expect(body.headers['host']).toBe('api.example.test');
    expect(routed.map((c) => c.route?.name)).toEqual(['default.api.0.0']);
    expect(routed[0]!.clusterName).toBe('outbound|80||api.example.test');
  });

  it("TLS origination: plain HTTP in, HTTPS out to port 443, verified against the DestinationRule's CA", async () => {
    const { p } = await proxy();
    const before = secure.seen.length;
    const r = await curl(['-x', p.proxy, 'http://api.example.test/secure']);
    expect(r.stdout).toBe('tls ok');
    expect(secure.seen.slice(before)).toEqual([
      { servername: 'api.example.test', clientCn: '', host: 'api.example.test' },
    ]);
  });

  it('the route timeout answers 504 UT', async () => {
    const { p, routed } = await proxy();
    const r = await statusVia(p.proxy, 'http://slow.example.test/');
    expect(r).toBe('504');
    expect(routed[0]!.responseFlags).toBe('UT');
  });

  it('retries of the rule run: a 503 then a 200 reaches the client as 200', async () => {
    const { p, routed } = await proxy();
    const before = flakyCalls;
    const r = await curl(['-x', p.proxy, 'http://flaky.example.test/']);
    expect(r.stdout).toBe('second try');
    expect(flakyCalls - before).toBe(2);
    expect(routed[0]!.attempts).toBe(2);
  });

  it('rules bound to the reserved name sluice-egress-proxy apply to proxied requests (a sluice addition)', async () => {
    const { p, routed } = await proxy();
    const r = await curl(['-x', p.proxy, 'http://only.example.test/tagged']);
    const body = JSON.parse(r.stdout) as { headers: Record<string, string> };
    expect(body.headers['x-bound']).toBe('egress-proxy');
    expect(routed.map((c) => c.route?.name)).toEqual(['default.only.0.0']);
  });

  it('a host no mesh VirtualService names is forwarded directly; the allowlist still decides first', async () => {
    const { p, routed } = await proxy();
    const denied = await statusVia(p.proxy, 'http://other.example.test/');
    expect(denied).toBe('403');
    const wrongPort = await statusVia(p.proxy, 'http://slow.example.test:8080/');
    expect(wrongPort).toBe('403');
    expect(routed).toEqual([]);
  });
});

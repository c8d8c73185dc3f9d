/**
 * The egress proxy as a sidecar's outbound side (issue 13): a host a ServiceEntry names exactly
 * is its own cluster for proxied HTTP, so its DestinationRule applies with no VirtualService
 * (Istio's "egress TLS origination" task: plain HTTP to port 80, TLS to 443), the entry's
 * `subjectAltNames` are checked as Istio checks them (a DestinationRule's own list wins; with
 * neither `sni` nor a list of its own, Envoy's auto SAN validation checks the Host instead),
 * endpoint weights split traffic and endpoint labels make subsets. DNS on the direct path keeps
 * an answer for its TTL, and the address checked is always the one connected to.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import {
  curl,
  get,
  openTunnel,
  PROXY_PORT,
  rawRequest,
  serviceEntryYaml,
  startEgressProxy,
  statusVia,
  type Answers,
  type EgressProxy,
} from '../support/egress-proxy.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { secretYaml, startTlsUpstream, type TlsUpstream } from '../support/tls-upstream.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

let secure: TlsUpstream;
let one: Upstream;
let three: Upstream;

beforeAll(async () => {
  const leaf = rsaLeaf(['api.example.test']);
  secure = await startTlsUpstream({
    cert: { certPem: leaf.certPem + testCa().certPem, keyPem: leaf.keyPem },
  });
  one = await startEcho({ name: 'one' });
  three = await startEcho({ name: 'three' });
  return async () => {
    await Promise.all([secure.close(), one.close(), three.close()]);
  };
});

let started: EgressProxy | null = null;
afterEach(async () => {
  await started?.gw.close();
  started = null;
});

/** An entry whose port 80 (HTTP) is the TLS upstream, with `subjectAltNames` when given. */
function tlsEntry(name: string, sans: readonly string[] = []): string {
  const se = serviceEntryYaml({
    name,
    hosts: [`${name}.example.test`],
    resolution: 'STATIC',
    endpoints: ['127.0.0.1'],
    ports: [[80, 'http', 'HTTP', secure.port]],
  });
  return sans.length === 0 ? se : `${se}  subjectAltNames: ${JSON.stringify(sans)}\n`;
}

/** SIMPLE TLS on port 80, verified against the test CA, with the rule's extra `tls` fields. */
function originate(name: string, tls = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: default }
spec:
  host: ${name}.example.test
  trafficPolicy:
    portLevelSettings:
      - port: { number: 80 }
        tls: { mode: SIMPLE, credentialName: backend-ca${tls} }
`;
}

function tlsYaml(): string {
  return [
    tlsEntry('api'),
    originate('api'),
    tlsEntry('pinned', ['api.example.test']),
    originate('pinned', ', sni: api.example.test'),
    tlsEntry('mismatch', ['other.example.test']),
    originate('mismatch', ', sni: api.example.test'),
    tlsEntry('override', ['other.example.test']),
    originate('override', ', sni: api.example.test, subjectAltNames: [api.example.test]'),
    tlsEntry('auto', ['api.example.test']),
    originate('auto'),
    secretYaml('backend-ca', { 'ca.crt': testCa().certPem }),
  ].join('---\n');
}

function weightedYaml(): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: weighted, namespace: default }
spec:
  hosts: [weighted.example.test, labelled.example.test]
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints:
    - { address: 127.0.0.1, ports: { http: ${one.port} }, weight: 1, labels: { version: v1 } }
    - { address: 127.0.0.1, ports: { http: ${three.port} }, weight: 3, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: weighted, namespace: default }
spec:
  host: weighted.example.test
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: labelled, namespace: default }
spec:
  host: labelled.example.test
  subsets: [{ name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: labelled, namespace: default }
spec:
  hosts: [labelled.example.test]
  http: [{ route: [{ destination: { host: labelled.example.test, subset: v2 } }] }]
`;
}

async function proxy(
  yaml: string,
  answers: Answers = () => undefined,
  tuning: { connectTimeoutMs?: number } = {},
): Promise<{ p: EgressProxy; routed: RequestContext[] }> {
  const routed: RequestContext[] = [];
  started = await startEgressProxy(yaml, answers, tuning, { onRequestDone: (ctx) => routed.push(ctx) });
  return { p: started, routed };
}

describe('egress proxy: DestinationRules of ServiceEntry hosts apply without a VirtualService', () => {
  it('TLS origination: plain HTTP to port 80 leaves as TLS, verified against the rule’s CA', async () => {
    const { p, routed } = await proxy(tlsYaml());
    const before = secure.seen.length;
    const r = await curl(['-x', p.proxy, 'http://api.example.test/']);
    expect(r.stdout).toBe('tls ok');
    expect(secure.seen.slice(before)).toEqual([
      { servername: 'api.example.test', clientCn: '', host: 'api.example.test' },
    ]);
    expect(routed.map((c) => [c.route?.name, c.clusterName])).toEqual([
      ['default', 'outbound|80||api.example.test'],
    ]);
  });

  it('ServiceEntry subjectAltNames: checked when the rule sets sni and no list of its own', async () => {
    const { p, routed } = await proxy(tlsYaml());
    expect(await statusVia(p.proxy, 'http://pinned.example.test/')).toBe('200');
    expect(await statusVia(p.proxy, 'http://mismatch.example.test/')).toBe('503');
    const refused = routed.find((c) => c.status === 503);
    // The sidecar's default route retries a connect failure (VS-23): UF on each attempt.
    expect(refused?.responseFlags).toBe('UF,URX');
    expect(refused?.transportFailureReason).toContain('verify SAN list');
  });

  it('the rule’s subjectAltNames win over the entry’s; without sni the Host is checked (auto SAN)', async () => {
    const { p } = await proxy(tlsYaml());
    expect(await statusVia(p.proxy, 'http://override.example.test/')).toBe('200');
    // Envoy's auto SAN validation replaces the configured list: the certificate does not name
    // auto.example.test, so the entry's (matching) api.example.test does not help.
    expect(await statusVia(p.proxy, 'http://auto.example.test/')).toBe('503');
  });
});

describe('egress proxy: ServiceEntry endpoint weight and labels', () => {
  it('weights split proxied requests 1:3 (ROUND_ROBIN from the DestinationRule)', async () => {
    const { p } = await proxy(weightedYaml());
    const b1 = one.seen.length;
    const b3 = three.seen.length;
    for (let i = 0; i < 40; i++)
      expect(await statusVia(p.proxy, 'http://weighted.example.test/')).toBe('200');
    expect([one.seen.length - b1, three.seen.length - b3]).toEqual([10, 30]);
  });

  it('endpoint labels make DestinationRule subsets: the v2 subset reaches only the v2 endpoint', async () => {
    const { p } = await proxy(weightedYaml());
    const b1 = one.seen.length;
    const b3 = three.seen.length;
    for (let i = 0; i < 8; i++) expect(await statusVia(p.proxy, 'http://labelled.example.test/')).toBe('200');
    expect([one.seen.length - b1, three.seen.length - b3]).toEqual([0, 8]);
  });
});

describe('egress proxy: endpoint weights for tunnels', () => {
  it('CONNECT tunnels pick an endpoint in proportion to its weight (1:99)', async () => {
    // Two TCP services that say who they are and close.
    const servers = await Promise.all(
      ['light', 'heavy'].map(async (name) => {
        const server = createServer((s) => s.end(name));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return { server, port: (server.address() as { port: number }).port };
      }),
    );
    try {
      const { p } = await proxy(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.test]
  resolution: STATIC
  ports: [{ number: 5432, name: tcp-db, protocol: TCP }]
  endpoints:
    - { address: 127.0.0.1, ports: { tcp-db: ${servers[0]!.port} }, weight: 1 }
    - { address: 127.0.0.1, ports: { tcp-db: ${servers[1]!.port} }, weight: 99 }
`);
      const seen: string[] = [];
      for (let i = 0; i < 20; i++) {
        const t = await openTunnel(p.port, 'db.example.test:5432');
        expect(t.status).toBe(200);
        seen.push(
          await new Promise<string>((resolve) => {
            let text = '';
            t.socket.on('data', (c: Buffer) => (text += c.toString())).resume();
            t.socket.once('close', () => resolve(text));
          }),
        );
      }
      // At random, 1 in 100: six or more light picks in 20 would be under one in a billion.
      expect(seen.filter((s) => s === 'heavy').length).toBeGreaterThanOrEqual(15);
      expect(seen.every((s) => s === 'heavy' || s === 'light')).toBe(true);
    } finally {
      for (const s of servers) s.server.close();
    }
  });
});

describe('egress proxy: DNS on the direct path', () => {
  const wildcard = serviceEntryYaml({
    name: 'wild',
    hosts: ['*.ttl.example.test'],
    resolution: 'NONE',
    ports: [[80, 'http', 'HTTP', 80]],
  });

  it('an answer is used for its TTL, then asked again; each answer is checked before it is connected to', async () => {
    // First a public address for 1 s (TEST-NET-1: allowed, unreachable), then loopback.
    const answers: Answers = (name, n) =>
      name === 'a.ttl.example.test' ? [{ address: n === 1 ? '192.0.2.1' : '127.0.0.1', ttl: 1 }] : undefined;
    const { p } = await proxy(wildcard, answers, { connectTimeoutMs: 200 });
    const port = p.gw.port(PROXY_PORT);
    const first = await rawRequest(port, get('http://a.ttl.example.test/'));
    expect(first.status).toBe(503);
    expect(p.done.at(-1)?.upstreamHost?.hostPort).toBe('192.0.2.1:80');
    const started = Date.now();
    const again = await rawRequest(port, get('http://a.ttl.example.test/'));
    expect(again.status).toBe(503);
    // Within the TTL: not asked again.
    expect(p.asked).toEqual(['a.ttl.example.test']);
    const refused = await until(
      async () => {
        const r = await rawRequest(port, get('http://a.ttl.example.test/'));
        return r.status === 403 ? r : null;
      },
      { timeoutMs: 5000, intervalMs: 100, what: 'the second answer' },
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(refused!.body).toContain('[internal_address]');
    expect(p.asked).toEqual(['a.ttl.example.test', 'a.ttl.example.test']);
  });
});

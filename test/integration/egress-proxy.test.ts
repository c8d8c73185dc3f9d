/**
 * The egress forward proxy (issue 13): real clients (curl -x, undici ProxyAgent and
 * EnvHttpProxyAgent) through sluice to "external" HTTP and HTTPS servers on loopback with their
 * own CA. Names resolve through a resolver the test injects, so what each name resolves to (and
 * how often it is asked) is the test's to decide: rebinding is really exercised.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect as tlsConnect } from 'node:tls';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EnvHttpProxyAgent, Pool, ProxyAgent, fetch } from 'undici';
import {
  curl,
  get,
  openTunnel,
  PROXY_PORT,
  rawRequest,
  serviceEntryYaml,
  startEgressProxy,
  type Answers,
  type EgressProxy,
} from '../support/egress-proxy.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { startTlsUpstream, type TlsUpstream } from '../support/tls-upstream.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import { until } from '../support/until.ts';
import { snapshotFromYaml, TEST_IDENTITY } from '../support/gateway.ts';
import { AD_HOC_DNS_NAMES, dnsCacheSizesForTests } from '../../src/upstream/dns.ts';

let http: Upstream;
let https: TlsUpstream;
let caFile: string;

beforeAll(async () => {
  http = await startEcho({ name: 'external-http' });
  https = await startTlsUpstream({ cert: rsaLeaf(['api.example.test']) });
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-egress-'));
  caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, testCa().certPem);
  return async () => {
    await http.close();
    await https.close();
  };
});

function registry(extra = ''): string {
  return (
    [
      serviceEntryYaml({
        name: 'plain',
        hosts: ['plain.example.test'],
        resolution: 'DNS',
        ports: [[80, 'http', 'HTTP', http.port]],
      }),
      serviceEntryYaml({
        name: 'api',
        hosts: ['api.example.test'],
        resolution: 'DNS',
        ports: [[443, 'https', 'HTTPS', https.port]],
      }),
      serviceEntryYaml({
        name: 'wild',
        hosts: ['*.wild.example.test'],
        resolution: 'DYNAMIC_DNS',
        ports: [[80, 'http', 'HTTP', http.port]],
      }),
      serviceEntryYaml({
        name: 'on-prem',
        hosts: ['onprem.example.test'],
        resolution: 'STATIC',
        addresses: ['127.0.0.1'],
        endpoints: ['127.0.0.1'],
        ports: [[80, 'http', 'HTTP', http.port]],
      }),
    ].join('---\n') + extra
  );
}

/** MeshConfig letting names no ServiceEntry lists out (never into internal space). */
const ALLOW_ANY = `---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  outboundTrafficPolicy: { mode: ALLOW_ANY }
`;

let started: EgressProxy | null = null;
afterEach(async () => {
  await started?.gw.close();
  started = null;
});

/** Names the injected resolver knows; anything else does not resolve. */
const DEFAULT_ANSWERS: Record<string, string[]> = {
  'plain.example.test': ['127.0.0.1'],
  'api.example.test': ['127.0.0.1'],
  'forbidden.example.test': ['127.0.0.1'],
  'a.wild.example.test': ['127.0.0.1'],
  'unlisted.example.test': ['127.0.0.1'],
};

async function startProxy(
  yaml: string,
  answers: Answers = (name) => DEFAULT_ANSWERS[name],
  tuning: { connectTimeoutMs?: number } = {},
): Promise<EgressProxy> {
  started = await startEgressProxy(yaml, answers, tuning);
  return started;
}

describe('egress proxy: allowed destinations pass', () => {
  it('curl -x: an absolute-form HTTP request to a ServiceEntry host reaches it, Host unchanged', async () => {
    const p = await startProxy(registry());
    const before = http.seen.length;
    const r = await curl(['-x', p.proxy, 'http://plain.example.test/hello?x=1']);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout) as { url: string; headers: Record<string, string> };
    expect(body.url).toBe('/hello?x=1');
    expect(body.headers['host']).toBe('plain.example.test');
    expect(body.headers['proxy-connection']).toBeUndefined();
    expect(http.seen.length).toBe(before + 1);
    // A sidecar's DNS cluster: resolved as the config was applied, not per request.
    expect(p.warmed).toContain('plain.example.test');
    expect(p.asked).toEqual([]);
  });

  it('curl -x over CONNECT (https): the tunnelled TLS session verifies against the external CA', async () => {
    const p = await startProxy(registry());
    const before = https.seen.length;
    const r = await curl(['-x', p.proxy, '--cacert', caFile, 'https://api.example.test/']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('tls ok');
    expect(https.seen.slice(before).map((s) => s.servername)).toEqual(['api.example.test']);
  });

  it('undici ProxyAgent: fetch over HTTPS and HTTP through the proxy', async () => {
    const p = await startProxy(registry());
    const agent = new ProxyAgent({ uri: p.proxy, requestTls: { ca: testCa().certPem } });
    try {
      const a = await fetch('https://api.example.test/', { dispatcher: agent });
      expect(a.status).toBe(200);
      expect(await a.text()).toBe('tls ok');
      const b = await fetch('http://plain.example.test/via-undici', { dispatcher: agent });
      expect(b.status).toBe(200);
      expect(((await b.json()) as { url: string }).url).toBe('/via-undici');
    } finally {
      await agent.close();
    }
  });

  it("HTTPS_PROXY / HTTP_PROXY as Node clients read them (undici's EnvHttpProxyAgent)", async () => {
    const p = await startProxy(registry());
    const agent = new EnvHttpProxyAgent({
      httpProxy: p.proxy,
      httpsProxy: p.proxy,
      requestTls: { ca: testCa().certPem },
    });
    try {
      const a = await fetch('https://api.example.test/env', { dispatcher: agent });
      expect(await a.text()).toBe('tls ok');
      const before = https.seen.length;
      const blocked = await fetch('https://forbidden.example.test/', { dispatcher: agent }).then(
        () => 'reached',
        () => 'refused',
      );
      expect(blocked).toBe('refused');
      expect(https.seen.length).toBe(before);
      expect(p.ledger.entries().map((e) => `${e.host}:${e.port} ${e.reason}`)).toEqual([
        'forbidden.example.test:443 not_in_registry',
      ]);
    } finally {
      await agent.close();
    }
  });

  it('STATIC endpoints and a canonical IP literal a ServiceEntry names are allowed (on-prem in private space)', async () => {
    const p = await startProxy(registry());
    const port = p.gw.port(PROXY_PORT);
    expect((await rawRequest(port, get('http://onprem.example.test/a'))).status).toBe(200);
    expect((await rawRequest(port, get('http://127.0.0.1/b'))).status).toBe(200);
    // Neither was resolved: the entry names its addresses.
    expect(p.asked).toEqual([]);
  });

  it('headers a Connection header nominates stop at the proxy both ways, however it is written', async () => {
    const up = await startEcho({
      name: 'nominating',
      headers: {
        connection: ['keep-alive, X-Up-A', ' ,x-up-b'],
        'x-up-a': 'a',
        'x-up-b': 'b',
        'x-up-kept': 'k',
      },
    });
    try {
      const p = await startProxy(
        registry(
          '---\n' +
            serviceEntryYaml({
              name: 'nominating',
              hosts: ['nominating.example.test'],
              resolution: 'STATIC',
              addresses: ['127.0.0.1'],
              endpoints: ['127.0.0.1'],
              ports: [[81, 'http', 'HTTP', up.port]],
            }),
        ),
      );
      // By name through the mesh routes (the gateway's forwarding), and to the address the entry
      // names (the proxy's own).
      for (const authority of ['nominating.example.test:81', '127.0.0.1:81']) {
        const s = connect(p.gw.port(PROXY_PORT), '127.0.0.1');
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        const closed = new Promise((resolve) => s.once('close', resolve));
        const before = up.seen.length;
        s.write(
          `GET http://${authority}/ HTTP/1.1\r\nhost: ${authority}\r\n` +
            'Connection: X-One\r\nconnection: close, , x-TWO \r\nx-one: 1\r\nX-Two: 2\r\nx-kept: 3\r\n\r\n',
        );
        await closed;
        const text = Buffer.concat(chunks).toString('latin1');
        const head = text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase();
        expect(head).toMatch(/^http\/1\.1 200 /);
        expect(head).toContain('\r\nx-up-kept: k');
        expect(head).not.toContain('x-up-a');
        expect(head).not.toContain('x-up-b');
        expect(up.seen.length).toBe(before + 1);
        const seen = up.seen.at(-1)!.headers;
        expect(seen['x-kept']).toBe('3');
        expect(seen['x-one']).toBeUndefined();
        expect(seen['x-two']).toBeUndefined();
      }
      // Only the proxy's own forwarding finishes here; the routed one finishes as Gateway requests do.
      expect(p.done.map((d) => [d.clusterName, d.upstreamHost?.hostPort, d.attempts])).toEqual([
        ['outbound|81||127.0.0.1', `127.0.0.1:${up.port}`, 1],
      ]);
    } finally {
      await up.close();
    }
  });

  it('names are normalised once: upper case and one trailing dot match the entry', async () => {
    const p = await startProxy(registry());
    const before = http.seen.length;
    const r = await rawRequest(
      p.gw.port(PROXY_PORT),
      get('http://PLAIN.Example.TEST./n', 'plain.example.test'),
    );
    expect(r.status).toBe(200);
    expect(http.seen.length).toBe(before + 1);
  });
});

describe('egress proxy: everything else is blocked with a 403 naming host, port and reason', () => {
  it('curl -x to a host no ServiceEntry names: 403, nothing reached, access-logged and counted', async () => {
    const p = await startProxy(registry());
    const before = http.seen.length;
    const r = await curl(['-x', p.proxy, '-w', '%{http_code}', '-o', '-', 'http://evil.example.test/']);
    expect(r.stdout).toContain('evil.example.test:80');
    expect(r.stdout).toContain('not_in_registry');
    expect(r.stdout.endsWith('403')).toBe(true);
    expect(http.seen.length).toBe(before);
    expect(p.asked).toEqual([]);
    const logged = p.done.find((d) => d.status === 403);
    expect(logged?.clusterName).toBe('BlackHoleCluster');
    expect(logged?.responseDetails).toBe('egress_not_in_registry');
    expect(p.ledger.entries()).toEqual([
      { host: 'evil.example.test', port: 80, reason: 'not_in_registry', via: 'http', count: 1, learnt: 0 },
    ]);
  });

  it('CONNECT to a port the entry does not list, or to an unknown host: 403 before any tunnel', async () => {
    const p = await startProxy(registry());
    const port = p.gw.port(PROXY_PORT);
    const a = await rawRequest(
      port,
      'CONNECT api.example.test:8443 HTTP/1.1\r\nhost: api.example.test:8443\r\n\r\n',
    );
    expect(a.status).toBe(403);
    expect(a.body).toContain('api.example.test:8443');
    expect(a.body).toContain('port_not_allowed');
    const b = await curl(['-x', p.proxy, '--cacert', caFile, 'https://forbidden.example.test/']);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/403/);
  });

  it('a tunnel to an allowed name cannot carry a TLS session for a forbidden SNI', async () => {
    const p = await startProxy(registry());
    const before = https.seen.length;
    const t = await openTunnel(p.gw.port(PROXY_PORT), 'api.example.test:443');
    expect(t.status).toBe(200);
    const outcome = await new Promise<string>((resolve) => {
      const tls = tlsConnect({
        socket: t.socket,
        servername: 'forbidden.example.test',
        ca: testCa().certPem,
      });
      tls.on('secureConnect', () => resolve('handshake completed'));
      tls.on('error', () => resolve('refused'));
      tls.on('close', () => resolve('refused'));
    });
    expect(outcome).toBe('refused');
    expect(https.seen.length).toBe(before);
    await until(() => p.ledger.entries().some((e) => e.reason === 'sni_not_allowed'));
    expect(p.ledger.entries()).toContainEqual({
      host: 'forbidden.example.test',
      port: 443,
      reason: 'sni_not_allowed',
      via: 'connect',
      count: 1,
      learnt: 0,
    });
    // The name was never resolved: no upstream connection was attempted for it.
    expect(p.asked).not.toContain('api.example.test');
  });

  it('a tunnel on a TLS port that sends no SNI is closed', async () => {
    const p = await startProxy(registry());
    const t = await openTunnel(p.gw.port(PROXY_PORT), 'api.example.test:443');
    const outcome = await new Promise<string>((resolve) => {
      const tls = tlsConnect({ socket: t.socket, ca: testCa().certPem, rejectUnauthorized: false });
      tls.on('secureConnect', () => resolve('handshake completed'));
      tls.on('error', () => resolve('refused'));
      tls.on('close', () => resolve('refused'));
    });
    expect(outcome).toBe('refused');
    await until(() => p.ledger.entries().some((e) => e.reason === 'no_sni'));
  });

  it.each([
    ['decimal IPv4', 'http://2130706433/'],
    ['octal IPv4', 'http://0177.0.0.1/'],
    ['hex IPv4', 'http://0x7f.0x0.0x0.0x1/'],
    ['short IPv4', 'http://127.1/'],
    ['IPv4 with a leading zero', 'http://127.0.0.01/'],
    ['IPv6 loopback', 'http://[::1]/'],
    ['IPv6-mapped dotted', 'http://[::ffff:127.0.0.1]/'],
    ['IPv6-mapped hex', 'http://[::ffff:7f00:1]/'],
    ['an IP no ServiceEntry names', 'http://127.0.0.2/'],
    ['metadata address', 'http://169.254.169.254/latest/meta-data/'],
  ])('IP literal (%s) is refused', async (_what, target) => {
    const p = await startProxy(registry());
    const before = http.seen.length;
    const r = await rawRequest(p.gw.port(PROXY_PORT), get(target));
    expect(r.status).toBe(403);
    expect(r.body).toContain('[ip_literal]');
    expect(http.seen.length).toBe(before);
  });

  it('userinfo and Host disagreeing with the request target are refused', async () => {
    const p = await startProxy(registry());
    const port = p.gw.port(PROXY_PORT);
    const a = await rawRequest(
      port,
      get('http://plain.example.test@evil.example.test/', 'evil.example.test'),
    );
    expect(a.status).toBe(403);
    expect(a.body).toContain('[userinfo]');
    const b = await rawRequest(port, get('http://plain.example.test/', 'evil.example.test'));
    expect(b.status).toBe(403);
    expect(b.body).toContain('[host_mismatch]');
    const c = await rawRequest(port, get('http://plain.example.test/', 'plain.example.test:8080'));
    expect(c.status).toBe(403);
    const d = await rawRequest(
      port,
      'CONNECT user:pw@api.example.test:443 HTTP/1.1\r\nhost: api.example.test:443\r\n\r\n',
    );
    expect(d.status).toBe(403);
    expect(d.body).toContain('[userinfo]');
    // Node keeps only the first of two Host headers: the proxy still sees both.
    const twice = await rawRequest(
      port,
      'GET http://plain.example.test/ HTTP/1.1\r\nhost: plain.example.test\r\nhost: evil.example.test\r\nconnection: close\r\n\r\n',
    );
    expect(twice.status).toBe(403);
    expect(twice.body).toContain('more than one Host header');
    expect(p.asked).toEqual([]);
  });

  it('a wildcard host that resolves into loopback/private space is refused (SSRF)', async () => {
    const p = await startProxy(registry());
    const before = http.seen.length;
    const r = await rawRequest(p.gw.port(PROXY_PORT), get('http://a.wild.example.test/'));
    expect(r.status).toBe(403);
    expect(r.body).toContain('127.0.0.1');
    expect(r.body).toContain('[internal_address]');
    expect(http.seen.length).toBe(before);
  });

  it('resolves once and connects to that answer: a rebinding second answer is never used', async () => {
    // First answer public (TEST-NET-1, passes the check), every later one loopback.
    const p = await startProxy(
      registry(),
      (name, n) => (name === 'b.wild.example.test' ? (n === 1 ? ['192.0.2.1'] : ['127.0.0.1']) : undefined),
      { connectTimeoutMs: 300 },
    );
    const before = http.seen.length;
    const r = await rawRequest(p.gw.port(PROXY_PORT), get('http://b.wild.example.test/'));
    expect(r.status).toBe(503);
    expect(p.asked).toEqual(['b.wild.example.test']);
    expect(http.seen.length).toBe(before);
    const logged = p.done.find((d) => d.status === 503);
    expect(logged?.upstreamHost?.hostPort).toBe(`192.0.2.1:${http.port}`);
    expect(logged?.responseFlags).toBe('UF');
  });

  it('a request that is not a proxy request, or has a fragment, gets 400', async () => {
    const p = await startProxy(registry());
    const r = await rawRequest(
      p.gw.port(PROXY_PORT),
      'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    );
    expect(r.status).toBe(400);
    const fragment = await rawRequest(
      p.gw.port(PROXY_PORT),
      get('http://plain.example.test/a#frag', 'plain.example.test'),
    );
    expect(fragment.status).toBe(400);
    expect(p.asked).toEqual([]);
  });
});

describe('egress proxy: outboundTrafficPolicy', () => {
  it('ALLOW_ANY lets unlisted names out, but never into internal space, and IP literals stay refused', async () => {
    const p = await startProxy(
      registry(ALLOW_ANY),
      (name) => (name === 'public.example.test' ? ['192.0.2.7'] : DEFAULT_ANSWERS[name]),
      { connectTimeoutMs: 300 },
    );
    const port = p.gw.port(PROXY_PORT);
    const internal = await rawRequest(port, get('http://unlisted.example.test/'));
    expect(internal.status).toBe(403);
    expect(internal.body).toContain('[internal_address]');
    // Allowed: it is connected to (and fails, as TEST-NET-1 is not reachable).
    const out = await rawRequest(port, get('http://public.example.test:8080/'));
    expect(out.status).toBe(503);
    expect(p.done.at(-1)?.upstreamHost?.hostPort).toBe('192.0.2.7:8080');
    const literal = await rawRequest(port, get('http://127.0.0.2/'));
    expect(literal.status).toBe(403);
  });

  it('REGISTRY_ONLY is the default for the proxy even though Istio meshes default to ALLOW_ANY', async () => {
    const p = await startProxy(registry());
    expect(p.gw.gateway.current.get().egress?.mode).toBe('REGISTRY_ONLY');
  });
});

describe('egress proxy: the names clients ask for and the names the config resolves', () => {
  /** Every `*.adhoc.test` name resolves into loopback, so each is resolved, then refused. */
  const answers: Answers = (name) => (name.endsWith('.adhoc.test') ? ['127.0.0.1'] : DEFAULT_ANSWERS[name]);
  const isAdHoc = (name: string): boolean => name.endsWith('.adhoc.test');

  /** GETs for each of `count` new names through the proxy on keep-alive connections: their statuses. */
  async function flood(proxy: string, prefix: string, count: number): Promise<Set<number>> {
    const pool = new Pool(proxy, { connections: 4 });
    try {
      const statuses = await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const host = `${prefix}${i}.adhoc.test`;
          const r = await pool.request({ method: 'GET', path: `http://${host}/`, headers: { host } });
          await r.body.dump();
          return r.statusCode;
        }),
      );
      return new Set(statuses);
    } finally {
      await pool.close();
    }
  }

  it('a client asking for more names than the budget holds cannot push out a ServiceEntry name', async () => {
    const p = await startProxy(registry(ALLOW_ANY), answers);
    const configured = new Set(p.warmed).size;
    expect(p.warmed).toContain('plain.example.test');
    const port = p.gw.port(PROXY_PORT);
    expect((await rawRequest(port, get('http://first.adhoc.test/'))).body).toContain('[internal_address]');

    expect(await flood(p.proxy, 'n', AD_HOC_DNS_NAMES + 50)).toEqual(new Set([403]));
    expect(p.asked.filter(isAdHoc)).toHaveLength(AD_HOC_DNS_NAMES + 51);
    // Bounded: the ad-hoc names fill their budget and no more; the configured ones are all there.
    expect(dnsCacheSizesForTests()).toEqual({ configured, adHoc: AD_HOC_DNS_NAMES });

    const before = http.seen.length;
    expect((await rawRequest(port, get('http://plain.example.test/after-flood'))).status).toBe(200);
    expect(http.seen.length).toBe(before + 1);
    // Answered from the cache: no configured name was asked again.
    expect(p.asked.filter((n) => !isAdHoc(n))).toEqual([]);
    // The oldest ad-hoc name was pushed out: asking for it resolves it again.
    await rawRequest(port, get('http://first.adhoc.test/'));
    expect(p.asked.filter((n) => n === 'first.adhoc.test')).toHaveLength(2);
  });

  it('a reload that drops the ServiceEntry lets its name go to the ad-hoc names', async () => {
    const p = await startProxy(registry(ALLOW_ANY), answers);
    const configured = new Set(p.warmed).size;
    const without = registry(ALLOW_ANY)
      .replace(/name: plain,/, 'name: plain-gone,')
      .replace('hosts: ["plain.example.test"]', 'hosts: ["renamed.example.test"]');
    await p.gw.gateway.apply(snapshotFromYaml(without, { ...TEST_IDENTITY, egressProxyPort: PROXY_PORT }));
    expect(dnsCacheSizesForTests()).toEqual({ configured, adHoc: 1 });
    await flood(p.proxy, 'r', AD_HOC_DNS_NAMES);
    await rawRequest(p.gw.port(PROXY_PORT), get('http://plain.example.test/'));
    expect(p.asked.filter((n) => n === 'plain.example.test')).toHaveLength(1);
  });
});

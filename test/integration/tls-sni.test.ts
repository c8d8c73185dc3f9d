/**
 * Terminated HTTPS (GW-13, GW-14, pain point 1): SNI picks the server and its certificate (exact
 * beats wildcard), no/unknown SNI refused unless a server has host `*`, each server routes with
 * its own table, a Host owned by another server on the port gets 421 (HTTP/1.1 and HTTP/2).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { startEcho, type EchoBody, type Upstream } from '../support/upstreams.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function echo(name: string): Promise<Upstream> {
  const u = await startEcho({ name });
  cleanups.push(() => u.close());
  return u;
}

async function gateway(yaml: string): Promise<TestGateway> {
  const g = await startGatewayFromYaml(yaml);
  cleanups.push(() => g.close());
  return g;
}

function entry(name: string, port: number): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.internal]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
`;
}

function vs(name: string, host: string, gw: string, dest: string): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: ['${host}']
  gateways: [istio-system/${gw}]
  http: [{ route: [{ destination: { host: ${dest}.internal } }] }]
`;
}

function gatewayDoc(
  name: string,
  servers: { hosts: string[]; credential: string; portName: string }[],
): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
${servers
  .map(
    (s) => `    - port: { number: 8443, name: ${s.portName}, protocol: HTTPS }
      hosts: [${s.hosts.map((h) => `'${h}'`).join(', ')}]
      tls: { mode: SIMPLE, credentialName: ${s.credential} }`,
  )
  .join('\n')}
`;
}

interface Handshake {
  readonly ok: boolean;
  readonly cert: X509Certificate | null;
  readonly alpn: string | false | null;
  readonly error: string | null;
}

function handshake(
  port: number,
  servername: string | null,
  alpn: string[] = ['http/1.1'],
): Promise<Handshake> {
  return new Promise((resolve) => {
    const s: TLSSocket = tlsConnect({
      host: '127.0.0.1',
      port,
      ...(servername !== null ? { servername } : {}),
      ca: testCa().certPem,
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
    });
    s.once('secureConnect', () => {
      const cert = s.getPeerX509Certificate() ?? null;
      resolve({ ok: true, cert, alpn: s.alpnProtocol, error: null });
      s.destroy();
    });
    s.once('error', (err: Error) => resolve({ ok: false, cert: null, alpn: null, error: err.message }));
  });
}

function get(
  port: number,
  servername: string,
  host: string,
  path = '/',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, servername, path, headers: { host }, ca: testCa().certPem, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function h2get(
  session: ClientHttp2Session,
  authority: string,
  path = '/',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ':authority': authority });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

/**
 * One Gateway, two HTTPS servers on 8443: `a.example.com` (its own certificate) and
 * `*.example.com` (a wildcard certificate, which also covers a.example.com: the coalescing trap).
 * (Two Gateways with overlapping hosts on one TLS port are IST0145 errors in analysis.)
 */
async function twoServers(): Promise<{ g: TestGateway; port: number }> {
  const a = await echo('a');
  const w = await echo('w');
  const g = await gateway(
    tlsSecretYaml('a-cert', rsaLeaf(['a.example.com'])) +
      '---\n' +
      tlsSecretYaml('wild-cert', rsaLeaf(['*.example.com'])) +
      gatewayDoc('gw', [
        { hosts: ['a.example.com'], credential: 'a-cert', portName: 'https-a' },
        { hosts: ['*.example.com'], credential: 'wild-cert', portName: 'https-w' },
      ]) +
      entry('a', a.port) +
      entry('w', w.port) +
      vs('a', 'a.example.com', 'gw', 'a') +
      vs('w', '*.example.com', 'gw', 'w'),
  );
  return { g, port: g.port(8443) };
}

describe('TLS termination with SNI (GW-13, GW-14)', () => {
  it('GW-14 exact SNI beats the wildcard server and presents its certificate', async () => {
    const { port } = await twoServers();
    const exact = await handshake(port, 'a.example.com');
    expect(exact.ok).toBe(true);
    expect(exact.cert?.subjectAltName).toBe('DNS:a.example.com');
    const wild = await handshake(port, 'b.example.com');
    expect(wild.ok).toBe(true);
    expect(wild.cert?.subjectAltName).toBe('DNS:*.example.com');
    const deep = await handshake(port, 'x.y.example.com');
    expect(deep.cert?.subjectAltName).toBe('DNS:*.example.com');
  });

  it('GW-14 no SNI and an unknown SNI are refused without a `*` server', async () => {
    const { port } = await twoServers();
    expect((await handshake(port, null)).ok).toBe(false);
    expect((await handshake(port, 'other.test')).ok).toBe(false);
    expect((await handshake(port, 'example.com')).ok).toBe(false);
  });

  it('GW-14 a `*` server takes clients without SNI', async () => {
    const u = await echo('star');
    const g = await gateway(
      tlsSecretYaml('star-cert', rsaLeaf(['star.example.net'])) +
        gatewayDoc('gw', [{ hosts: ['*'], credential: 'star-cert', portName: 'https' }]) +
        entry('star', u.port) +
        vs('star', '*', 'gw', 'star'),
    );
    const h = await handshake(g.port(8443), null);
    expect(h.ok).toBe(true);
    expect(h.cert?.subjectAltName).toBe('DNS:star.example.net');
    // ALPN without SNI (curl or h2load against an IP address).
    const h2 = await handshake(g.port(8443), null, ['h2', 'http/1.1']);
    expect(h2.alpn).toBe('h2');
  });

  it('GW-14 each server routes with its own table; a Host another server owns gets 421', async () => {
    const { port } = await twoServers();
    const a = await get(port, 'a.example.com', 'a.example.com', '/x');
    expect(a.status).toBe(200);
    expect((JSON.parse(a.body) as EchoBody).name).toBe('a');
    const w = await get(port, 'b.example.com', 'b.example.com');
    expect((JSON.parse(w.body) as EchoBody).name).toBe('w');
    // The wildcard certificate covers a.example.com, but a.example.com is the other server's.
    const misdirected = await get(port, 'b.example.com', 'a.example.com');
    expect(misdirected.status).toBe(421);
    const back = await get(port, 'a.example.com', 'b.example.com');
    expect(back.status).toBe(421);
  });

  it('GW-14 a Host no server owns gets 404 NR from the chosen server', async () => {
    const { port } = await twoServers();
    expect((await get(port, 'a.example.com', 'nowhere.test')).status).toBe(404);
  });

  it('DP-9 ALPN offers h2; HTTP/2 coalescing onto another server gets 421 (pain point 1)', async () => {
    const { port } = await twoServers();
    const h = await handshake(port, 'b.example.com', ['h2', 'http/1.1']);
    expect(h.alpn).toBe('h2');
    const session = h2connect(`https://b.example.com:${port}`, {
      ca: testCa().certPem,
      servername: 'b.example.com',
      host: '127.0.0.1',
      lookup: (_h, _o, cb) => cb(null, '127.0.0.1', 4),
    } as Parameters<typeof h2connect>[1]);
    cleanups.push(async () => void session.close());
    const ok = await h2get(session, 'b.example.com', '/h2');
    expect(ok.status).toBe(200);
    const body = JSON.parse(ok.body) as EchoBody;
    expect(body.name).toBe('w');
    expect(body.url).toBe('/h2');
    expect(body.rawHeaders.some((n) => n.startsWith(':'))).toBe(false);
    const coalesced = await h2get(session, 'a.example.com', '/');
    expect(coalesced.status).toBe(421);
    const stillOk = await h2get(session, 'c.example.com', '/');
    expect(stillOk.status).toBe(200);
  });
});

describe('TLS 1.2 renegotiation (found by testssl)', () => {
  it('a client-initiated renegotiation is refused and the connection closes, after SNI chose a server', async () => {
    const { port } = await twoServers();
    const s: TLSSocket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'b.example.com',
      ca: testCa().certPem,
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
    });
    const errors: Error[] = [];
    s.on('error', (err: Error) => errors.push(err));
    await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
    expect(s.getProtocol()).toBe('TLSv1.2');
    // The connection works before: one keep-alive request.
    s.write('GET / HTTP/1.1\r\nHost: b.example.com\r\n\r\n');
    await new Promise<void>((r) => s.once('data', () => r()));
    // A refused renegotiation surfaces as a socket error (the callback only reports success).
    let renegotiated = false;
    expect(s.renegotiate({ rejectUnauthorized: false }, (err) => (renegotiated = err == null))).toBe(true);
    await until(() => s.destroyed, { what: 'the connection closed after the refused renegotiation' });
    expect(renegotiated).toBe(false);
    expect(errors.map((e) => e.message).join('; ')).toMatch(/no renegotiation/i);
  });
});

describe('httpsRedirect next to a terminated server (GW-18)', () => {
  it('GW-18 plaintext requests for the host get 301 to https; the HTTPS server serves it', async () => {
    const u = await echo('r');
    const g = await gateway(
      tlsSecretYaml('r-cert', rsaLeaf(['r.example.com'])) +
        `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8080, name: http, protocol: HTTP }
      hosts: [r.example.com]
      tls: { httpsRedirect: true }
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [r.example.com]
      tls: { mode: SIMPLE, credentialName: r-cert }
` +
        entry('r', u.port) +
        vs('r', 'r.example.com', 'gw', 'r'),
    );
    const plain = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: g.port(8080),
          path: '/a?b=1',
          headers: { host: 'r.example.com:8080' },
          agent: false,
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, location: res.headers.location });
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(plain).toEqual({ status: 301, location: 'https://r.example.com:8080/a?b=1' });
    const secure = await get(g.port(8443), 'r.example.com', 'r.example.com', '/a');
    expect(secure.status).toBe(200);
  });
});

describe('ACME hooks of createGateway (issue 5 item 6)', () => {
  it('HTTP-01: a known token is answered before routing on plaintext listeners; others route', async () => {
    const u = await echo('acme');
    const g = await startGatewayFromYaml(
      `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
` +
        entry('acme', u.port) +
        vs('acme', '*', 'gw', 'acme'),
      {
        acme: {
          httpToken: (t: string) => (t === 'tok' ? 'tok.thumbprint' : null),
          alpnContext: () => null,
        },
      },
    );
    cleanups.push(() => g.close());
    const known = await fetch(g.url('/.well-known/acme-challenge/tok'));
    expect(known.status).toBe(200);
    expect(await known.text()).toBe('tok.thumbprint');
    const unknown = await fetch(g.url('/.well-known/acme-challenge/other'));
    expect(((await unknown.json()) as EchoBody).name).toBe('acme');
  });
});

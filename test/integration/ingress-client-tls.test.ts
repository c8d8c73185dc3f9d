/**
 * ingress-nginx's client certificate authentication (auth-tls-secret, auth-tls-verify-client,
 * auth-tls-error-page, auth-tls-pass-certificate-to-upstream) on the Ingress HTTPS listener, with
 * certificates the test makes: per host (SNI) when hosts of different Ingresses share the
 * listener, nginx's 400 or error-page redirect without a certificate, and the ssl-client-*
 * headers the upstream gets.
 */
import { connect as http2Connect } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { makeCa, makeServerCert, type PemPair } from '../../src/tls/self-signed.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';
import type { EchoBody } from '../support/upstreams.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { httpsGet, type HttpsReply } from '../support/tls-client.ts';
import type { TestGateway } from '../support/gateway.ts';
import { compileIngressYaml, ingressYaml, path, useIngressUpstreams } from '../support/ingress.ts';

const bench = useIngressUpstreams(['a', 'b']);

interface Reply extends HttpsReply {
  readonly echo: EchoBody | null;
}

/** GET over TLS with SNI `sni` and Host `host`, optionally presenting `cert`. */
async function get(
  gw: TestGateway,
  sni: string,
  opts: { host?: string; cert?: PemPair; headers?: Record<string, string>; path?: string } = {},
): Promise<Reply> {
  const r = await httpsGet(gw.port(443), sni, {
    path: opts.path ?? '/',
    headers: { host: opts.host ?? sni, ...opts.headers },
    ...(opts.cert !== undefined ? { cert: opts.cert.certPem, key: opts.cert.keyPem } : {}),
  });
  const echo = r.headers['content-type'] === 'application/json' ? (JSON.parse(r.body) as EchoBody) : null;
  return { ...r, echo };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const caSecret = (name: string, caPem: string): string =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: default}\ndata: {ca.crt: ${b64(caPem)}}\n`;
const SERVER = tlsSecretYaml('shared-tls', rsaLeaf(['a.example.com', 'b.example.com']), {
  namespace: 'default',
});
const client = (): PemPair => rsaLeaf(['client-one'], { clientAuth: true });

/** Ingress `a` (host a.example.com) with `annotations`, Ingress `b` without, one tls Secret for both. */
function twoHosts(annotations: Record<string, string>): Promise<TestGateway> {
  const ing = (name: string, ann: Record<string, string>) =>
    ingressYaml({
      name,
      host: `${name}.example.com`,
      annotations: { 'ssl-redirect': 'false', ...ann },
      paths: [path('/', 'Prefix', name)],
      spec: `  tls: [{hosts: [${name}.example.com], secretName: shared-tls}]\n`,
    });
  return bench.start(
    [
      ing('a', { 'auth-tls-secret': 'default/client-ca', ...annotations }),
      ing('b', {}),
      SERVER,
      caSecret('client-ca', testCa().certPem),
    ].join('---\n'),
  );
}

describe('auth-tls-verify-client on (the default)', () => {
  it('answers 400 without a client certificate and lets a verified one through, per SNI host', async () => {
    const gw = await twoHosts({});
    const none = await get(gw, 'a.example.com');
    expect(none.status).toBe(400);
    expect(bench.up.get('a')!.seen).toHaveLength(0);
    const ok = await get(gw, 'a.example.com', {
      cert: client(),
      headers: { 'ssl-client-verify': 'SUCCESS-spoofed', 'ssl-client-subject-dn': 'CN=admin' },
    });
    expect(ok.status).toBe(200);
    expect(ok.echo?.headers['ssl-client-verify']).toBe('SUCCESS');
    expect(ok.echo?.headers['ssl-client-subject-dn']).toContain('CN=client-one');
    expect(ok.echo?.headers['ssl-client-issuer-dn']).toContain('CN=sluice test CA');
    expect(ok.echo?.headers['ssl-client-cert']).toBeUndefined();
    // The other Ingress's host on the same listener asks nothing of clients.
    expect((await get(gw, 'b.example.com')).status).toBe(200);
    // b's SNI does not open a's routes to a client without a certificate.
    const crossed = await get(gw, 'b.example.com', { host: 'a.example.com' });
    expect(crossed.status).not.toBe(200);
    expect(bench.up.get('a')!.seen).toHaveLength(1);
  });

  it('refuses a certificate another CA signed', async () => {
    const other = makeCa({ commonName: 'not trusted' });
    const gw = await twoHosts({});
    const r = await get(gw, 'a.example.com', {
      cert: makeServerCert(other, ['intruder'], { clientAuth: true }),
    });
    expect(r.status === null || r.status === 400).toBe(true);
    expect(bench.up.get('a')!.seen).toHaveLength(0);
  });

  it('auth-tls-error-page sends clients without a certificate there', async () => {
    const gw = await twoHosts({ 'auth-tls-error-page': 'https://help.example.com/cert' });
    const r = await get(gw, 'a.example.com');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('https://help.example.com/cert');
  });

  it('auth-tls-pass-certificate-to-upstream sends the URL-escaped PEM in ssl-client-cert', async () => {
    const gw = await twoHosts({ 'auth-tls-pass-certificate-to-upstream': 'true' });
    const r = await get(gw, 'a.example.com', { cert: client() });
    const sent = r.echo?.headers['ssl-client-cert'];
    expect(typeof sent).toBe('string');
    expect(decodeURIComponent(String(sent)).trim()).toBe(client().certPem.replaceAll('\r\n', '\n').trim());
  });
});

describe("the ssl-client-* headers are the connection's", () => {
  const NAMES = ['ssl-client-verify', 'ssl-client-subject-dn', 'ssl-client-issuer-dn', 'ssl-client-cert'];
  const sslHeaders = (e: EchoBody): Record<string, unknown> =>
    Object.fromEntries(NAMES.map((n) => [n, e.headers[n]]));
  /** What the client spoofs on every request; the connection's headers replace it. */
  const SPOOF = { 'ssl-client-verify': 'SUCCESS', 'ssl-client-subject-dn': 'CN=admin' };

  /** Two GETs on one HTTP/1.1 keep-alive connection presenting `cert`: what the upstream got. */
  async function twoOverHttp1(
    gw: TestGateway,
    cert: PemPair,
  ): Promise<{ echoes: EchoBody[]; connections: number }> {
    const c = new Client(`https://127.0.0.1:${gw.port(443)}`, {
      connect: { servername: 'a.example.com', ca: testCa().certPem, cert: cert.certPem, key: cert.keyPem },
    });
    let connections = 0;
    c.on('connect', () => (connections += 1));
    try {
      const echoes: EchoBody[] = [];
      for (let i = 0; i < 2; i++) {
        const r = await c.request({ method: 'GET', path: '/', headers: { host: 'a.example.com', ...SPOOF } });
        echoes.push((await r.body.json()) as EchoBody);
      }
      return { echoes, connections };
    } finally {
      await c.close();
    }
  }

  /** Two GETs as streams of one HTTP/2 session presenting `cert`. */
  async function twoOverHttp2(gw: TestGateway, cert: PemPair): Promise<EchoBody[]> {
    const session = http2Connect(`https://127.0.0.1:${gw.port(443)}`, {
      servername: 'a.example.com',
      ca: testCa().certPem,
      cert: cert.certPem,
      key: cert.keyPem,
    });
    const one = (): Promise<EchoBody> =>
      new Promise((resolve, reject) => {
        const st = session.request({ ':path': '/', ':authority': 'a.example.com', ...SPOOF });
        const chunks: Buffer[] = [];
        st.on('data', (c: Buffer) => chunks.push(c));
        st.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as EchoBody));
        st.on('error', reject);
        st.end();
      });
    try {
      session.on('error', () => undefined);
      return [await one(), await one()];
    } finally {
      session.close();
    }
  }

  it('every request of a connection gets the same headers; another certificate, its own', async () => {
    const gw = await twoHosts({ 'auth-tls-pass-certificate-to-upstream': 'true' });
    const first = client();
    const second = rsaLeaf(['client-two'], { clientAuth: true });

    const one = await twoOverHttp1(gw, first);
    expect(one.connections).toBe(1);
    const h = sslHeaders(one.echoes[0]!);
    expect(h['ssl-client-verify']).toBe('SUCCESS');
    expect(h['ssl-client-subject-dn']).toContain('CN=client-one');
    expect(decodeURIComponent(String(h['ssl-client-cert'])).trim()).toBe(
      first.certPem.replaceAll('\r\n', '\n').trim(),
    );
    expect(sslHeaders(one.echoes[1]!)).toEqual(h);

    const two = await twoOverHttp1(gw, second);
    expect(two.connections).toBe(1);
    const h2 = sslHeaders(two.echoes[0]!);
    expect(h2['ssl-client-subject-dn']).toContain('CN=client-two');
    expect(h2['ssl-client-issuer-dn']).toBe(h['ssl-client-issuer-dn']);
    expect(decodeURIComponent(String(h2['ssl-client-cert'])).trim()).toBe(
      second.certPem.replaceAll('\r\n', '\n').trim(),
    );
    expect(sslHeaders(two.echoes[1]!)).toEqual(h2);

    // The streams of an HTTP/2 session share its connection, and so its headers.
    const streams = await twoOverHttp2(gw, second);
    expect(sslHeaders(streams[0]!)).toEqual(h2);
    expect(sslHeaders(streams[1]!)).toEqual(h2);
  });
});

describe('auth-tls-verify-client optional', () => {
  it('lets clients without a certificate through with ssl-client-verify NONE', async () => {
    const gw = await twoHosts({ 'auth-tls-verify-client': 'optional' });
    const none = await get(gw, 'a.example.com', { headers: { 'ssl-client-verify': 'SUCCESS' } });
    expect(none.status).toBe(200);
    expect(none.echo?.headers['ssl-client-verify']).toBe('NONE');
    const ok = await get(gw, 'a.example.com', { cert: client() });
    expect(ok.echo?.headers['ssl-client-verify']).toBe('SUCCESS');
  });
});

describe('refused configurations', () => {
  it('refuses a missing CA Secret, and auth-tls-verify-client without auth-tls-secret', () => {
    for (const [annotations, text] of [
      [
        { 'auth-tls-secret': 'default/absent' },
        'Secret default/absent is not in the config or has no ca.crt',
      ],
      [{ 'auth-tls-verify-client': 'on' }, 'without auth-tls-secret there is no CA'],
      [
        { 'auth-tls-secret': 'default/ca', 'auth-tls-match-cn': 'CN=x' },
        'matching the client certificate subject',
      ],
    ] as const) {
      const { diagnostics, snapshot } = compileIngressYaml(
        [
          ingressYaml({ name: 'web', annotations, paths: [path('/', 'Prefix', 'a')] }),
          caSecret('ca', testCa().certPem),
        ].join('---\n'),
      );
      const errors = diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(text);
      expect(snapshot.listeners.size).toBe(0);
    }
  });
});

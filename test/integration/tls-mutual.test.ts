/**
 * TLS modes and parameters (GW-13, GW-15, GW-17): MUTUAL and OPTIONAL_MUTUAL client certificates
 * (CA, subjectAltNames, certificate hash), x-forwarded-client-cert SANITIZE_SET (DP-1), the
 * protocol floor and ceiling (node:tls and `openssl s_client`), and credentialNames with one RSA
 * and one ECDSA certificate chosen by what the client supports.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { startEcho, type EchoBody, type Upstream } from '../support/upstreams.ts';
import { opensslLeaf, rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { makeCa, makeServerCert } from '../../src/tls/self-signed.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const HOST = 'm.example.com';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function setup(tls: string, extraDocs = ''): Promise<{ g: TestGateway; up: Upstream; port: number }> {
  const up = await startEcho({ name: 'up' });
  cleanups.push(() => up.close());
  const g = await startGatewayFromYaml(`
${tlsSecretYaml('m-cert', rsaLeaf([HOST]))}
---
apiVersion: v1
kind: Secret
metadata: { name: m-cert-cacert, namespace: istio-system }
data: { cacert: ${b64(testCa().certPem)} }
${extraDocs}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [${HOST}]
      tls: ${tls}
---
${upstreamRouteYaml(up.port, `[${HOST}]`)}
`);
  cleanups.push(() => g.close());
  return { g, up, port: g.port(8443) };
}

const CLIENT = (): { certPem: string; keyPem: string } =>
  opensslLeaf({
    key: 'ec',
    cn: 'client-a',
    sans: ['URI:spiffe://cluster.local/ns/a/sa/client', 'DNS:client.a'],
    client: true,
  });

interface Outcome {
  readonly status: number | null;
  readonly echo: EchoBody | null;
  readonly error: string | null;
}

function get(
  port: number,
  opts: Partial<ConnectionOptions> & { headers?: Record<string, string> } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const { headers, ...tls } = opts;
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername: HOST,
        path: '/',
        headers: { host: HOST, ...headers },
        ca: testCa().certPem,
        agent: false,
        ...tls,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            echo: res.statusCode === 200 ? (JSON.parse(body) as EchoBody) : null,
            error: null,
          }),
        );
      },
    );
    req.on('error', (err: Error) => resolve({ status: null, echo: null, error: err.message }));
    req.end();
  });
}

function handshakeCert(port: number, opts: ConnectionOptions): Promise<X509Certificate | string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: HOST, ca: testCa().certPem, ...opts });
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate()!);
      s.destroy();
    });
    s.once('error', (err: Error) => resolve(err.message));
  });
}

function sClient(port: number, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const p = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', HOST, ...args],
      { timeout: 5000 },
      (_err, stdout, stderr) => resolve(stdout + stderr),
    );
    p.stdin?.end('');
  });
}

describe('client certificates (GW-13, GW-15, GW-17)', () => {
  it('GW-13 MUTUAL: no client certificate → refused; a CA-signed one → served with XFCC (DP-1)', async () => {
    const { port, up } = await setup('{ mode: MUTUAL, credentialName: m-cert }');
    const none = await get(port);
    expect(none.status).toBeNull();
    const client = CLIENT();
    const ok = await get(port, {
      cert: client.certPem,
      key: client.keyPem,
      headers: { 'x-forwarded-client-cert': 'By=forged' },
    });
    expect(ok.status).toBe(200);
    const xfcc = ok.echo!.headers['x-forwarded-client-cert'] as string;
    const hash = new X509Certificate(client.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
    expect(xfcc).toBe(
      `Hash=${hash};Subject="CN=client-a";URI=spiffe://cluster.local/ns/a/sa/client;DNS=client.a`,
    );
    expect(up.seen.length).toBe(1);
  });

  it('GW-13 MUTUAL: a certificate from another CA is refused', async () => {
    const { port, up } = await setup('{ mode: MUTUAL, credentialName: m-cert }');
    const other = makeCa({ commonName: 'other CA' });
    const stranger = makeServerCert(other, ['stranger'], { clientAuth: true });
    const r = await get(port, { cert: stranger.certPem, key: stranger.keyPem });
    expect(r.status).toBeNull();
    expect(up.seen.length).toBe(0);
  });

  it('GW-13 OPTIONAL_MUTUAL: without a certificate served, client-sent XFCC removed; with one, XFCC set', async () => {
    const { port } = await setup('{ mode: OPTIONAL_MUTUAL, credentialName: m-cert }');
    const anon = await get(port, { headers: { 'x-forwarded-client-cert': 'By=forged' } });
    expect(anon.status).toBe(200);
    expect(anon.echo!.headers['x-forwarded-client-cert']).toBeUndefined();
    const client = CLIENT();
    const withCert = await get(port, { cert: client.certPem, key: client.keyPem });
    expect(withCert.echo!.headers['x-forwarded-client-cert']).toMatch(
      /^Hash=[0-9a-f]{64};Subject="CN=client-a";URI=spiffe:/,
    );
  });

  it('GW-17 subjectAltNames: a client whose SAN is not listed is refused; hash pin admits', async () => {
    const wrong = await setup(
      '{ mode: MUTUAL, credentialName: m-cert, subjectAltNames: [spiffe://cluster.local/ns/b/sa/other] }',
    );
    const client = CLIENT();
    expect((await get(wrong.port, { cert: client.certPem, key: client.keyPem })).status).toBeNull();
    expect(wrong.up.seen.length).toBe(0);
    const hash = new X509Certificate(client.certPem).fingerprint256;
    const pinned = await setup(
      `{ mode: MUTUAL, credentialName: m-cert, verifyCertificateHash: ['${hash}'] }`,
    );
    expect((await get(pinned.port, { cert: client.certPem, key: client.keyPem })).status).toBe(200);
  });

  it('DP-1 a plaintext request never forwards a client-sent XFCC', async () => {
    const up = await startEcho({ name: 'plain' });
    cleanups.push(() => up.close());
    const g = await startGatewayFromYaml(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
---
${upstreamRouteYaml(up.port, `['*']`)}
`);
    cleanups.push(() => g.close());
    const res = await fetch(g.url('/'), { headers: { 'x-forwarded-client-cert': 'Hash=forged' } });
    const echo = (await res.json()) as EchoBody;
    expect(echo.headers['x-forwarded-client-cert']).toBeUndefined();
  });
});

describe('protocol versions and key types (GW-17, GW-15)', () => {
  it('GW-17 default floor TLS 1.2: TLS 1.1 clients are refused (openssl s_client), 1.2 and 1.3 served', async () => {
    const { port } = await setup('{ mode: SIMPLE, credentialName: m-cert }');
    const old = await sClient(port, ['-tls1_1']);
    expect(old).toMatch(/no peer certificate available/);
    const v12 = await sClient(port, ['-tls1_2']);
    expect(v12).toMatch(/TLSv1\.2/);
    expect(v12).toMatch(/Cipher is ECDHE-RSA-AES(128|256)-GCM-SHA(256|384)/);
    expect(await handshakeCert(port, { maxVersion: 'TLSv1.3', minVersion: 'TLSv1.3' })).toBeInstanceOf(
      X509Certificate,
    );
  });

  it('GW-17 minProtocolVersion TLSV1_3 refuses TLS 1.2; maxProtocolVersion TLSV1_2 refuses 1.3-only clients', async () => {
    const floor = await setup('{ mode: SIMPLE, credentialName: m-cert, minProtocolVersion: TLSV1_3 }');
    expect(typeof (await handshakeCert(floor.port, { maxVersion: 'TLSv1.2' }))).toBe('string');
    const ceiling = await setup('{ mode: SIMPLE, credentialName: m-cert, maxProtocolVersion: TLSV1_2 }');
    expect(typeof (await handshakeCert(ceiling.port, { minVersion: 'TLSv1.3' }))).toBe('string');
    expect(await handshakeCert(ceiling.port, { maxVersion: 'TLSv1.2' })).toBeInstanceOf(X509Certificate);
  });

  it('GW-15 credentialNames: one RSA and one ECDSA certificate, chosen by the client', async () => {
    const ec = opensslLeaf({ key: 'ec', cn: HOST, sans: [`DNS:${HOST}`] });
    const { port } = await setup(
      '{ mode: SIMPLE, credentialNames: [m-cert, m-ec] }',
      '---\n' + tlsSecretYaml('m-ec', ec),
    );
    const rsaOnly = await handshakeCert(port, {
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-RSA-AES128-GCM-SHA256',
    });
    if (typeof rsaOnly === 'string') throw new Error(rsaOnly);
    expect((rsaOnly as X509Certificate).publicKey.asymmetricKeyType).toBe('rsa');
    const ecOnly = await handshakeCert(port, {
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
    });
    expect((ecOnly as X509Certificate).publicKey.asymmetricKeyType).toBe('ec');
    const ecSigalgs = await handshakeCert(port, { sigalgs: 'ecdsa_secp256r1_sha256' });
    expect((ecSigalgs as X509Certificate).publicKey.asymmetricKeyType).toBe('ec');
  });
});

describe('AuthorizationPolicy on client certificate identities (AP-5, AP-7)', () => {
  const OTHER = (): { certPem: string; keyPem: string } =>
    opensslLeaf({
      key: 'ec',
      cn: 'client-b',
      sans: ['URI:spiffe://cluster.local/ns/b/sa/other'],
      client: true,
    });
  const POLICIES = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-ns-a, namespace: istio-system }
spec:
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/a/sa/client"] } }]
  - from: [{ source: { namespaces: ["b"] } }]
    when: [{ key: source.serviceAccount, notValues: ["b/other"] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-td, namespace: istio-system }
spec:
  action: DENY
  rules: [{ when: [{ key: source.trustDomain, values: ["evil.example"] }] }]`;

  it('OPTIONAL_MUTUAL: the verified certificate is the principal; without one no principal matches', async () => {
    const { port, up } = await setup('{ mode: OPTIONAL_MUTUAL, credentialName: m-cert }', POLICIES);
    const c = CLIENT();
    const ok = await get(port, { cert: c.certPem, key: c.keyPem });
    expect(ok.status).toBe(200);
    const o = OTHER();
    expect((await get(port, { cert: o.certPem, key: o.keyPem })).status).toBe(403);
    expect((await get(port)).status).toBe(403);
    const evil = opensslLeaf({
      key: 'ec',
      cn: 'e',
      sans: ['URI:spiffe://evil.example/ns/a/sa/client'],
      client: true,
    });
    expect((await get(port, { cert: evil.certPem, key: evil.keyPem })).status).toBe(403);
    expect(up.seen).toHaveLength(1);
  });
});

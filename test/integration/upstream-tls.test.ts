/**
 * TLS origination (issue 11 item 8; DR-8, SE-1): DestinationRule `tls` SIMPLE and MUTUAL against
 * real HTTPS upstreams on loopback with certificates the test makes. The upstream's certificate
 * is checked against the configured CA (or the OS trust store), its names against `sni`/Host or
 * `subjectAltNames`, revocation against a CRL; a failure is 503 UF with Envoy's transport failure
 * reason, and nothing is sent in plain text.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeCa, makeServerCert } from '../../src/tls/self-signed.ts';
import { opensslLeaf, rsaLeaf, testCa } from '../support/certs.ts';
import { makeCrl } from '../support/crl.ts';
import { startRecordingGateway } from '../support/gateway.ts';
import { entryRouteYaml } from '../support/upstream-route.ts';
import { getWithHost, secretYaml, startTlsUpstream, type TlsUpstream } from '../support/tls-upstream.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { loadResources } from '../../src/config/index.ts';
import { compile } from '../../src/compile/index.ts';
import { TEST_IDENTITY } from '../support/gateway.ts';
import { echoClient, startEchoServer, TRAILER, unary } from '../support/grpc.ts';
import { freePort, makeConfigDir } from '../support/ops-config.ts';
import { startServeInProcess } from '../support/serve-in-process.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import path from 'node:path';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const BACKEND = 'backend.example.com';
/** The upstream's certificate: signed by the test CA for BACKEND and api.example.com. */
const SERVER = rsaLeaf([BACKEND, 'api.example.com'], { tag: 'upstream-tls-server' });
const withChain = (p: { certPem: string; keyPem: string }): { certPem: string; keyPem: string } => ({
  certPem: p.certPem + testCa().certPem,
  keyPem: p.keyPem,
});
const VERIFY_FAILED =
  'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end';
const SAN_FAILED =
  'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: verify SAN list:TLS_error_end';

/** Every Host routes to backend.internal (a STATIC ServiceEntry on `port`) with `tls` applied. */
function configYaml(port: number, tls: string, extra = '', se = '', protocol = 'HTTPS'): string {
  return `${entryRouteYaml({
    host: 'backend.internal',
    upstreamPort: port,
    port: { number: 443, name: 'https', protocol },
    entry: se,
  })}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: backend, namespace: default }
spec:
  host: backend.internal
  trafficPolicy:
    tls:
${tls
  .trim()
  .split('\n')
  .map((l) => '      ' + l)
  .join('\n')}
${extra === '' ? '' : '---\n' + extra}`;
}

const caSecret = (caPem: string, crlPem?: string): string =>
  secretYaml('backend-ca', { 'ca.crt': caPem, ...(crlPem !== undefined ? { 'ca.crl': crlPem } : {}) });

async function upstream(opts: Parameters<typeof startTlsUpstream>[0]): Promise<TlsUpstream> {
  const up = await startTlsUpstream(opts);
  cleanups.push(() => up.close());
  return up;
}

async function gateway(yaml: string): Promise<{ port: number; done: RequestContext[] }> {
  const gw = await startRecordingGateway(yaml);
  cleanups.push(() => gw.close());
  return { port: gw.port(), done: gw.done };
}

describe('SIMPLE (DR-8)', () => {
  it('auto SNI: the Host is sent as SNI and checked against the certificate', async () => {
    const up = await upstream({ cert: withChain(SERVER) });
    const { port } = await gateway(
      configYaml(up.port, 'mode: SIMPLE\ncredentialName: backend-ca', caSecret(testCa().certPem)),
    );
    const r = await getWithHost(port, `${BACKEND}:8080`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('tls ok');
    expect(up.seen[0]).toMatchObject({ servername: BACKEND, clientCn: '' });
    // Another name of the certificate: a connection with that SNI (pools are kept per SNI).
    expect((await getWithHost(port, 'api.example.com')).status).toBe(200);
    expect(up.seen.map((s) => s.servername)).toEqual([BACKEND, 'api.example.com']);
  });

  it('auto SAN validation: a Host the certificate does not name is 503 UF, verify SAN list', async () => {
    const up = await upstream({ cert: withChain(SERVER) });
    const { port, done } = await gateway(
      configYaml(up.port, 'mode: SIMPLE\ncredentialName: backend-ca', caSecret(testCa().certPem)),
    );
    const r = await getWithHost(port, 'other.example.com');
    expect(r.status).toBe(503);
    expect(r.body).toBe(
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: ' +
        SAN_FAILED,
    );
    expect(up.seen).toHaveLength(0);
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UF,URX');
    expect(done[0]!.transportFailureReason).toBe(SAN_FAILED);
    expect(done[0]!.responseDetails).toBe(
      'upstream_reset_before_response_started{remote_connection_failure|' +
        SAN_FAILED.replaceAll(' ', '_') +
        '}',
    );
  });

  it('sni set: that name is sent whatever the Host, and with no subjectAltNames no name is checked', async () => {
    const up = await upstream({ cert: withChain(SERVER) });
    const { port } = await gateway(
      configYaml(
        up.port,
        `mode: SIMPLE\ncredentialName: backend-ca\nsni: ${BACKEND}`,
        caSecret(testCa().certPem),
      ),
    );
    expect((await getWithHost(port, 'shop.example.com')).status).toBe(200);
    expect(up.seen[0]).toMatchObject({ servername: BACKEND, host: 'shop.example.com' });
  });

  it('subjectAltNames: the certificate must carry one of them (DNS or URI SAN)', async () => {
    const spiffe = 'spiffe://cluster.local/ns/default/sa/backend';
    const uriLeaf = opensslLeaf({ key: 'ec', cn: 'backend', sans: [`URI:${spiffe}`] });
    const up = await upstream({ cert: withChain(uriLeaf) });
    const wrong = await gateway(
      configYaml(
        up.port,
        `mode: SIMPLE\ncredentialName: backend-ca\nsni: ${BACKEND}\nsubjectAltNames: [wrong.example.com]`,
        caSecret(testCa().certPem),
      ),
    );
    const bad = await getWithHost(wrong.port, BACKEND);
    expect(bad.status).toBe(503);
    expect(bad.body.endsWith(SAN_FAILED)).toBe(true);
    const right = await gateway(
      configYaml(
        up.port,
        `mode: SIMPLE\ncredentialName: backend-ca\nsni: ${BACKEND}\nsubjectAltNames: ['${spiffe}']`,
        caSecret(testCa().certPem),
      ),
    );
    expect((await getWithHost(right.port, BACKEND)).status).toBe(200);
  });

  it("SE-1: a ServiceEntry's subjectAltNames are checked when the rule names none", async () => {
    const up = await upstream({ cert: withChain(SERVER) });
    const se = (sans: string): string => `  subjectAltNames: [${sans}]\n`;
    const tls = `mode: SIMPLE\ncredentialName: backend-ca\nsni: ${BACKEND}`;
    const bad = await gateway(configYaml(up.port, tls, caSecret(testCa().certPem), se('nobody.example.com')));
    expect((await getWithHost(bad.port, BACKEND)).status).toBe(503);
    const good = await gateway(configYaml(up.port, tls, caSecret(testCa().certPem), se(BACKEND)));
    expect((await getWithHost(good.port, BACKEND)).status).toBe(200);
  });

  it('a certificate from another CA is 503 UF CERTIFICATE_VERIFY_FAILED; insecureSkipVerify accepts it', async () => {
    const otherCa = makeCa({ commonName: 'another CA' });
    const foreign = makeServerCert(otherCa, [BACKEND]);
    const up = await upstream({
      cert: { certPem: foreign.certPem + otherCa.certPem, keyPem: foreign.keyPem },
    });
    const { port, done } = await gateway(
      configYaml(up.port, 'mode: SIMPLE\ncredentialName: backend-ca', caSecret(testCa().certPem)),
    );
    const r = await getWithHost(port, BACKEND);
    expect(r.status).toBe(503);
    expect(r.body.endsWith('transport failure reason: ' + VERIFY_FAILED)).toBe(true);
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UF,URX');
    const skip = await gateway(configYaml(up.port, 'mode: SIMPLE\ninsecureSkipVerify: true'));
    expect((await getWithHost(skip.port, BACKEND)).status).toBe(200);
  });

  it('no caCertificates: the OS trust store decides, so a private CA is refused', async () => {
    const up = await upstream({ cert: withChain(SERVER) });
    const { port } = await gateway(configYaml(up.port, 'mode: SIMPLE'));
    const r = await getWithHost(port, BACKEND);
    expect(r.status).toBe(503);
    expect(r.body.endsWith(VERIFY_FAILED)).toBe(true);
    expect(up.seen).toHaveLength(0);
  });

  it("a CRL beside the credential's CA revokes the upstream's certificate", async () => {
    const revoked = rsaLeaf([BACKEND], { tag: 'upstream-tls-revoked' });
    const up = await upstream({ cert: withChain(revoked) });
    const crl = makeCrl(testCa(), [revoked.certPem]);
    const bad = await gateway(
      configYaml(up.port, 'mode: SIMPLE\ncredentialName: backend-ca', caSecret(testCa().certPem, crl)),
    );
    const r = await getWithHost(bad.port, BACKEND);
    expect(r.status).toBe(503);
    expect(r.body.endsWith(VERIFY_FAILED)).toBe(true);
    // The same CRL revoking another certificate lets this one through.
    const other = makeCrl(testCa(), [SERVER.certPem]);
    const good = await gateway(
      configYaml(up.port, 'mode: SIMPLE\ncredentialName: backend-ca', caSecret(testCa().certPem, other)),
    );
    expect((await getWithHost(good.port, BACKEND)).status).toBe(200);
  });

  it('TLS to a plain-text upstream fails with WRONG_VERSION_NUMBER', async () => {
    const plain = await startEcho({ name: 'plain' });
    cleanups.push(() => plain.close());
    const { port } = await gateway(configYaml(plain.port, 'mode: SIMPLE\ninsecureSkipVerify: true'));
    const r = await getWithHost(port, BACKEND);
    expect(r.status).toBe(503);
    expect(r.body).toMatch(
      /transport failure reason: TLS_error:\|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end$/,
    );
    expect(plain.seen).toHaveLength(0);
  });
});

describe("Istio's egress TLS origination pattern", () => {
  it('an HTTP port with targetPort 443 and a port-level SIMPLE: plain HTTP in, HTTPS out, SNI from the Host', async () => {
    const up = await upstream({ cert: withChain(SERVER) });
    const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: default }
spec:
  hosts: [api.example.com]
  ports: [{ number: 80, name: http-port, protocol: HTTP, targetPort: ${up.port} }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: default }
spec:
  hosts: [api.example.com]
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: api.example.com, port: { number: 80 } } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: default }
spec:
  host: api.example.com
  trafficPolicy:
    portLevelSettings:
      - port: { number: 80 }
        tls: { mode: SIMPLE, credentialName: backend-ca }
---
${caSecret(testCa().certPem)}`;
    const { port } = await gateway(yaml);
    const r = await getWithHost(port, 'api.example.com');
    expect(r.status).toBe(200);
    expect(up.seen[0]).toMatchObject({ servername: 'api.example.com', host: 'api.example.com' });
  });
});

describe('MUTUAL (DR-8)', () => {
  const CLIENT = rsaLeaf(['gateway.example.com'], { clientAuth: true, tag: 'upstream-tls-client' });

  it("credentialName: the Secret's chain is presented and its CA checks the upstream", async () => {
    const up = await upstream({ cert: withChain(SERVER), clientCaPem: testCa().certPem });
    const secret = secretYaml('client-cred', {
      'tls.crt': CLIENT.certPem + testCa().certPem,
      'tls.key': CLIENT.keyPem,
      'ca.crt': testCa().certPem,
    });
    const { port } = await gateway(configYaml(up.port, 'mode: MUTUAL\ncredentialName: client-cred', secret));
    const r = await getWithHost(port, BACKEND);
    expect(r.status).toBe(200);
    expect(up.seen[0]).toMatchObject({ servername: BACKEND, clientCn: 'gateway.example.com' });
  });

  it('an upstream requiring a client certificate refuses SIMPLE: 503, never a plain-text request', async () => {
    const up = await upstream({ cert: withChain(SERVER), clientCaPem: testCa().certPem });
    const { port } = await gateway(
      configYaml(up.port, 'mode: SIMPLE\ncredentialName: backend-ca', caSecret(testCa().certPem)),
    );
    const r = await getWithHost(port, BACKEND);
    // TLS 1.3: the client's handshake completes before the server's alert, so the request fails
    // on a connection the upstream closes (Envoy's "connection termination" too).
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/^upstream connect error or disconnect\/reset before headers\. /);
    expect(up.seen).toHaveLength(0);
  });

  it('a credential Secret that is missing: a warning, and 503 UF "Secret is not supplied by SDS"', async () => {
    const up = await upstream({ cert: withChain(SERVER), clientCaPem: testCa().certPem });
    const yaml = configYaml(up.port, 'mode: MUTUAL\ncredentialName: nowhere');
    const loaded = loadResources([{ file: 'test.yaml', text: yaml }], { defaultNamespace: 'default' });
    const { diagnostics } = compile(loaded.resources, { ...TEST_IDENTITY, nowMs: Date.now() });
    expect(diagnostics).toContainEqual(
      expect.objectContaining({
        level: 'warning',
        code: 'SLUICE_TLS_CONFIG',
        path: 'spec.trafficPolicy.tls.credentialName',
      }),
    );
    const { port, done } = await gateway(yaml);
    const r = await getWithHost(port, BACKEND);
    expect(r.status).toBe(503);
    expect(r.body.endsWith('transport failure reason: TLS_error: Secret is not supplied by SDS')).toBe(true);
    await until(() => done.length === 1);
    expect(done[0]!.transportFailureReason).toBe('TLS_error: Secret is not supplied by SDS');
    expect(up.seen).toHaveLength(0);
  });
});

describe('HTTP/2 over TLS and certificate files', () => {
  it('gRPC to a TLS upstream: ALPN h2, the certificate checked against sni', async () => {
    const server = await startEchoServer({ tls: withChain(SERVER) });
    cleanups.push(() => server.close());
    const { port } = await gateway(
      configYaml(
        server.port,
        `mode: SIMPLE\ncredentialName: backend-ca\nsni: ${BACKEND}\nsubjectAltNames: [${BACKEND}]`,
        caSecret(testCa().certPem),
        '',
        'GRPC',
      ),
    );
    const client = echoClient(`127.0.0.1:${port}`, 'grpc.example.com');
    cleanups.push(() => client.close());
    const r = await unary(client, { text: 'over tls' });
    expect(r.error).toBeNull();
    expect(r.value?.text).toBe('over tls');
    expect(r.trailers[TRAILER.name]).toBe(TRAILER.value);
  });

  it('MUTUAL from files (clientCertificate, privateKey, caCertificates); a caCrl written later revokes', async () => {
    const client = rsaLeaf(['files.example.com'], { clientAuth: true, tag: 'upstream-tls-files' });
    const up = await upstream({ cert: withChain(SERVER), clientCaPem: testCa().certPem });
    const gwPort = await freePort();
    const dir = await makeConfigDir({});
    cleanups.push(() => dir.remove());
    const files = path.join(dir.dir, '.files');
    await mkdir(files);
    await writeFile(path.join(files, 'client.pem'), client.certPem + testCa().certPem);
    await writeFile(path.join(files, 'client.key'), client.keyPem);
    await writeFile(path.join(files, 'ca.pem'), testCa().certPem);
    await writeFile(path.join(files, 'crl.pem'), makeCrl(testCa(), [client.certPem]));
    const tls = `mode: MUTUAL
clientCertificate: ${files}/client.pem
privateKey: ${files}/client.key
caCertificates: ${files}/ca.pem
caCrl: ${files}/crl.pem`;
    await dir.write('config.yaml', configYaml(up.port, tls).replace('number: 8080', `number: ${gwPort}`));
    const running = await startServeInProcess(dir.dir);
    cleanups.push(() => running.close());
    const bound = running.gateway.boundPorts().get(gwPort)!;
    const ok = await getWithHost(bound, BACKEND);
    expect(ok.status).toBe(200);
    expect(up.seen[0]).toMatchObject({ clientCn: 'files.example.com', servername: BACKEND });
    // The CRL file now revokes the upstream's own certificate: the change is picked up.
    await writeFile(path.join(files, 'crl.pem'), makeCrl(testCa(), [SERVER.certPem]));
    const refused = await until(
      async () => {
        const r = await getWithHost(bound, BACKEND);
        return r.status === 503 ? r : null;
      },
      { what: 'the revoked upstream refused', timeoutMs: 10_000 },
    );
    expect(refused!.body.endsWith(VERIFY_FAILED)).toBe(true);
  });
});

describe('TCP routes', () => {
  it('a tcp route to a destination with tls SIMPLE: bytes go over TLS with the configured sni', async () => {
    const seen: string[] = [];
    const server = createTlsServer({ cert: withChain(SERVER).certPem, key: SERVER.keyPem }, (s) => {
      seen.push(typeof s.servername === 'string' ? s.servername : '');
      s.on('data', (d: Buffer) => s.end(`tls:${d.toString('utf8')}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const upPort = (server.address() as { port: number }).port;
    const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 5432, name: tcp-db, protocol: TCP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.internal]
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tcp: ${upPort} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  tcp: [{ route: [{ destination: { host: db.internal, port: { number: 5432 } } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: default }
spec:
  host: db.internal
  trafficPolicy: { tls: { mode: SIMPLE, credentialName: backend-ca, sni: ${BACKEND}, subjectAltNames: [${BACKEND}] } }
---
${caSecret(testCa().certPem)}`;
    const gw = await startRecordingGateway(yaml);
    cleanups.push(() => gw.close());
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const s = netConnect({ host: '127.0.0.1', port: gw.port() }, () => s.write('select 1'));
      s.setEncoding('utf8');
      s.on('data', (c: string) => (got += c));
      s.once('error', () => resolve(`error`));
      s.once('close', () => resolve(got));
    });
    expect(answer).toBe('tls:select 1');
    expect(seen).toEqual([BACKEND]);
  });
});

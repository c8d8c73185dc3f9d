/**
 * TLS PASSTHROUGH (GW-5, GW-6): the gateway peeks the ClientHello's SNI, routes by VirtualService
 * `tls` sniHosts and pipes the encrypted connection, so the client sees the upstream's own
 * certificate; unknown SNI is closed; passthrough and terminated servers share one port.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createNetServer } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function tlsUpstream(host: string): Promise<{ port: number; fingerprint: string }> {
  const pair = rsaLeaf([host], { tag: 'upstream' });
  const server: Server = createHttpsServer(
    { cert: pair.certPem + testCa().certPem, key: pair.keyPem },
    (req, res) => {
      res.end(`upstream ${host} saw ${req.headers.host ?? ''}`);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return {
    port: (server.address() as { port: number }).port,
    fingerprint: new X509Certificate(pair.certPem).fingerprint256,
  };
}

function yaml(upPort: number, extraServer = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: tls-pass, protocol: TLS }
      hosts: [p.example.com, '*.pass.example.com']
      tls: { mode: PASSTHROUGH }
${extraServer}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: p, namespace: default }
spec:
  hosts: [p.internal]
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tls: ${upPort} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: p, namespace: default }
spec:
  hosts: [p.example.com, '*.pass.example.com']
  gateways: [istio-system/gw]
  tls:
    - match: [{ sniHosts: [p.example.com, '*.pass.example.com'] }]
      route: [{ destination: { host: p.internal, port: { number: 443 } } }]
`;
}

function peerFingerprint(port: number, servername: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      servername,
      ca: testCa().certPem,
      rejectUnauthorized: false,
    });
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate()?.fingerprint256 ?? 'none');
      s.destroy();
    });
    s.once('error', (e: Error) => resolve(`error: ${e.message}`));
  });
}

function get(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername,
        path: '/',
        headers: { host: servername },
        ca: testCa().certPem,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function gateway(text: string): Promise<TestGateway> {
  const g = await startGatewayFromYaml(text);
  cleanups.push(() => g.close());
  return g;
}

describe('TLS passthrough (GW-5)', () => {
  it('GW-5 routes by SNI to a TLS upstream whose certificate the client sees', async () => {
    const up = await tlsUpstream('p.example.com');
    const g = await gateway(yaml(up.port));
    expect(await peerFingerprint(g.port(8443), 'p.example.com')).toBe(up.fingerprint);
    expect(await get(g.port(8443), 'p.example.com')).toBe('upstream p.example.com saw p.example.com');
    // Wildcard sniHosts.
    expect(await peerFingerprint(g.port(8443), 'x.pass.example.com')).toBe(up.fingerprint);
  });

  it('GW-5 an SNI no route names is closed (no catch-all at a gateway, SE-4)', async () => {
    const up = await tlsUpstream('p.example.com');
    const g = await gateway(yaml(up.port));
    expect(await peerFingerprint(g.port(8443), 'other.example.com')).toMatch(/^error/);
  });

  it('GW-5 passthrough and terminated servers share a port, each by its SNI', async () => {
    const up = await tlsUpstream('p.example.com');
    const term = rsaLeaf(['t.example.com']);
    const g = await gateway(
      tlsSecretYaml('t-cert', term) +
        '---\n' +
        yaml(
          up.port,
          `    - port: { number: 8443, name: https-t, protocol: HTTPS }
      hosts: [t.example.com]
      tls: { mode: SIMPLE, credentialName: t-cert }`,
        ).replace('protocol: TLS }', 'protocol: HTTPS }'),
    );
    expect(await peerFingerprint(g.port(8443), 'p.example.com')).toBe(up.fingerprint);
    expect(await peerFingerprint(g.port(8443), 't.example.com')).toBe(
      new X509Certificate(term.certPem).fingerprint256,
    );
  });
});

describe('TLS terminated into tcp routes (GW-5)', () => {
  it('GW-5 TLS + SIMPLE: the gateway terminates and pipes the plaintext to the tcp destination', async () => {
    const echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => echo.close(() => r())));
    const upPort = (echo.address() as { port: number }).port;
    const cert = rsaLeaf(['db.example.com']);
    const g = await gateway(
      tlsSecretYaml('db-cert', cert) +
        `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: tls-db, protocol: TLS }
      hosts: [db.example.com]
      tls: { mode: SIMPLE, credentialName: db-cert }
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
  hosts: [db.example.com]
  gateways: [istio-system/gw]
  tcp: [{ route: [{ destination: { host: db.internal, port: { number: 5432 } } }] }]
`,
    );
    const reply = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: g.port(8443),
        servername: 'db.example.com',
        ca: testCa().certPem,
      });
      s.once('secureConnect', () => s.write('ping over tls'));
      s.once('data', (d: Buffer) => {
        resolve(d.toString());
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(reply).toBe('ping over tls');
  });
});

/**
 * backend-protocol HTTPS / GRPC / GRPCS and proxy-ssl-* on natively served Ingresses, against
 * real TLS and gRPC upstreams on loopback with certificates the test makes: ingress-nginx speaks
 * TLS without verifying unless proxy-ssl-verify is on, then checks the chain against the
 * proxy-ssl-secret's ca.crt and the name proxy-ssl-name, presents the Secret's certificate, and
 * sends the SNI only with proxy-ssl-server-name on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeCa, makeServerCert } from '../../src/tls/self-signed.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { httpsGet } from '../support/tls-client.ts';
import type { TestGateway } from '../support/gateway.ts';
import { TRAILER, echoClient, startEchoServer, unary } from '../support/grpc.ts';
import {
  compileIngressYaml,
  ingressYaml,
  path,
  sendIngress as send,
  serviceYaml,
  startIngressGateway,
} from '../support/ingress.ts';
import { startTlsUpstream } from '../support/tls-upstream.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** An Opaque Secret `default/<name>` with ca.crt and, for a client certificate, tls.crt/tls.key. */
function proxySecret(name: string, caPem: string, client?: { certPem: string; keyPem: string }): string {
  const pair =
    client === undefined ? '' : `\n  tls.crt: ${b64(client.certPem)}\n  tls.key: ${b64(client.keyPem)}`;
  return `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: default}\ntype: Opaque\ndata:\n  ca.crt: ${b64(caPem)}${pair}\n`;
}

async function serve(
  port: number,
  annotations: Record<string, string>,
  ...extra: string[]
): Promise<TestGateway> {
  const gw = await startIngressGateway(
    [
      ingressYaml({ name: 'web', annotations, paths: [path('/', 'Prefix', 'secure', 443)] }),
      serviceYaml('secure', port, { port: 443, portName: 'https' }),
      ...extra,
    ].join('---\n'),
  );
  cleanups.push(() => gw.close());
  return gw;
}

async function tlsUpstream(opts: Parameters<typeof startTlsUpstream>[0]) {
  const up = await startTlsUpstream(opts);
  cleanups.push(() => up.close());
  return up;
}

describe('backend-protocol HTTPS', () => {
  it('speaks TLS to the backend without verifying its certificate, as ingress-nginx does by default', async () => {
    const stranger = makeCa({ commonName: 'nobody we know' });
    const up = await tlsUpstream({ cert: makeServerCert(stranger, ['whatever.invalid']) });
    const gw = await serve(up.port, { 'backend-protocol': 'HTTPS' });
    const r = await send(gw, '/x');
    expect(r.status).toBe(200);
    expect(r.text).toBe('tls ok');
    expect(up.seen).toHaveLength(1);
  });
});

describe('proxy-ssl-secret / proxy-ssl-verify / proxy-ssl-name / proxy-ssl-server-name', () => {
  const on = {
    'backend-protocol': 'HTTPS',
    'proxy-ssl-secret': 'default/upstream-ca',
    'proxy-ssl-verify': 'on',
    'proxy-ssl-name': 'backend.internal',
  };

  it('verifies the chain against ca.crt and the name proxy-ssl-name; SNI only with proxy-ssl-server-name on', async () => {
    const up = await tlsUpstream({ cert: rsaLeaf(['backend.internal']) });
    const gw = await serve(up.port, on, proxySecret('upstream-ca', testCa().certPem));
    expect((await send(gw, '/a')).status).toBe(200);
    expect(up.seen[0]!.servername).not.toBe('backend.internal');
    const sni = await serve(
      up.port,
      { ...on, 'proxy-ssl-server-name': 'on' },
      proxySecret('upstream-ca', testCa().certPem),
    );
    expect((await send(sni, '/b')).status).toBe(200);
    expect(up.seen[1]!.servername).toBe('backend.internal');
  });

  it('refuses a backend whose certificate another CA signed, or that is not proxy-ssl-name', async () => {
    const other = makeCa({ commonName: 'another CA' });
    const stranger = await tlsUpstream({ cert: makeServerCert(other, ['backend.internal']) });
    const gw = await serve(stranger.port, on, proxySecret('upstream-ca', testCa().certPem));
    const r = await send(gw, '/a');
    expect(r.status).toBe(503);
    expect(stranger.seen).toHaveLength(0);
    const misnamed = await tlsUpstream({ cert: rsaLeaf(['elsewhere.internal']) });
    const gw2 = await serve(misnamed.port, on, proxySecret('upstream-ca', testCa().certPem));
    expect((await send(gw2, '/a')).status).toBe(503);
    expect(misnamed.seen).toHaveLength(0);
  });

  it('without proxy-ssl-name checks the name upstream_balancer, as ingress-nginx’s $proxy_host', async () => {
    const { 'proxy-ssl-name': _name, ...noName } = on;
    const up = await tlsUpstream({ cert: rsaLeaf(['backend.internal']) });
    const gw = await serve(up.port, noName, proxySecret('upstream-ca', testCa().certPem));
    expect((await send(gw, '/a')).status).toBe(503);
    const balancer = await tlsUpstream({ cert: rsaLeaf(['upstream_balancer']) });
    const gw2 = await serve(balancer.port, noName, proxySecret('upstream-ca', testCa().certPem));
    expect((await send(gw2, '/a')).status).toBe(200);
  });

  it('presents the Secret’s tls.crt to a backend that requires a client certificate', async () => {
    const client = rsaLeaf(['gateway-client'], { clientAuth: true });
    const up = await tlsUpstream({ cert: rsaLeaf(['backend.internal']), clientCaPem: testCa().certPem });
    const gw = await serve(up.port, on, proxySecret('upstream-ca', testCa().certPem, client));
    expect((await send(gw, '/a')).status).toBe(200);
    expect(up.seen[0]!.clientCn).toBe('gateway-client');
    const without = await serve(up.port, on, proxySecret('upstream-ca', testCa().certPem));
    expect((await send(without, '/a')).status).toBe(503);
  });

  it('refuses the config for a missing Secret or proxy-ssl-verify without a Secret', () => {
    for (const [annotations, text] of [
      [on, 'Secret default/upstream-ca is not in the config'],
      [{ 'backend-protocol': 'HTTPS', 'proxy-ssl-verify': 'on' }, 'without proxy-ssl-secret there is no CA'],
      [{ ...on, 'proxy-ssl-secret': 'upstream-ca' }, '"upstream-ca" is not namespace/name'],
    ] as const) {
      const { diagnostics, snapshot } = compileIngressYaml(
        ingressYaml({ name: 'web', annotations, paths: [path('/', 'Prefix', 'secure', 443)] }),
      );
      const errors = diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(text);
      expect(snapshot.listeners.size).toBe(0);
    }
  });
});

describe('backend-protocol GRPC and GRPCS', () => {
  /** A unary call through the Ingress to a grpc-js server behind Service rpc:50051. */
  async function callThrough(
    protocol: string,
    server: Awaited<ReturnType<typeof startEchoServer>>,
    text: string,
  ) {
    cleanups.push(() => server.close());
    const gw = await startIngressGateway(
      [
        ingressYaml({
          name: 'rpc',
          annotations: { 'backend-protocol': protocol },
          paths: [path('/', 'Prefix', 'rpc', 50051)],
        }),
        serviceYaml('rpc', server.port, { port: 50051, portName: 'grpc' }),
      ].join('---\n'),
    );
    cleanups.push(() => gw.close());
    const client = echoClient(`127.0.0.1:${gw.port(80)}`, 'demo.example.com');
    cleanups.push(() => client.close());
    return unary(client, { text });
  }

  it('GRPC carries a unary call to a grpc-js server over h2c, trailers and all', async () => {
    const server = await startEchoServer();
    const r = await callThrough('GRPC', server, 'over ingress');
    expect(r.error).toBeNull();
    expect(r.value).toMatchObject({ text: 'over ingress' });
    expect(r.trailers[TRAILER.name]).toBe(TRAILER.value);
    expect(server.calls).toHaveLength(1);
  });

  it('GRPCS speaks TLS to the grpc-js server (unverified by default)', async () => {
    const server = await startEchoServer({ tls: rsaLeaf(['rpc.internal']) });
    const r = await callThrough('GRPCS', server, 'over tls');
    expect(r.error).toBeNull();
    expect(r.value).toMatchObject({ text: 'over tls' });
    expect(server.calls).toHaveLength(1);
  });
});

describe('ssl-passthrough', () => {
  it('pipes TLS for its host by SNI to the backend, beside a terminated host on the same port', async () => {
    const up = await tlsUpstream({ cert: rsaLeaf(['pass.example.com']) });
    const gw = await startIngressGateway(
      [
        ingressYaml({
          name: 'pass',
          host: 'pass.example.com',
          annotations: { 'ssl-passthrough': 'true' },
          paths: [path('/', 'Prefix', 'secure', 443)],
        }),
        serviceYaml('secure', up.port, { port: 443, portName: 'https' }),
        ingressYaml({
          name: 'web',
          host: 'web.example.com',
          annotations: { 'ssl-redirect': 'false' },
          paths: [path('/', 'Prefix', 'secure', 443)],
          spec: '  tls: [{hosts: [web.example.com], secretName: web-tls}]\n',
        }),
        tlsSecretYaml('web-tls', rsaLeaf(['web.example.com']), { namespace: 'default' }),
      ].join('---\n'),
    );
    cleanups.push(() => gw.close());
    // The backend terminated this TLS itself: it saw the client's SNI and answered directly.
    const piped = await httpsGet(gw.port(443), 'pass.example.com', { path: '/deep' });
    expect(piped.status).toBe(200);
    expect(piped.body).toBe('tls ok');
    expect(up.seen).toEqual([{ servername: 'pass.example.com', clientCn: '', host: 'pass.example.com' }]);
    // The other Ingress's host on the same port is terminated by the gateway (its plain HTTP
    // backend gets no TLS from the gateway, so the request fails upstream, not in the handshake).
    const terminated = await httpsGet(gw.port(443), 'web.example.com');
    expect(terminated.error).toBeNull();
    expect(up.seen).toHaveLength(1);
  });
});

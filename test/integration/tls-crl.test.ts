/**
 * Client certificate revocation (issue 5 item 3; GW-15, GW-16): a Gateway `caCrl` file and a
 * credential Secret's `ca.crl` make revoked client certificates fail the handshake on MUTUAL and
 * OPTIONAL_MUTUAL servers, counted as `client_cert_revoked`; a changed CRL file is used for new
 * handshakes without a restart (the file is watched like certificates are).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { makeCrl } from '../support/crl.ts';
import { startGatewayFromYaml } from '../support/gateway.ts';
import { freePort, makeConfigDir } from '../support/ops-config.ts';
import { parsePrometheus, sumOf } from '../support/observability.ts';
import { get } from '../support/serve-child.ts';
import { startServeInProcess } from '../support/serve-in-process.ts';
import { httpsGet } from '../support/tls-client.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const HOST = 'crl.example.com';
const SERVER = rsaLeaf([HOST], { tag: 'crl-server' });
const ALICE = rsaLeaf(['alice.example.com'], { clientAuth: true, tag: 'crl-alice' });
const BOB = rsaLeaf(['bob.example.com'], { clientAuth: true, tag: 'crl-bob' });
const as = (p: { certPem: string; keyPem: string }): { cert: string; key: string } => ({
  cert: p.certPem,
  key: p.keyPem,
});

function routesYaml(upstreamPort: number): string {
  return `${upstreamRouteYaml(upstreamPort, `[${HOST}]`)}
`;
}

describe('client certificate revocation (GW-15, GW-16)', () => {
  it('GW-16 caCrl file: the revoked client is refused, the other served; a rotated CRL applies without restart', async () => {
    const up = await startEcho({ name: 'up' });
    cleanups.push(() => up.close());
    const port = await freePort();
    const dir = await makeConfigDir({ 'routes.yaml': routesYaml(up.port) });
    cleanups.push(() => dir.remove());
    const files = path.join(dir.dir, '.files');
    await mkdir(files);
    await writeFile(path.join(files, 'cert.pem'), SERVER.certPem + testCa().certPem);
    await writeFile(path.join(files, 'key.pem'), SERVER.keyPem);
    await writeFile(path.join(files, 'ca.pem'), testCa().certPem);
    await writeFile(path.join(files, 'crl.pem'), makeCrl(testCa(), [ALICE.certPem]));
    await dir.write(
      'gateway.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${port}, name: https, protocol: HTTPS }
      hosts: [${HOST}]
      tls:
        mode: MUTUAL
        serverCertificate: ${files}/cert.pem
        privateKey: ${files}/key.pem
        caCertificates: ${files}/ca.pem
        caCrl: ${files}/crl.pem
`,
    );
    const running = await startServeInProcess(dir.dir);
    cleanups.push(() => running.close());
    const bound = running.gateway.boundPorts().get(port)!;

    const alice = await httpsGet(bound, HOST, as(ALICE));
    expect(alice.status).toBeNull();
    expect((await httpsGet(bound, HOST, as(BOB))).status).toBe(200);
    expect(up.seen.length).toBe(1);

    // Revoke Bob too: the changed file is picked up like a rotated certificate.
    const accepted = running.loop.stats.accepted;
    await writeFile(path.join(files, 'crl.pem'), makeCrl(testCa(), [ALICE.certPem, BOB.certPem]));
    await until(() => running.loop.stats.accepted > accepted, { what: 'the new CRL applied' });
    expect((await httpsGet(bound, HOST, as(BOB))).status).toBeNull();
    expect((await httpsGet(bound, HOST, as(ALICE))).status).toBeNull();
    expect(up.seen.length).toBe(1);

    const samples = parsePrometheus((await get(running.metricsServer.port, '/stats/prometheus')).body);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'client_cert_revoked' })).toBe(3);
    expect(sumOf(samples, 'sluice_tls_handshakes_total')).toBe(1);

    // A broken CRL is refused whole; the last good one keeps revoking.
    const rejected = running.loop.stats.rejected;
    await writeFile(path.join(files, 'crl.pem'), '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    await until(() => running.loop.stats.rejected > rejected, { what: 'the broken CRL refused' });
    expect((await httpsGet(bound, HOST, as(BOB))).status).toBeNull();
  });

  it('GW-15 OPTIONAL_MUTUAL with the credential Secret ca.crl: revoked refused, others and anonymous served', async () => {
    const up = await startEcho({ name: 'up' });
    cleanups.push(() => up.close());
    const g = await startGatewayFromYaml(`
${tlsSecretYaml('crl-cert', SERVER, { caPem: testCa().certPem })}  ca.crl: ${Buffer.from(makeCrl(testCa(), [ALICE.certPem])).toString('base64')}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [${HOST}]
      tls: { mode: OPTIONAL_MUTUAL, credentialName: crl-cert }
---
${routesYaml(up.port)}`);
    cleanups.push(() => g.close());
    const port = g.port(8443);
    expect((await httpsGet(port, HOST, as(ALICE))).status).toBeNull();
    expect((await httpsGet(port, HOST, as(BOB))).status).toBe(200);
    expect((await httpsGet(port, HOST)).status).toBe(200);
    expect(g.gateway.tlsStats.handshakeErrors.get('client_cert_revoked')).toBe(1);
  });
});

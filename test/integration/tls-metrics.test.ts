/**
 * TLS observability (issue 5 item 5) on the real serve code: handshakes and refused handshakes by
 * reason and seconds until expiry per credential on the metrics port, `/certs` on the admin port;
 * and under --workers, counters summed over the workers while expiry and `/certs` are not
 * multiplied by them.
 */
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/cli/serve.ts';
import type { CertificateInfo } from '../../src/observability/tls-stats.ts';
import { opensslLeaf, rsaLeaf, tlsSecretYaml } from '../support/certs.ts';
import { freePort, makeConfigDir, type ConfigDir } from '../support/ops-config.ts';
import { parsePrometheus, sumOf, type Sample } from '../support/observability.ts';
import { get, startServeChild } from '../support/serve-child.ts';
import { startServeInProcess } from '../support/serve-in-process.ts';
import { handshake, httpsGet } from '../support/tls-client.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const A = rsaLeaf(['a.example.com'], { days: 20, tag: 'metrics-a' });
const B = opensslLeaf({ key: 'ec', cn: 'b.example.com', sans: ['DNS:b.example.com'] });
const notAfterS = (pem: string): number => Date.parse(new X509Certificate(pem).validTo) / 1000;
const sha256 = (pem: string): string =>
  new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

/** Two HTTPS servers on one port, each with its own credential (RSA and ECDSA). */
async function configDir(port: number): Promise<ConfigDir> {
  const up = await startEcho({ name: 'up' });
  cleanups.push(() => up.close());
  const dir = await makeConfigDir({
    'secrets.yaml': `${tlsSecretYaml('a-cert', A)}---\n${tlsSecretYaml('b-cert', B)}`,
    'gateway.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${port}, name: https-a, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, credentialName: a-cert }
    - port: { number: ${port}, name: https-b, protocol: HTTPS }
      hosts: [b.example.com]
      tls: { mode: SIMPLE, credentialName: b-cert }
---
${upstreamRouteYaml(up.port, `[a.example.com, b.example.com]`)}
`,
  });
  cleanups.push(() => dir.remove());
  return dir;
}

async function serve(dir: ConfigDir): Promise<RunningGateway> {
  const running = await startServeInProcess(dir.dir);
  cleanups.push(() => running.close());
  return running;
}

/** Good handshakes on both names, then one unknown SNI and one without SNI (GW-14: refused). */
async function shake(port: number): Promise<void> {
  expect((await handshake(port, { servername: 'a.example.com' })).fingerprint256).toBe(
    new X509Certificate(A.certPem).fingerprint256,
  );
  expect((await handshake(port, { servername: 'b.example.com' })).fingerprint256).toBe(
    new X509Certificate(B.certPem).fingerprint256,
  );
  expect((await httpsGet(port, 'a.example.com')).status).toBe(200);
  expect((await handshake(port, { servername: 'c.example.com' })).ok).toBe(false);
  expect((await handshake(port, { servername: '' })).ok).toBe(false);
}

function expectExpiry(samples: readonly Sample[], credential: string, source: string, pem: string): void {
  const rows = samples.filter(
    (s) => s.name === 'sluice_tls_certificate_expiry_seconds' && s.labels['credential'] === credential,
  );
  expect(rows).toHaveLength(1);
  expect(rows[0]!.labels['source']).toBe(source);
  expect(Math.abs(rows[0]!.value - (notAfterS(pem) - Date.now() / 1000))).toBeLessThan(30);
  expect(sumOf(samples, 'sluice_tls_certificate_not_after_seconds', { credential })).toBe(notAfterS(pem));
}

function expectCerts(certs: readonly CertificateInfo[], port: number): void {
  expect(certs.map((c) => [c.name, c.source, c.keyType, c.dnsNames, c.fingerprint])).toEqual([
    ['a-cert', 'Secret istio-system/a-cert', 'RSA', ['a.example.com'], sha256(A.certPem)],
    ['b-cert', 'Secret istio-system/b-cert', 'EC', ['b.example.com'], sha256(B.certPem)],
  ]);
  const a = certs[0]!;
  expect(a.notAfter).toBe(new Date(notAfterS(A.certPem) * 1000).toISOString());
  expect(a.issuer).toMatch(/sluice test CA/);
  expect(a.subject).toMatch(/a\.example\.com/);
  expect(Math.abs(a.secondsUntilExpiry - (notAfterS(A.certPem) - Date.now() / 1000))).toBeLessThan(30);
  expect(a.servers).toEqual([`${port}/istio-system/gw/0`]);
  expect(certs[1]!.servers).toEqual([`${port}/istio-system/gw/1`]);
}

describe('TLS metrics and /certs', () => {
  it('metrics port: handshakes, refusals by reason, contexts built once, expiry per credential; admin /certs', async () => {
    const port = await freePort();
    const running = await serve(await configDir(port));
    await shake(running.gateway.boundPorts().get(port)!);

    const text = (await get(running.metricsServer.port, '/stats/prometheus')).body;
    const samples = parsePrometheus(text);
    expect(sumOf(samples, 'sluice_tls_handshakes_total')).toBe(3);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'unknown_sni' })).toBe(1);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'no_sni' })).toBe(1);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total')).toBe(2);
    // One context per credential, whatever the number of handshakes.
    expect(sumOf(samples, 'sluice_tls_secure_contexts_built_total')).toBe(2);
    expectExpiry(samples, 'a-cert', 'Secret istio-system/a-cert', A.certPem);
    expectExpiry(samples, 'b-cert', 'Secret istio-system/b-cert', B.certPem);
    expect(text).toMatch(/^# TYPE sluice_tls_certificate_expiry_seconds gauge$/m);

    const res = await get(running.admin.port, '/certs');
    expect(res.status).toBe(200);
    expect(res.body).not.toMatch(/PRIVATE KEY|BEGIN/);
    expectCerts(JSON.parse(res.body) as CertificateInfo[], port);
  });

  it('--workers 2: handshake counters sum over the workers; expiry and /certs are not multiplied', async () => {
    const port = await freePort();
    const dir = await configDir(port);
    const child = await startServeChild(dir.dir, ['--workers', '2']);
    cleanups.push(() => child.proc.stop('SIGKILL'));
    await until(async () => (await child.readiness()) === 200, { timeoutMs: 20_000, what: 'ready' });
    await shake(port);
    const samples = parsePrometheus(
      (await until(
        async () => {
          const text = await child.metrics();
          return sumOf(parsePrometheus(text), 'sluice_tls_handshakes_total') === 3 ? text : undefined;
        },
        { what: 'three handshakes counted over the workers' },
      )) as string,
    );
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total')).toBe(2);
    expect(sumOf(samples, 'sluice_tls_handshake_errors_total', { reason: 'no_sni' })).toBe(1);
    // Each worker builds its own two contexts.
    expect(sumOf(samples, 'sluice_tls_secure_contexts_built_total')).toBe(4);
    expectExpiry(samples, 'a-cert', 'Secret istio-system/a-cert', A.certPem);
    expectExpiry(samples, 'b-cert', 'Secret istio-system/b-cert', B.certPem);
    expectCerts(await child.admin<CertificateInfo[]>('/certs'), port);
  });
});

/**
 * ACME through the real gateway (issue 5 item 6), end to end: pebble validates against sluice's
 * own listeners (TLS-ALPN-01 on the HTTPS listener, HTTP-01 on the plaintext one, both answered
 * from the token store passed to createGateway as its `acme` hooks), the manager writes the
 * certificate into --certs-dir/<credentialName>/, and the certs-dir watcher rotates it in: new
 * handshakes get pebble's certificate without a restart.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/control/reconcile.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { createAcmeManager, type AcmeOrderResult } from '../../src/providers/acme.ts';
import { createFileLock } from '../../src/providers/acme-lock.ts';
import { createAcmeTokens } from '../../src/tls/acme-tokens.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import { acmeGateway, startPebble } from '../support/pebble.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { followConfigSources } from '../support/config-loop.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';

const HOST = 'acme-gw.example.test';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function configYaml(upstreamPort: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: istio-system
  annotations: { sluice.dev/acme-issuer: pebble }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8080, name: http, protocol: HTTP }
      hosts: ['*']
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [${HOST}]
      tls: { mode: SIMPLE, credentialName: site }
---
${upstreamRouteYaml(upstreamPort, `['*']`, { gateway: 'istio-system/public', name: 'site' })}
`;
}

function servedCert(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false });
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate()!);
      s.destroy();
    });
    s.once('error', reject);
  });
}

async function startStack() {
  const tokens = createAcmeTokens();
  const up = await startEcho({ name: 'up' });
  cleanups.push(() => up.close());
  const dir = await mkdtemp(join(tmpdir(), 'sluice-acme-gw-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const certsDir = join(dir, 'certs');
  await mkdir(join(dir, 'config'));
  // A placeholder certificate (not from pebble) so the HTTPS server serves from the start.
  const placeholder = rsaLeaf([HOST], { tag: 'acme-placeholder' });
  await mkdir(join(certsDir, 'site'), { recursive: true });
  await writeFile(join(certsDir, 'site', 'tls.key'), placeholder.keyPem);
  await writeFile(join(certsDir, 'site', 'tls.crt'), placeholder.certPem + testCa().certPem);
  await writeFile(join(dir, 'config', 'gw.yaml'), configYaml(up.port));

  const gateway = createGateway({
    bind: '127.0.0.1',
    logger: silentLogger(),
    bindPortFor: () => 0,
    acme: tokens,
  });
  cleanups.push(() => gateway.close());
  const { stop } = await followConfigSources(gateway, { config: join(dir, 'config'), certsDir });
  cleanups.push(stop);
  await until(() => gateway.boundPorts().has(8443) && gateway.boundPorts().has(8080), {
    what: 'HTTP and HTTPS listeners bound',
  });
  const httpPort = gateway.boundPorts().get(8080)!;
  const httpsPort = gateway.boundPorts().get(8443)!;
  const pebble = await startPebble({ httpPort, tlsPort: httpsPort });
  cleanups.push(() => pebble.close());
  return { tokens, certsDir, httpsPort, pebble, placeholder };
}

describe('ACME through the gateway listeners', () => {
  for (const challenge of ['tls-alpn-01', 'http-01'] as const) {
    it(`issues over ${challenge} answered by the gateway, and the new certificate is served without a restart`, async () => {
      const { tokens, certsDir, httpsPort, pebble, placeholder } = await startStack();
      expect((await servedCert(httpsPort)).fingerprint256).toBe(
        new X509Certificate(placeholder.certPem).fingerprint256,
      );
      // The placeholder is fresh, so only a host it does not name would trigger an order: make the
      // manager see it as due by giving it a clock past its 2/3 point.
      const results: AcmeOrderResult[] = [];
      const manager = createAcmeManager({
        issuers: [{ name: 'pebble', directoryUrl: pebble.directoryUrl, caBundle: pebble.caPem, challenge }],
        certsDir,
        logger: silentLogger(),
        lock: createFileLock(certsDir),
        tokens,
        pollMinMs: 100,
        requestRetries: 0,
        now: () => Date.now() + 800 * 86_400_000,
        metrics: { orderResult: (_i, _c, r) => void results.push(r) },
      });
      cleanups.push(() => manager.stop());
      await manager.reconcile([acmeGateway('public', 'pebble', [{ credentialName: 'site', hosts: [HOST] }])]);
      expect(results, manager.targets()[0]?.lastError).toEqual(['issued']);

      const issued = new X509Certificate(await readFile(join(certsDir, 'site', 'tls.crt'), 'utf8'));
      await until(async () => (await servedCert(httpsPort)).fingerprint256 === issued.fingerprint256, {
        what: 'the gateway serving the ACME certificate',
        timeoutMs: 5000,
      });
      expect(issued.checkHost(HOST)).toBe(HOST);
    });
  }
});

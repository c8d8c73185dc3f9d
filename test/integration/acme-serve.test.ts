/**
 * `sluice serve` runs ACME (issue 5 item 6) end to end against the real pebble server: a
 * MeshConfig declaring the issuer, a Gateway annotated `sluice.dev/acme-issuer`, and nothing
 * else. The certificate is ordered after the first accepted config, the challenge is answered by
 * serve's own listeners (in --workers mode by a worker, from the shared store, while the primary
 * orders), written to --certs-dir/<credential>/ and served without a restart; the order is
 * counted in sluice_acme_orders_total and listed on the admin /acme page. Coordination goes
 * through Redis when the MeshConfig declares `redis.url`; Redis being down is a counted,
 * backed-off failure, never a crash, and its password is never logged.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/cli/serve.ts';
import { startServeInProcess } from '../support/serve-in-process.ts';
import { loadResources } from '../../src/config/index.ts';
import { createAcmeRunner, type AcmeTargetRow } from '../../src/control/acme-runner.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { parsePrometheus, sumOf } from '../support/observability.ts';
import { makeConfigDir } from '../support/ops-config.ts';
import { freePort, freePorts, startPebble, type Pebble } from '../support/pebble.ts';
import { startRedisServer } from '../support/redis.ts';
import { get, startServeChild } from '../support/serve-child.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';

const HOST = 'acme-serve.example.test';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

interface Ports {
  readonly httpPort: number;
  readonly httpsPort: number;
}

/** MeshConfig with the pebble issuer (and optionally Redis), the annotated Gateway, one route. */
function acmeYaml(opts: {
  ports: Ports;
  upPort: number;
  directoryUrl: string;
  caPem: string;
  challenge: 'http-01' | 'tls-alpn-01';
  redis?: string;
}): string {
  return `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  acme:
    issuers:
      - name: pebble
        directoryUrl: ${opts.directoryUrl}
        caBundle: ${JSON.stringify(opts.caPem)}
        challenge: ${opts.challenge}
${opts.redis ?? ''}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: istio-system
  annotations: { sluice.dev/acme-issuer: pebble }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${opts.ports.httpPort}, name: http, protocol: HTTP }
      hosts: ['*']
    - port: { number: ${opts.ports.httpsPort}, name: https, protocol: HTTPS }
      hosts: [${HOST}]
      tls: { mode: SIMPLE, credentialName: site }
---
${upstreamRouteYaml(opts.upPort, `['*']`, { gateway: 'istio-system/public', name: 'site' })}
`;
}

/** Free Gateway ports (pebble's validator needs them before it starts), pebble, an upstream, dirs. */
async function setup(
  challenge: 'http-01' | 'tls-alpn-01',
  redis?: string,
): Promise<{ pebble: Pebble; ports: Ports; configDir: string; certsDir: string }> {
  const [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
  const ports = { httpPort, httpsPort };
  const pebble = await startPebble({ httpPort: ports.httpPort, tlsPort: ports.httpsPort });
  cleanups.push(() => pebble.close());
  const up = await startEcho({ name: 'up' });
  cleanups.push(() => up.close());
  const certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-serve-certs-'));
  cleanups.push(() => rm(certsDir, { recursive: true, force: true }));
  const config = await makeConfigDir({
    'acme.yaml': acmeYaml({
      ports,
      upPort: up.port,
      directoryUrl: pebble.directoryUrl,
      caPem: pebble.caPem,
      challenge,
      ...(redis !== undefined ? { redis } : {}),
    }),
  });
  cleanups.push(() => config.remove());
  return { pebble, ports, configDir: config.dir, certsDir };
}

function serveArgs(configDir: string, certsDir: string): string[] {
  return [
    '--config',
    configDir,
    '--bind',
    '127.0.0.1',
    '--status-port',
    '0',
    '--metrics-port',
    '0',
    '--admin-port',
    '0',
    '--certs-dir',
    certsDir,
    '--drain-delay',
    '0',
  ];
}

async function startInProcess(configDir: string, certsDir: string): Promise<RunningGateway> {
  const running = await startServeInProcess(configDir, ['--certs-dir', certsDir, '--drain-delay', '0'], {
    quietMs: 20,
    maxWaitMs: 200,
    acme: { pollMinMs: 100, requestRetries: 0, lockRetryMs: 200 },
  });
  cleanups.push(() => running.close());
  return running;
}

/** The certificate the HTTPS listener presents for HOST, or null while it has none. */
function servedCert(port: number): Promise<X509Certificate | null> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false });
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate() ?? null);
      s.destroy();
    });
    s.once('error', () => resolve(null));
  });
}

/** Waits for the issued files, then for the listener to present them; returns the certificate. */
async function untilServedFromCertsDir(certsDir: string, httpsPort: number): Promise<X509Certificate> {
  // A missing file rejects the attempt; until() retries.
  const issued = await until(
    async () => new X509Certificate(await readFile(join(certsDir, 'site', 'tls.crt'), 'utf8')),
    { timeoutMs: 20_000, what: `the certificate in ${certsDir}/site/tls.crt` },
  );
  await until(async () => (await servedCert(httpsPort))?.fingerprint256 === issued.fingerprint256, {
    timeoutMs: 5000,
    what: 'the HTTPS listener serving the issued certificate',
  });
  return issued;
}

/** A request over HTTPS verified against pebble's root (chain and name), routed to the upstream. */
function verifiedGet(port: number, rootPem: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername: HOST,
        path: '/',
        headers: { host: HOST },
        ca: rootPem,
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function ordersTotal(metricsPort: number, result: string): Promise<number> {
  const text = (await get(metricsPort, '/stats/prometheus')).body;
  return sumOf(parsePrometheus(text), 'sluice_acme_orders_total', { issuer: 'pebble', result });
}

async function acmePage(adminPort: number): Promise<AcmeTargetRow[]> {
  return JSON.parse((await get(adminPort, '/acme')).body) as AcmeTargetRow[];
}

describe('sluice serve runs ACME', () => {
  for (const challenge of ['http-01', 'tls-alpn-01'] as const) {
    it(`orders after the first config, answers ${challenge} on its own listener, writes --certs-dir/site/ and serves it without a restart`, async () => {
      const { pebble, ports, configDir, certsDir } = await setup(challenge);
      const running = await startInProcess(configDir, certsDir);
      // No certificate yet: the HTTPS server refuses handshakes until ACME has one.
      expect(await servedCert(ports.httpsPort)).toBeNull();

      const issued = await untilServedFromCertsDir(certsDir, ports.httpsPort);
      expect(issued.checkHost(HOST)).toBe(HOST);
      expect(await verifiedGet(ports.httpsPort, await pebble.rootPem())).toBe(200);
      expect(await ordersTotal(running.metricsServer.port, 'issued')).toBe(1);
      const [target, ...rest] = await acmePage(running.admin.port);
      expect(rest).toEqual([]);
      expect(target).toMatchObject({
        issuer: 'pebble',
        credential: 'site',
        hosts: [HOST],
        failures: 0,
        nextAttemptAt: null,
        lastError: null,
      });
      expect(Date.parse(target.renewAt!)).toBeGreaterThan(Date.now());
    });
  }

  it('with MeshConfig redis.url, the order lock is taken in Redis under keyPrefix: a lock held elsewhere is counted as locked, then the order goes through; the password stays hidden', async () => {
    const redis = await startRedisServer({ password: 'hunter2' });
    cleanups.push(() => redis.close());
    // Another replica holds the order lock for this credential.
    const lockKey = 'edge:acme:lock:pebble:site';
    await redis.client.set(lockKey, 'another-replica', 'PX', 60_000);
    const { ports, configDir, certsDir } = await setup(
      'http-01',
      `  redis: { url: "${redis.url}/0", keyPrefix: "edge:" }\n`,
    );
    const running = await startInProcess(configDir, certsDir);
    await until(async () => (await ordersTotal(running.metricsServer.port, 'locked')) >= 1, {
      timeoutMs: 10_000,
      what: 'a locked result',
    });
    expect(await ordersTotal(running.metricsServer.port, 'issued')).toBe(0);
    expect((await acmePage(running.admin.port))[0]?.nextAttemptAt).not.toBeNull();

    await redis.client.del(lockKey);
    await untilServedFromCertsDir(certsDir, ports.httpsPort);
    expect(await ordersTotal(running.metricsServer.port, 'issued')).toBe(1);
    // The lock was released and the challenge answer removed.
    expect(await redis.client.keys('edge:*')).toEqual([]);
    // The password is not shown on the admin port either.
    const dump = (await get(running.admin.port, '/config_dump')).body;
    expect(dump).toContain(`redis://:***@127.0.0.1:${redis.port}/0`);
    expect(dump).not.toContain('hunter2');
  });

  it('Redis down: the attempt fails, is counted and backs off; the process keeps going and never logs the password', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'debug',
      destination: { write: (s: string) => void lines.push(s) },
    });
    const certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-redis-down-'));
    cleanups.push(() => rm(certsDir, { recursive: true, force: true }));
    const results: string[] = [];
    const runner = createAcmeRunner({
      role: 'order',
      certsDir,
      logger,
      metrics: { orderResult: (_i, _c, r) => void results.push(r) },
    });
    cleanups.push(() => runner.close());
    const closed = await freePort();
    const { resources, diagnostics } = loadResources(
      [
        {
          file: 'down.yaml',
          text: `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { url: "redis://sluice:hunter2@127.0.0.1:${closed}/0" }
  acme: { issuers: [{ name: pebble, directoryUrl: "https://127.0.0.1:${closed}/dir" }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: istio-system, annotations: { sluice.dev/acme-issuer: pebble } }
spec:
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [${HOST}]
      tls: { mode: SIMPLE, credentialName: site }
`,
        },
      ],
      { defaultNamespace: 'default' },
    );
    expect(diagnostics.filter((d) => d.level === 'error')).toEqual([]);
    runner.update(resources);
    const target = (await until(() => runner.status().find((t) => t.failures === 1), {
      timeoutMs: 10_000,
      what: 'a failed attempt',
    }))!;
    expect(results).toEqual(['failed']);
    expect(Date.parse(target.nextAttemptAt!)).toBeGreaterThan(Date.now() + 20_000);
    expect(target.lastError).toMatch(
      new RegExp(`^redis redis://sluice:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/0: `),
    );
    const log = lines.join('');
    expect(log).toContain(`redis://sluice:***@127.0.0.1:${closed}/0`);
    expect(log).not.toContain('hunter2');
  });
});

describe('sluice serve --workers 2 runs ACME in the primary', () => {
  for (const challenge of ['http-01', 'tls-alpn-01'] as const)
    it(`the primary orders, a worker answers ${challenge} from the shared store, every worker serves the certificate`, async () => {
      const { pebble, ports, configDir, certsDir } = await setup(challenge);
      const child = await startServeChild(configDir, [
        ...serveArgs(configDir, certsDir).slice(2),
        '--workers',
        '2',
      ]);
      cleanups.push(() => child.proc.stop('SIGKILL'));
      await untilServedFromCertsDir(certsDir, ports.httpsPort);
      const root = await pebble.rootPem();
      // Fresh connections: the primary spreads them over both workers.
      for (let i = 0; i < 4; i++) expect(await verifiedGet(ports.httpsPort, root)).toBe(200);
      expect(await ordersTotal(child.metricsPort, 'issued')).toBe(1);
      const rows = await child.admin<AcmeTargetRow[]>('/acme');
      expect(rows.map((r) => [r.credential, r.hosts, r.failures])).toEqual([['site', [HOST], 0]]);
      // Only the primary ordered: one "ordering certificate" line, from the process without a worker slot.
      const ordering = child.logs().filter((l) => l['msg'] === 'ordering certificate');
      expect(ordering.map((l) => l['worker'])).toEqual([undefined]);
    }, 40_000);
});

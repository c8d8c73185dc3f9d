/**
 * Status and admin ports (issue 4 item 8; DESIGN §4 "Ports and endpoints") on the real serve code.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, type RunningGateway } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import {
  freePort,
  request,
  gatewayYaml,
  invalidRouteYaml,
  makeConfigDir,
  routeYaml,
  upstreamsYaml,
  type ConfigDir,
} from '../support/ops-config.ts';
import { get } from '../support/serve-child.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const KEY_TEXT = '-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n';
const KEY_B64 = Buffer.from(KEY_TEXT).toString('base64');
const SECRET = `apiVersion: v1
kind: Secret
metadata: { name: shop-cert, namespace: istio-system }
type: kubernetes.io/tls
data:
  tls.crt: ${Buffer.from('-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n').toString('base64')}
  tls.key: ${KEY_B64}
`;

async function start(
  files: Record<string, string>,
  drainDelay = '0',
): Promise<{ running: RunningGateway; dir: ConfigDir }> {
  const dir = await makeConfigDir(files);
  cleanups.push(() => dir.remove());
  const opts = parseOptions(
    'serve',
    [
      '--config',
      dir.dir,
      '--bind',
      '127.0.0.1',
      '--status-port',
      '0',
      '--metrics-port',
      '0',
      '--admin-port',
      '0',
      '--workers',
      '1',
      '--drain-delay',
      drainDelay,
      // Never the repository's ./certs: the quickstart writes a credential there.
      '--certs-dir',
      `${dir.dir}/.no-certs`,
    ],
    {},
  );
  const running = await startServe(opts, { logger: silentLogger() });
  cleanups.push(() => running.close());
  return { running, dir };
}

const status = (r: RunningGateway, p: string): Promise<number> => get(r.status.port, p).then((x) => x.status);
const admin = (r: RunningGateway, p: string, method = 'GET'): Promise<{ status: number; body: string }> =>
  get(r.admin.port, p, method);

describe('status port', () => {
  it('/healthz/ready is 503 until the first config is compiled and bound, then 200; /healthz/live always 200', async () => {
    const a = await startEcho({ name: 'a' });
    cleanups.push(() => a.close());
    const port = await freePort();
    const { running, dir } = await start({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: a.port }),
      'route.yaml': invalidRouteYaml(),
    });
    await until(() => running.loop.stats.rejected === 1, { what: 'the invalid first config rejected' });
    expect(await status(running, '/healthz/ready')).toBe(503);
    expect(await status(running, '/healthz/live')).toBe(200);

    // Valid, but its port is taken: still not ready.
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    await dir.write('route.yaml', routeYaml(1, 'a'));
    await until(() => running.loop.stats.rejected === 2, { what: 'the unbindable config rejected' });
    expect(await status(running, '/healthz/ready')).toBe(503);

    await new Promise((r) => blocker.close(r));
    await running.reload();
    await until(async () => (await status(running, '/healthz/ready')) === 200, { what: 'ready once bound' });
  });

  it('/healthz/ready turns 503 the moment a drain starts', async () => {
    const port = await freePort();
    const { running } = await start(
      { 'gateway.yaml': gatewayYaml([port]), 'route.yaml': routeYaml(1, 'a') },
      '1',
    );
    await until(async () => (await status(running, '/healthz/ready')) === 200, { what: 'ready' });
    const drained = running.drain();
    expect(await status(running, '/healthz/ready')).toBe(503);
    expect(await status(running, '/healthz/live')).toBe(200);
    await running.close();
    await drained.catch(() => undefined);
  });
});

describe('admin port', () => {
  it('/config_dump has the resources and the compiled snapshot, never a Secret key', async () => {
    const port = await freePort();
    const { running } = await start({
      'gateway.yaml': gatewayYaml([port]),
      'route.yaml': routeYaml(1, 'a'),
      'secret.yaml': SECRET,
    });
    await until(() => running.isReady(), { what: 'ready' });
    const dump = await admin(running, '/config_dump');
    expect(dump.status).toBe(200);
    const parsed = JSON.parse(dump.body) as {
      version: number;
      resources: { kind: string; name: string }[];
      snapshot: unknown;
    };
    expect(parsed.version).toBe(1);
    expect(parsed.resources.map((r) => `${r.kind}/${r.name}`).sort()).toEqual([
      'Gateway/gw',
      'Secret/shop-cert',
      'VirtualService/shop',
    ]);
    expect(parsed.snapshot).not.toBeNull();
    expect(dump.body).toContain('example.com');
    expect(dump.body).toMatch(/\[redacted sha256:[0-9a-f]{16}\]/);
    for (const leak of [KEY_B64, 'TOPSECRETKEYMATERIAL', 'BEGIN PRIVATE KEY', KEY_B64.slice(8, 40)])
      expect(dump.body).not.toContain(leak);
  });

  it('/routes, /clusters, /stats, /workers answer JSON', async () => {
    const a = await startEcho({ name: 'a' });
    cleanups.push(() => a.close());
    const port = await freePort();
    const { running } = await start({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: a.port }),
      'route.yaml': routeYaml(1, 'a'),
    });
    await until(() => running.isReady(), { what: 'ready' });
    expect((await request(port)).status).toBe(200);
    const routes = JSON.parse((await admin(running, '/routes')).body) as unknown[];
    expect(JSON.stringify(routes)).toContain('example.com');
    expect(JSON.stringify(routes)).toContain('a.test.svc.cluster.local');
    expect((await admin(running, '/clusters')).status).toBe(200);
    const stats = JSON.parse((await admin(running, '/stats')).body) as {
      stats: { name: string; labels?: Record<string, string>; value: number }[];
    };
    expect(stats.stats).toContainEqual({
      name: 'sluice_config_reloads_total',
      labels: { result: 'accepted' },
      value: 1,
    });
    expect(stats.stats).toContainEqual({ name: 'sluice_snapshot_version', value: 1 });
    const pools = stats.stats.filter((x) => x.name === 'sluice_upstream_connections');
    expect(pools.map((x) => x.labels?.['cluster'])).toEqual([
      expect.stringContaining('a.test.svc.cluster.local'),
    ]);
    const workers = JSON.parse((await admin(running, '/workers')).body) as { pid: number; version: number }[];
    expect(workers).toEqual([expect.objectContaining({ pid: process.pid, version: 1 })]);
  });

  it('/logging: GET shows the level, POST ?level= sets it', async () => {
    const port = await freePort();
    const { running } = await start({ 'gateway.yaml': gatewayYaml([port]) });
    expect(await admin(running, '/logging')).toEqual({ status: 200, body: 'level: silent\n' });
    expect((await admin(running, '/logging?level=debug', 'POST')).body).toBe('level: debug\n');
    expect(running.logger.level).toBe('debug');
    expect((await admin(running, '/logging')).body).toBe('level: debug\n');
    expect((await admin(running, '/logging?level=info')).status).toBe(405);
    expect((await admin(running, '/logging?level=loud', 'POST')).status).toBe(400);
    expect(running.logger.level).toBe('debug');
  });
});

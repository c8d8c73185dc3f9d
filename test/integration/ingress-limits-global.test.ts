/**
 * `sluice.dev/limit-storage: Global` on an Ingress (issue 15 item 2): two real `sluice serve`
 * processes sharing one real redis-server admit one Ingress's limit-rpm once in all, per client
 * IP, shared by the Ingress's paths, 503 beyond; without the annotation each process would admit
 * its own (the per-replica count the other Ingress tests show).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LIMIT_STORAGE_ANNOTATION } from '../../src/config/ingress/annotations.ts';
import { ingressYaml, path, serviceYaml } from '../support/ingress.ts';
import { freePort, makeConfigDir, request } from '../support/ops-config.ts';
import { startRedisServer } from '../support/redis.ts';
import { startServeChild } from '../support/serve-child.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const HOST = 'limits.example.com';
/** limit-rpm 1 × multiplier 100: nginx admits burst + 1 = 101 at once, then one a minute. */
const ADMITTED = 101;

const ingress = (name: string, rpmMultiplier: number, paths: readonly string[]): string =>
  ingressYaml({
    name,
    host: HOST,
    annotations: {
      'limit-rpm': '1',
      'limit-burst-multiplier': String(rpmMultiplier),
      [LIMIT_STORAGE_ANNOTATION]: 'Global',
    },
    paths: paths.map((p) => path(p, 'Prefix', 'main')),
  });

describe('Ingress limits with sluice.dev/limit-storage: Global', () => {
  it('two serve processes sharing one redis-server admit the Ingress’s burst once in all, then 503', async () => {
    const redis = await startRedisServer();
    cleanups.push(() => redis.close());
    const up = await startEcho({ name: 'main' });
    cleanups.push(() => up.close());
    const files = {
      'ingress.yaml': [
        ingress('web', 100, ['/a', '/b']),
        // Its own bucket, only to see each process count in Redis before the test counts.
        ingress('warm', 1000, ['/warm']),
        serviceYaml('main', up.port),
      ].join('---\n'),
      // A long timeout: a busy machine must not turn Redis's answer into the local fallback's.
      'mesh.yaml': `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { url: "${redis.url}", keyPrefix: "ing:", timeout: 2s }
`,
    };
    const ports = [await freePort(), await freePort()];
    await Promise.all(
      ports.map(async (port) => {
        const dir = await makeConfigDir(files);
        cleanups.push(() => dir.remove());
        const child = await startServeChild(dir.dir, ['--ingress-http-port', String(port)]);
        cleanups.push(() => child.proc.stop('SIGKILL'));
        await until(async () => (await child.readiness()) === 200, { timeoutMs: 20_000, what: 'ready' });
      }),
    );
    // The warm Ingress's token bucket goes down by one for each request Redis counts.
    const warmKey = async (): Promise<string | undefined> =>
      (await redis.client.keys('ing:rl:ingress/default/warm/*'))[0];
    const tokens = async (): Promise<number> => {
      const key = await warmKey();
      return key === undefined ? Infinity : Number(await redis.client.hget(key, 't'));
    };
    for (const port of ports)
      await until(
        async () => {
          const before = await tokens();
          expect((await request(port, '/warm', { host: HOST })).status).toBe(200);
          return (await tokens()) < before;
        },
        { what: `the process on ${port} counting in Redis` },
      );
    const warmed = up.seen.length;

    // Twice the burst, 4 at a time, alternating processes and the Ingress's two paths.
    const counts = new Map<number, number>();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < 2 * ADMITTED) {
        const i = next++;
        const r = await request(ports[i % 2]!, i % 4 < 2 ? '/a' : '/b/x', { host: HOST });
        counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 4 }, lane));
    expect([...counts.keys()].sort()).toEqual([200, 503]);
    // Refilled at one a minute: the test's seconds may add one token, never a process's own budget.
    expect(counts.get(200)).toBeGreaterThanOrEqual(ADMITTED);
    expect(counts.get(200)).toBeLessThanOrEqual(ADMITTED + 1);
    expect(up.seen.length - warmed).toBe(counts.get(200));
    // One bucket for the Ingress (both paths, both processes), keyed by the client's address.
    expect(await redis.client.keys('ing:rl:ingress/default/web/*')).toEqual([
      `ing:rl:ingress/default/web/limit-rpm|T1/60000/${ADMITTED}\n9:127.0.0.1`,
    ]);
  });
});

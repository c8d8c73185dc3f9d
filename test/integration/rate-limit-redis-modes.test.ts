/**
 * Global rate limits on Redis Sentinel and Redis Cluster (MeshConfig `redis.sentinel`,
 * `redis.cluster`), against real redis-server processes on free loopback ports: a master, a
 * replica and a Sentinel, failed over under traffic; a 3-master Cluster where every bucket of a
 * request shares one hash slot (so one script call covers them) and two sluice processes together
 * admit the configured number.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request as undiciRequest } from 'undici';
import { startEcho } from '../support/upstreams.ts';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { trafficYaml } from '../support/traffic-config.ts';
import { startRedisCluster, startRedisSentinel, SENTINEL_MASTER } from '../support/redis-topologies.ts';
import { until } from '../support/until.ts';
import { startPacedLoad } from '../support/paced-load.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';
import { startServeChild } from '../support/serve-child.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
  await closeAllPools(true);
});

const ROUTE = `  - route: [{destination: {host: shop.internal}}]\n`;

const POLICY = (requests: number): string => `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: default}
spec:
  targetRefs: [{kind: VirtualService, name: shop}]
  storage: Global
  rules:
  - name: per-user
    key: [{requestHeader: {name: x-user}}]
    algorithm: FixedWindow
    limit: {requests: ${requests}, unit: Day}
`;

async function get(gw: TestGateway, user: string): Promise<number> {
  const res = await undiciRequest(gw.url('/'), { headers: { host: 'shop.example.com', 'x-user': user } });
  await res.body.text();
  return res.statusCode;
}

async function statuses(gw: TestGateway, user: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await get(gw, user));
  return out;
}

describe('Global rate limits on Redis Sentinel', () => {
  it('counts on the master the Sentinel names; after SENTINEL FAILOVER under traffic, only 200/429 and counting resumes on the promoted replica', async () => {
    const set = await startRedisSentinel();
    cleanups.push(() => set.close());
    const up = await startEcho({ name: 'shop' });
    cleanups.push(() => up.close());
    const gw = await startGatewayFromYaml(
      trafficYaml({ shop: up.port }, ROUTE, {
        mesh: `  redis: {sentinel: {masterName: ${SENTINEL_MASTER}, nodes: ["127.0.0.1:${set.sentinel.port}"]}, keyPrefix: "edge:", timeout: 200ms}\n`,
        extra: POLICY(3),
      }),
    );
    cleanups.push(() => gw.close());
    await until(
      async () => {
        await get(gw, 'probe');
        return (await set.master.client.keys('edge:rl:*probe*')).length > 0;
      },
      { timeoutMs: 10_000, what: 'a bucket on the master' },
    );
    expect(await statuses(gw, 'alice', 5)).toEqual([200, 200, 200, 429, 429]);
    expect(await set.master.client.hget((await set.master.client.keys('edge:rl:*alice*'))[0]!, 'c')).toBe(
      '3',
    );

    const load = startPacedLoad({
      port: gw.port,
      host: 'shop.example.com',
      headers: { 'x-user': 'load' },
      ratePerSec: 50,
      // Generous next to the 200 ms Redis timeout: nobody waits on a master that is going away.
      timeoutMs: 2000,
      check: (res) => (res.status === 200 || res.status === 429 ? null : `status ${res.status}`),
    });
    cleanups.push(() => load.stop());
    await until(() => load.done() >= 20, { what: 'load running' });
    await set.sentinel.client.call('SENTINEL', 'FAILOVER', SENTINEL_MASTER);
    await until(async () => (await set.masterPort()) === set.replica.port, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'the Sentinel naming the replica as master',
    });
    await until(
      async () => {
        await get(gw, 'after');
        return (await set.replica.client.keys('edge:rl:*after*')).length > 0;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'counting on the promoted replica' },
    );
    const atSwitch = load.done();
    await until(() => load.done() >= atSwitch + 20, { what: 'load after the failover' });
    const result = await load.stop();
    expect(result.failures).toEqual([]);
    // The promoted master has the replicated count: alice is still over her limit, a new user
    // gets exactly three.
    expect(await statuses(gw, 'alice', 1)).toEqual([429]);
    expect(await statuses(gw, 'bob', 5)).toEqual([200, 200, 200, 429, 429]);
    expect(await set.replica.client.hget((await set.replica.client.keys('edge:rl:*bob*'))[0]!, 'c')).toBe(
      '3',
    );
    expect(/role:master/.test(await set.replica.client.info('replication'))).toBe(true);
    // The Sentinel learns the replica from the master's INFO (every 10 s at first) before it can
    // fail over: more than the default 30 s on a busy machine.
  }, 90_000);
});

describe('Global rate limits on Redis Cluster', () => {
  it('two sluice processes on a 3-master cluster admit N in all; every bucket of a request in one slot, one script call', async () => {
    const cluster = await startRedisCluster();
    cleanups.push(() => cluster.close());
    const up = await startEcho({ name: 'a' });
    cleanups.push(() => up.close());
    const N = 60;
    // Two rules count every /limited request (a constant bucket and one per Host): their keys
    // must share a slot or the one script call would be refused (CROSSSLOT).
    const policy = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: limits, namespace: test }
spec:
  targetRefs: [{ kind: VirtualService, name: shop }]
  storage: Global
  failureMode: Closed
  rules:
  - name: total
    to: [{ operation: { paths: ["/limited"] } }]
    algorithm: FixedWindow
    limit: { requests: ${N}, unit: Day }
  - name: per-host
    to: [{ operation: { paths: ["/limited"] } }]
    key: [{ host: {} }]
    algorithm: SlidingWindow
    limit: { requests: 10000, unit: Hour }
  - name: warm
    to: [{ operation: { paths: ["/warm"] } }]
    algorithm: FixedWindow
    limit: { requests: 1000000, unit: Day }
`;
    const mesh = `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { cluster: { nodes: ["${cluster.addresses[0]}"] }, keyPrefix: "cl:", timeout: 2s }
`;
    const ports = [await freePort(), await freePort()];
    for (const port of ports) {
      const dir = await makeConfigDir({
        'upstreams.yaml': upstreamsYaml({ a: up.port }),
        'route.yaml': routeYaml(1, 'a'),
        'policy.yaml': policy,
        'mesh.yaml': mesh,
        'gateway.yaml': gatewayYaml([port]),
      });
      cleanups.push(() => dir.remove());
      const child = await startServeChild(dir.dir);
      cleanups.push(() => child.proc.stop('SIGKILL'));
      await until(async () => (await child.readiness()) === 200, { timeoutMs: 30_000, what: 'ready' }).catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${child.proc.output()}`);
        },
      );
    }
    const keysOnEachNode = async (): Promise<string[][]> =>
      Promise.all(cluster.nodes.map(async (n) => (await n.client.keys('cl:*')).sort()));
    // Closed: a request the cluster did not count is 500, never admitted; wait until both
    // processes' clients count in the cluster.
    for (const port of ports)
      await until(async () => (await request(port, '/warm')).status === 200, {
        timeoutMs: 15_000,
        what: 'the cluster client ready',
      });

    const counts = new Map<number, number>();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < 2 * N) {
        const r = await request(ports[next++ % 2]!, '/limited');
        counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 6 }, lane));
    expect([...counts.keys()].sort()).toEqual([200, 429]);
    expect(counts.get(200)).toBe(N);

    const perNode = await keysOnEachNode();
    const holders = perNode.filter((k) => k.length > 0);
    expect(holders).toHaveLength(1);
    const keys = holders[0]!;
    expect(keys).toHaveLength(3);
    for (const k of keys) expect(k).toMatch(/^cl:\{rl\}:test\/limits\//);
    const slots = await Promise.all(keys.map((k) => cluster.nodes[0]!.client.call('CLUSTER', 'KEYSLOT', k)));
    expect(new Set(slots).size).toBe(1);
    const holder = cluster.nodes[perNode.indexOf(keys)]!;
    expect(
      await holder.client.hget(
        keys.find((k) => k.includes('/total|'))!,
        'c',
      ),
    ).toBe(String(N));
    expect(await holder.client.zcard(keys.find((k) => k.includes('/per-host|'))!)).toBe(N);
  }, 90_000);
});

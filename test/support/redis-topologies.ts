/**
 * Real Redis topologies on free loopback ports, for the Sentinel and Cluster modes of MeshConfig
 * `redis`: a master, a replica and one Sentinel (`redis-server <conf> --sentinel`, its config
 * file in a temporary directory, since Sentinel rewrites it), or a 3-master Redis Cluster created
 * with `redis-cli --cluster create`; either over TLS only (`tls`: replication, the Sentinel's
 * connections and the cluster bus too). Every wait is on a condition; `close` kills every server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from './child-process.ts';
import { freePorts } from './pebble.ts';
import { rsaLeaf, testCa } from './certs.ts';
import { startRedisServer, type RedisServer, type RedisServerTls } from './redis.ts';
import { until } from './until.ts';

export const SENTINEL_MASTER = 'sluice-master';

/**
 * The test CA and a leaf for `hosts` (DNS names, IPv4 addresses) as the files redis-server reads,
 * in `dir`. Every server of a topology shares the leaf: replicas and the cluster bus present it too.
 */
export function writeRedisTls(dir: string, hosts: readonly string[]): RedisServerTls {
  const leaf = rsaLeaf(hosts, { clientAuth: true });
  const files = {
    certFile: join(dir, 'redis.crt'),
    keyFile: join(dir, 'redis.key'),
    caFile: join(dir, 'ca.crt'),
  };
  writeFileSync(files.certFile, leaf.certPem);
  writeFileSync(files.keyFile, leaf.keyPem);
  writeFileSync(files.caFile, testCa().certPem);
  return files;
}

const TLS_REPLICATION = ['--tls-replication', 'yes'];

export interface RedisSentinelSet {
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinel: RedisServer;
  /** The master's port as the Sentinel reports it now. */
  masterPort(): Promise<number>;
  close(): Promise<void>;
}

async function closeAll(servers: readonly RedisServer[], dir: string): Promise<void> {
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  rmSync(dir, { recursive: true, force: true });
}

export async function startRedisSentinel(opts: { tls?: RedisServerTls } = {}): Promise<RedisSentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sentinel-'));
  const started: RedisServer[] = [];
  const tls = opts.tls;
  try {
    const master = await startRedisServer({ ...(tls !== undefined ? { tls } : {}) });
    started.push(master);
    const replica = await startRedisServer({
      args: ['--replicaof', '127.0.0.1', String(master.port), ...(tls !== undefined ? TLS_REPLICATION : [])],
      ...(tls !== undefined ? { tls } : {}),
    });
    started.push(replica);
    await until(async () => /master_link_status:up/.test(await replica.client.info('replication')), {
      timeoutMs: 10_000,
      what: 'the replica in sync',
    });
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `dir ${dir}`,
        `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
        // The Sentinel's own connections to the master and the replica.
        ...(tls !== undefined ? ['tls-replication yes'] : []),
        '',
      ].join('\n'),
    );
    const sentinel = await startRedisServer({
      conf,
      args: ['--sentinel'],
      ...(tls !== undefined ? { tls } : {}),
    });
    started.push(sentinel);
    // A manual failover needs a replica the Sentinel knows (it learns them from the master's INFO,
    // every 10 s at first).
    await until(
      async () => {
        const replicas = (await sentinel.client.call('SENTINEL', 'REPLICAS', SENTINEL_MASTER)) as string[][];
        return replicas.some((r) => {
          const flags = r[r.indexOf('flags') + 1];
          return r[r.indexOf('port') + 1] === String(replica.port) && flags === 'slave';
        });
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the Sentinel knowing the replica' },
    );
    const masterPort = async (): Promise<number> => {
      const addr = (await sentinel.client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER)) as [
        string,
        string,
      ];
      return Number(addr[1]);
    };
    return { master, replica, sentinel, masterPort, close: () => closeAll(started, dir) };
  } catch (err) {
    await closeAll(started, dir);
    throw err;
  }
}

export interface RedisClusterSet {
  readonly nodes: readonly RedisServer[];
  /** `127.0.0.1:port` of every node. */
  readonly addresses: readonly string[];
  close(): Promise<void>;
}

/** Three masters, no replicas, every slot assigned; ready once each node reports cluster_state:ok. */
export async function startRedisCluster(opts: { tls?: RedisServerTls } = {}): Promise<RedisClusterSet> {
  const tls = opts.tls;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const started: RedisServer[] = [];
  try {
    // The cluster bus port is set (cluster-port, Redis 7) rather than port + 10000, which may be
    // taken or out of range.
    const buses = await freePorts(3);
    for (let i = 0; i < 3; i++)
      started.push(
        await startRedisServer({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(buses[i]),
            '--cluster-config-file',
            join(dir, `nodes-${i}.conf`),
            '--cluster-node-timeout',
            '2000',
            // The cluster bus and CLUSTER SLOTS (which then names the TLS ports).
            ...(tls !== undefined ? ['--tls-cluster', 'yes', ...TLS_REPLICATION] : []),
          ],
          ...(tls !== undefined ? { tls } : {}),
        }),
      );
    const addresses = started.map((s) => `127.0.0.1:${s.port}`);
    const cliTls = tls !== undefined ? ['--tls', '--cacert', tls.caFile] : [];
    const created = await runCommand(
      'redis-cli',
      [...cliTls, '--cluster', 'create', ...addresses, '--cluster-yes'],
      { timeoutMs: 20_000 },
    );
    if (created.code !== 0)
      throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
    await until(
      async () => {
        for (const s of started)
          if (!/cluster_state:ok/.test((await s.client.call('CLUSTER', 'INFO')) as string)) return false;
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'cluster_state:ok on every node' },
    );
    return { nodes: started, addresses, close: () => closeAll(started, dir) };
  } catch (err) {
    await closeAll(started, dir);
    throw err;
  }
}

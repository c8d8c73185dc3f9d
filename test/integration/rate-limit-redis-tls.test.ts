/**
 * MeshConfig `redis.tls`: Global rate limits counted in a Redis Sentinel set-up and a Redis
 * Cluster that speak only TLS (no plaintext port; replication, the Sentinel's own links and the
 * cluster bus over TLS too), run by the test on free loopback ports with certificates it makes,
 * through real `sluice serve` processes. A `rediss://` server whose certificate the configured
 * CA did not sign leaves the rules to failureMode and logs the refusal without a secret; naming
 * the right CA (a change of `tls` alone) reconnects and counts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeCa } from '../../src/tls/self-signed.ts';
import { until } from '../support/until.ts';
import { get, type ServeChild } from '../support/serve-child.ts';
import { startRedisServer } from '../support/redis.ts';
import {
  SENTINEL_MASTER,
  startRedisCluster,
  startRedisSentinel,
  writeRedisTls,
} from '../support/redis-topologies.ts';
import {
  counting,
  redisMeshYaml,
  serveGlobalLimit,
  statuses,
  type LimitedServe,
} from '../support/redis-limit-serve.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const PASSWORD = 'pw-Tq20dLs7-never-logged';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-redis-tls-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function serve(redis: string): Promise<LimitedServe> {
  const s = await serveGlobalLimit(redis);
  cleanups.push(() => s.close());
  return s;
}

/**
 * The dump shows the tls block as written (`shown`: its CA file or server name) and no PEM;
 * neither the dump nor the log holds `secret`.
 */
async function expectNoKeyMaterial(child: ServeChild, shown: string, secret?: string): Promise<void> {
  const dump = (await get(child.adminPort, '/config_dump')).body;
  expect(dump).toContain(JSON.stringify(shown));
  for (const text of [dump, child.proc.output()]) {
    expect(text).not.toContain('BEGIN CERTIFICATE');
    expect(text).not.toContain('PRIVATE KEY');
    if (secret !== undefined) expect(text).not.toContain(secret);
  }
}

describe('Global rate limits on Redis over TLS', () => {
  it('Sentinel: the Sentinel and the master it names are reached over TLS (caCertificates, serverName); the limit holds on the master', async () => {
    const dir = await tempDir();
    // The certificate names only redis.sluice.test: connecting to 127.0.0.1 verifies only because
    // serverName says which name to check, for the Sentinel and for the master.
    const tls = writeRedisTls(dir, ['redis.sluice.test']);
    const set = await startRedisSentinel({ tls });
    cleanups.push(() => set.close());
    const { child, port } = await serve(
      `{ sentinel: { masterName: ${SENTINEL_MASTER}, nodes: ["127.0.0.1:${set.sentinel.port}"] }, tls: { caCertificates: "${tls.caFile}", serverName: redis.sluice.test }, keyPrefix: "tls:", timeout: 2s }`,
    );
    await counting(port);
    expect(await statuses(port, 3)).toEqual([200, 200, 429]);
    const keys = await set.master.client.keys('tls:rl:*');
    expect(keys).toHaveLength(1);
    expect(await set.master.client.hget(keys[0]!, 'c')).toBe('3');
    await expectNoKeyMaterial(child, tls.caFile);
  }, 90_000);

  it('Cluster: every node TLS-only (tls-cluster), seed and discovered nodes verified against caCertificates; the limit holds', async () => {
    const dir = await tempDir();
    const tls = writeRedisTls(dir, ['127.0.0.1']);
    const cluster = await startRedisCluster({ tls });
    cleanups.push(() => cluster.close());
    const { child, port } = await serve(
      `{ cluster: { nodes: ["${cluster.addresses[1]}"] }, tls: { caCertificates: "${tls.caFile}" }, keyPrefix: "tls:", timeout: 2s }`,
    );
    await counting(port);
    expect(await statuses(port, 3)).toEqual([200, 200, 429]);
    const perNode = await Promise.all(cluster.nodes.map((n) => n.client.keys('tls:*')));
    const holders = perNode.filter((k) => k.length > 0);
    expect(holders).toEqual([[expect.stringMatching(/^tls:\{rl\}:test\/limits\//)]]);
    const holder = cluster.nodes[perNode.findIndex((k) => k.length > 0)]!;
    expect(await holder.client.hget(holders[0]![0]!, 'c')).toBe('3');
    await expectNoKeyMaterial(child, tls.caFile);
  }, 90_000);

  it('rediss:// with a CA that did not sign the server: failureMode decides (Closed: 500), the refusal is logged without secrets; the right CA reconnects, insecureSkipVerify accepts any', async () => {
    const dir = await tempDir();
    const tls = writeRedisTls(dir, ['127.0.0.1']);
    const otherCa = join(dir, 'other-ca.crt');
    await writeFile(otherCa, makeCa({ commonName: 'not the Redis CA' }).certPem);
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, `${PASSWORD}\n`);
    const redis = await startRedisServer({ tls, password: PASSWORD });
    cleanups.push(() => redis.close());
    const fields = (tlsBlock: string, prefix = 'tls:'): string =>
      `{ url: "rediss://127.0.0.1:${redis.port}", passwordFile: "${passwordFile}", tls: ${tlsBlock}, keyPrefix: "${prefix}", timeout: 500ms }`;

    const { child, port, config } = await serve(fields(`{ caCertificates: "${otherCa}" }`));
    expect(await statuses(port, 2)).toEqual([500, 500]);
    const refusal = await until(
      () =>
        child
          .logs()
          .find((l) => l['msg'] === 'rate-limit store error' && /certificate/i.test(String(l['err']))),
      { timeoutMs: 10_000, what: 'the refused certificate logged' },
    );
    expect(refusal?.['redis']).toBe(`rediss://127.0.0.1:${redis.port}`);
    expect(await redis.client.keys('tls:*')).toEqual([]);
    await expectNoKeyMaterial(child, otherCa, PASSWORD);

    // Only tls.caCertificates changes: the store reconnects and counts.
    await config.write('mesh.yaml', redisMeshYaml(fields(`{ caCertificates: "${tls.caFile}" }`)));
    await counting(port);
    expect(await statuses(port, 3)).toEqual([200, 200, 429]);
    expect(await redis.client.hget((await redis.client.keys('tls:rl:*'))[0]!, 'c')).toBe('3');

    // No CA and a name the certificate does not carry: only skipping verification connects.
    await config.write(
      'mesh.yaml',
      redisMeshYaml(fields('{ insecureSkipVerify: true, serverName: not-the-name.example }', 'skip:')),
    );
    await counting(port);
    expect(await redis.client.keys('skip:rl:*')).toHaveLength(1);
    await expectNoKeyMaterial(child, 'not-the-name.example', PASSWORD);
  }, 90_000);
});

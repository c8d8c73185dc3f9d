/**
 * The Redis password from a file (`redis.passwordFile`) or an environment variable
 * (`redis.passwordEnv`), with an ACL user (`redis.username`), against a real redis-server that
 * requires it: real `sluice serve` processes count in Redis, and neither their log nor
 * /config_dump ever holds the password. A variable that is not set leaves the rules to
 * failureMode, and the log names the variable, not a value.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';
import { startServeChild, type ServeChild } from '../support/serve-child.ts';
import { startRedisServer, type RedisServer } from '../support/redis.ts';
import { get } from '../support/serve-child.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const PASSWORD = 'pw-Zq81xVt3-never-logged';
const ACL_PASSWORD = 'acl-Rk55sLw0-never-logged';

const POLICY = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: limits, namespace: test }
spec:
  targetRefs: [{ kind: VirtualService, name: shop }]
  storage: Global
  failureMode: Closed
  rules:
  - name: total
    algorithm: FixedWindow
    limit: { requests: 3, unit: Day }
`;

async function serve(
  redisFields: string,
  redis: RedisServer,
  opts: { env?: NodeJS.ProcessEnv; files?: Record<string, string> } = {},
): Promise<{ child: ServeChild; port: number; dir: string }> {
  const up = await startEcho({ name: 'a' });
  cleanups.push(() => up.close());
  const port = await freePort();
  const dir = await makeConfigDir({
    'upstreams.yaml': upstreamsYaml({ a: up.port }),
    'route.yaml': routeYaml(1, 'a'),
    'policy.yaml': POLICY,
    'gateway.yaml': gatewayYaml([port]),
    'mesh.yaml': `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { url: "redis://127.0.0.1:${redis.port}", keyPrefix: "auth:", timeout: 2s, ${redisFields} }
`,
  });
  cleanups.push(() => dir.remove());
  for (const [name, text] of Object.entries(opts.files ?? {})) await writeFile(join(dir.dir, name), text);
  const child = await startServeChild(dir.dir, ['--workers', '1'], { env: opts.env ?? {} });
  cleanups.push(() => child.proc.stop('SIGKILL'));
  await until(async () => (await child.readiness()) === 200, { timeoutMs: 30_000, what: 'ready' });
  return { child, port, dir: dir.dir };
}

async function statuses(port: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await request(port, '/')).status);
  return out;
}

async function expectNoSecret(child: ServeChild, secret: string): Promise<void> {
  const dump = (await get(child.adminPort, '/config_dump')).body;
  expect(dump).toContain('"redis"');
  expect(dump).not.toContain(secret);
  expect(child.proc.output()).not.toContain(secret);
}

describe('Redis password from a file or an environment variable', () => {
  it('passwordFile: counts in a Redis that requires the password; the log and /config_dump never hold it', async () => {
    const redis = await startRedisServer({ password: PASSWORD });
    cleanups.push(() => redis.close());
    // The file is a mounted Secret: its trailing newline is not part of the password. It sits
    // outside the config directory's YAML (sluice reads only .yaml/.yml/.json there).
    const secretDir = await makeConfigDir({});
    cleanups.push(() => secretDir.remove());
    const file = join(secretDir.dir, 'password');
    await writeFile(file, `${PASSWORD}\n`);
    const { child, port } = await serve(`passwordFile: "${file}"`, redis);
    // Closed: 500 until the store answers, so the first 200 is a count in Redis.
    await until(async () => (await request(port, '/')).status === 200, {
      timeoutMs: 10_000,
      what: 'counting',
    });
    expect(await statuses(port, 3)).toEqual([200, 200, 429]);
    const keys = await redis.client.keys('auth:rl:*');
    expect(keys).toHaveLength(1);
    expect(await redis.client.hget(keys[0]!, 'c')).toBe('3');
    await expectNoSecret(child, PASSWORD);
  });

  it('username + passwordEnv: an ACL user authenticates; the variable is never shown', async () => {
    const redis = await startRedisServer();
    cleanups.push(() => redis.close());
    await redis.client.call('ACL', 'SETUSER', 'sluice', 'on', `>${ACL_PASSWORD}`, '~auth:*', '+@all');
    await redis.client.call('ACL', 'SETUSER', 'default', 'off');
    const { child, port } = await serve('username: sluice, passwordEnv: SLUICE_TEST_REDIS_PASSWORD', redis, {
      env: { SLUICE_TEST_REDIS_PASSWORD: ACL_PASSWORD },
    });
    await until(async () => (await request(port, '/')).status === 200, {
      timeoutMs: 10_000,
      what: 'counting',
    });
    expect(await statuses(port, 3)).toEqual([200, 200, 429]);
    const lines = (await redis.client.call('ACL', 'LOG')) as unknown[];
    expect(lines).toEqual([]);
    await expectNoSecret(child, ACL_PASSWORD);
  });

  it('passwordEnv not set: failureMode decides (Closed: 500 RLSE), and the log names the variable', async () => {
    const redis = await startRedisServer({ password: PASSWORD });
    cleanups.push(() => redis.close());
    const { child, port } = await serve('passwordEnv: SLUICE_TEST_UNSET_PASSWORD', redis);
    expect(await statuses(port, 2)).toEqual([500, 500]);
    await until(
      () =>
        child
          .logs()
          .some(
            (l) =>
              l['msg'] === 'rate-limit store has no password; failureMode decides' &&
              String(l['err']).includes('SLUICE_TEST_UNSET_PASSWORD'),
          ),
      { what: 'the log line naming the variable' },
    );
    expect(await redis.client.keys('auth:*')).toEqual([]);
  });
});

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
import { makeConfigDir } from '../support/ops-config.ts';
import { until } from '../support/until.ts';
import { get, type ServeChild } from '../support/serve-child.ts';
import { startRedisServer, type RedisServer } from '../support/redis.ts';
import { counting, serveGlobalLimit, statuses, type LimitedServe } from '../support/redis-limit-serve.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const PASSWORD = 'pw-Zq81xVt3-never-logged';
const ACL_PASSWORD = 'acl-Rk55sLw0-never-logged';

async function serve(
  redisFields: string,
  redis: RedisServer,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<LimitedServe> {
  const s = await serveGlobalLimit(
    `{ url: "redis://127.0.0.1:${redis.port}", keyPrefix: "auth:", timeout: 2s, ${redisFields} }`,
    opts,
  );
  cleanups.push(() => s.close());
  return s;
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
    await counting(port);
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
    await counting(port);
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
              l['msg'] === 'rate-limit store credentials unavailable; failureMode decides' &&
              String(l['err']).includes('SLUICE_TEST_UNSET_PASSWORD'),
          ),
      { what: 'the log line naming the variable' },
    );
    expect(await redis.client.keys('auth:*')).toEqual([]);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  describeRedisTarget,
  readRedisCredentials,
  readRedisPassword,
  redisNodeProblem,
  redisTargetKey,
} from '../../../src/util/redis-client.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function secretFile(text: string, name = 'password'): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-secret-'));
  dirs.push(dir);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('Redis targets', () => {
  it('reads the password from a file (without its trailing newline) or a variable', () => {
    expect(readRedisPassword({ url: 'redis://r', passwordFile: secretFile('s3cret\n') })).toBe('s3cret');
    expect(readRedisPassword({ url: 'redis://r', passwordEnv: 'PW' }, { PW: 'from-env' })).toBe('from-env');
    expect(readRedisPassword({ url: 'redis://:inline@r' })).toBeUndefined();
  });

  it('names the file or variable it cannot read, never a value', () => {
    expect(() => readRedisPassword({ url: 'redis://r', passwordFile: '/nonexistent/pw' })).toThrow(
      'redis passwordFile /nonexistent/pw: ENOENT',
    );
    const empty = secretFile('\n');
    expect(() => readRedisPassword({ url: 'redis://r', passwordFile: empty })).toThrow(`${empty} is empty`);
    expect(() => readRedisPassword({ url: 'redis://r', passwordEnv: 'PW' }, {})).toThrow(
      'redis passwordEnv PW is not set',
    );
  });

  it('reads the CA certificates tls.caCertificates names, with the password, when asked', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const ca = secretFile(pem, 'ca.crt');
    expect(
      readRedisCredentials(
        { cluster: { nodes: ['r:6379'] }, passwordEnv: 'PW', tls: { caCertificates: ca } },
        { PW: 'from-env' },
      ),
    ).toEqual({ password: 'from-env', caPem: pem });
    expect(readRedisCredentials({ sentinel: { masterName: 'm', nodes: ['r:26379'] }, tls: {} })).toEqual({});
  });

  it('names a CA file it cannot use, never its content', () => {
    expect(() =>
      readRedisCredentials({ url: 'rediss://r', tls: { caCertificates: '/nonexistent/ca.crt' } }),
    ).toThrow('redis tls.caCertificates /nonexistent/ca.crt: ENOENT');
    const notPem = secretFile('hunter2-not-a-certificate', 'ca.crt');
    let message = '';
    try {
      readRedisCredentials({ url: 'rediss://r', tls: { caCertificates: notPem } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`redis tls.caCertificates ${notPem} holds no PEM certificate`);
  });

  it('describes a target for logs without its password', () => {
    expect(describeRedisTarget({ url: 'redis://u:hunter2@r:6379/1' })).toBe('redis://u:***@r:6379/1');
    expect(describeRedisTarget({ sentinel: { masterName: 'm', nodes: ['a:26379', 'b:26379'] } })).toBe(
      'sentinel m@a:26379,b:26379',
    );
    expect(describeRedisTarget({ cluster: { nodes: ['a:6379'] }, passwordEnv: 'PW' })).toBe('cluster a:6379');
    expect(describeRedisTarget({ cluster: { nodes: ['a:6379'] }, tls: { caCertificates: '/ca' } })).toBe(
      'cluster a:6379 (tls)',
    );
  });

  it('keys a target by every field that changes the connection', () => {
    const a = redisTargetKey({ url: 'redis://r', passwordFile: '/a' });
    expect(redisTargetKey({ passwordFile: '/a', url: 'redis://r' })).toBe(a);
    expect(redisTargetKey({ url: 'redis://r', passwordFile: '/b' })).not.toBe(a);
    const nodes = { cluster: { nodes: ['r:6379'] } };
    const keys = [
      redisTargetKey(nodes),
      redisTargetKey({ ...nodes, tls: {} }),
      redisTargetKey({ ...nodes, tls: { caCertificates: '/ca' } }),
      redisTargetKey({ ...nodes, tls: { caCertificates: '/other-ca' } }),
      redisTargetKey({ ...nodes, tls: { caCertificates: '/ca', serverName: 'redis.example' } }),
      redisTargetKey({ ...nodes, tls: { insecureSkipVerify: true } }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(redisTargetKey({ ...nodes, tls: { insecureSkipVerify: false } })).toBe(keys[1]);
  });

  it.each([
    ['10.0.0.1:6379', null],
    ['redis-0.redis.svc:6379', null],
    ['[::1]:26379', null],
    ['r', 'must be host:port ([address]:port for IPv6)'],
    ['::1:6379', 'must be host:port ([address]:port for IPv6)'],
    ['r:0', 'the port must be 1-65535'],
    ['r:70000', 'the port must be 1-65535'],
  ])('node %s', (node, problem) => {
    expect(redisNodeProblem(node)).toBe(problem);
  });
});

/**
 * ioredis defines a subclass of String when it loads (its RESP3 VerbatimString), which slows
 * string handling in the whole process (src/util/load-ioredis.ts). In a fresh process, creating
 * a Redis client through sluice's own path must leave no subclass of String behind, and ioredis
 * must still work (its replies are decoded: the Redis integration tests).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function run(code: string): { stringSubclass: boolean; decoderLoaded: boolean } {
  const script = `
const { createRequire } = await import('node:module');
${code}
const require = createRequire(import.meta.url);
const cache = require.cache;
const path = require.resolve('ioredis/built/resp/verbatim-string.js');
const decoderLoaded = Object.keys(cache).some((k) => k.endsWith('/ioredis/built/resp/decoder.js'));
const { VerbatimString } = require(path);
console.log(JSON.stringify({ stringSubclass: VerbatimString.prototype instanceof String, decoderLoaded }));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim()) as { stringSubclass: boolean; decoderLoaded: boolean };
}

describe('loading ioredis', () => {
  it('a Redis client made the way sluice makes one leaves no subclass of String in the process', () => {
    expect(
      run(`
const { createRedisClient } = await import('./src/util/redis-client.ts');
const c = createRedisClient({ url: 'redis://127.0.0.1:1' }, {}, {
  connectTimeout: 100, commandTimeout: 100, lazyConnect: true, maxRetriesPerRequest: 0, retryDelayMs: () => 1000,
});
c.disconnect();
`),
    ).toEqual({ stringSubclass: false, decoderLoaded: true });
  });

  it('ioredis loaded as it is does define one (the check above can see it)', () => {
    expect(run(`createRequire(import.meta.url)('ioredis');`)).toEqual({
      stringSubclass: true,
      decoderLoaded: true,
    });
  });
});

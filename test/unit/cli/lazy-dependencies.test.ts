/**
 * acme-client (~40 MiB resident), ioredis (~27 MiB), node-forge (~13 MiB) and
 * @kubernetes/client-node are loaded when a config first needs them, not when `serve` starts: a
 * gateway without ACME, Redis or --kubernetes never pays for them (the start-up RSS budget). This
 * loads serve's modules in a fresh process and lists which of them were loaded: CommonJS from
 * the require cache, ES modules (client-node is one) through a load hook.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function loadedAfter(code: string): string[] {
  const script = `
const { createRequire, registerHooks } = await import('node:module');
const esm = [];
registerHooks({ load(url, context, next) { esm.push(url); return next(url, context); } });
${code}
const cache = createRequire(import.meta.url).cache;
const names = ['acme-client', 'ioredis', 'node-forge', '@kubernetes/client-node'];
const loaded = [...Object.keys(cache), ...esm];
const hit = names.filter((n) => loaded.some((k) => k.includes('/node_modules/' + n + '/')));
console.log(JSON.stringify(hit));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim()) as string[];
}

describe('heavy dependencies load on first use', () => {
  it('importing serve (and the worker entry) loads none of acme-client, ioredis, node-forge, client-node', () => {
    expect(
      loadedAfter(`await import('./src/cli/serve.ts'); await import('./src/cli/serve-process.ts');`),
    ).toEqual([]);
  });

  it('the config thread loads client-node only when a Kubernetes provider starts', () => {
    expect(
      loadedAfter(`
await import('./src/providers/kubernetes/index.ts');
await import('./src/providers/combine.ts');
`),
    ).toEqual([]);
    expect(
      loadedAfter(`
const { loadClientNode } = await import('./src/providers/kubernetes/client.ts');
await loadClientNode();
`),
    ).toEqual(['@kubernetes/client-node']);
  });

  it('creating an ACME manager and a Redis connection loads them (the check above can see them)', () => {
    expect(
      loadedAfter(`
const { createAcmeManager } = await import('./src/providers/acme.ts');
const { connectRedis } = await import('./src/control/redis-connection.ts');
const { makeAlpnChallengeCert } = await import('./src/tls/acme-tokens.ts');
const { silentLogger } = await import('./src/observability/logger.ts');
const { createFileLock } = await import('./src/providers/acme-lock.ts');
const { createAcmeTokens } = await import('./src/tls/acme-tokens.ts');
const m = createAcmeManager({ issuers: [], certsDir: '/nonexistent', logger: silentLogger(), lock: createFileLock('/nonexistent'), tokens: createAcmeTokens() });
await m.stop();
const c = connectRedis({ url: 'redis://127.0.0.1:1' }, silentLogger());
await c.close();
const { generateKeyPairSync } = await import('node:crypto');
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
makeAlpnChallengeCert('a.example', 'k', privateKey.export({ type: 'pkcs1', format: 'pem' }));
`).sort(),
    ).toEqual(['acme-client', 'ioredis', 'node-forge']);
  });
});

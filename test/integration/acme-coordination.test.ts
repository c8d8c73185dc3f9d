/**
 * ACME with several replicas and with failures, against the real pebble server (issue 5 item 6):
 * one replica orders while the others see the lock (Redis, or the --certs-dir lock file without
 * Redis) and pick the result up from the files; failed orders are counted, back off
 * exponentially, and leave the existing certificate in place.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.ts';
import {
  createAcmeManager,
  type AcmeManager,
  type AcmeManagerOptions,
  type AcmeOrderResult,
} from '../../src/providers/acme.ts';
import {
  createFileChallengeStore,
  createFileLock,
  createRedisChallengeStore,
  createRedisLock,
  type AcmeLock,
} from '../../src/providers/acme-lock.ts';
import { createAcmeTokens, type AcmeTokens, type SharedChallengeStore } from '../../src/tls/acme-tokens.ts';
import { makeCa, makeServerCert } from '../../src/tls/self-signed.ts';
import type { AcmeIssuerSpec } from '../../src/model/sluice.ts';
import {
  acmeGateway,
  freePort,
  startChallengeResponders,
  startPebble,
  type ChallengeResponders,
  type Pebble,
} from '../support/pebble.ts';
import { startRedisServer } from '../support/redis.ts';

const tokens = createAcmeTokens();
// The replica pebble's validation requests reach (a load balancer's pick).
let front: AcmeTokens = tokens;
let responders: ChallengeResponders;
let pebble: Pebble;
let certsDir: string;
const managers: AcmeManager[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  responders = await startChallengeResponders(() => front);
  pebble = await startPebble({ httpPort: responders.httpPort, tlsPort: responders.tlsPort });
});

afterAll(async () => {
  await pebble?.close();
  await responders?.close();
});

afterEach(async () => {
  front = tokens;
  await Promise.all(managers.splice(0).map((m) => m.stop()));
  for (const c of cleanups.splice(0).reverse()) await c();
  if (certsDir) await rm(certsDir, { recursive: true, force: true });
});

const pebbleIssuer = (): AcmeIssuerSpec => ({
  name: 'pebble',
  directoryUrl: pebble.directoryUrl,
  caBundle: pebble.caPem,
  challenge: 'http-01',
});

function manager(over: Partial<AcmeManagerOptions> & Pick<AcmeManagerOptions, 'lock'>) {
  const results: AcmeOrderResult[] = [];
  const m = createAcmeManager({
    issuers: [pebbleIssuer()],
    certsDir,
    logger: silentLogger(),
    tokens,
    pollMinMs: 100,
    requestRetries: 0,
    metrics: { orderResult: (_i, _c, r) => void results.push(r) },
    ...over,
  });
  managers.push(m);
  return { m, results };
}

/** A real redis-server for this test, stopped after it. */
async function startRedis(): Promise<Redis> {
  const server = await startRedisServer();
  cleanups.push(() => server.close());
  return server.client;
}

/**
 * Two replicas order for one credential at once; the validation requests reach a third replica
 * that orders nothing, so every answer it gives comes through the shared challenge store.
 */
async function twoReplicas(
  lockA: AcmeLock,
  lockB: AcmeLock,
  shared: SharedChallengeStore,
  challenge: 'http-01' | 'tls-alpn-01',
) {
  const issuers = [{ ...pebbleIssuer(), challenge }];
  const a = manager({ lock: lockA, lockRetryMs: 0, issuers, tokens: createAcmeTokens({ shared }) });
  const b = manager({ lock: lockB, lockRetryMs: 0, issuers, tokens: createAcmeTokens({ shared }) });
  front = createAcmeTokens({ shared });
  const gw = acmeGateway('public', 'pebble', [
    { credentialName: 'shared', hosts: ['replicas.example.test'] },
  ]);
  await Promise.all([a.m.reconcile([gw]), b.m.reconcile([gw])]);
  const all = [...a.results, ...b.results].sort();
  // One replica ordered, the other found the lock taken and did not order.
  expect(all).toEqual(['issued', 'locked']);
  const cert = new X509Certificate(await readFile(join(certsDir, 'shared', 'tls.crt'), 'utf8'));
  expect(cert.checkHost('replicas.example.test')).toBe('replicas.example.test');
  // The loser's next check finds the winner's files and has nothing to order.
  const loser = a.results.includes('locked') ? a : b;
  await loser.m.reconcile([gw]);
  expect(loser.results).toEqual(['locked']);
  expect(loser.m.targets()[0]?.renewAtMs).toBeGreaterThan(Date.now());
}

describe('ACME coordination and failures', () => {
  it('with Redis, only one replica orders (SET NX PX lock), any replica answers TLS-ALPN-01, the other picks the files up', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const redis = await startRedis();
    const alpnBefore = responders.alpnHandshakes();
    await twoReplicas(
      createRedisLock(redis),
      createRedisLock(redis),
      createRedisChallengeStore(redis),
      'tls-alpn-01',
    );
    expect(responders.alpnHandshakes()).toBeGreaterThan(alpnBefore);
    // The lock is released by compare-and-delete and the challenge answers are removed.
    expect(await redis.keys('sluice:acme:*')).toEqual([]);
  });

  it('without Redis, the O_EXCL lock file and challenge files in --certs-dir do the same (HTTP-01)', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    // Both replicas see one certs dir (a shared volume in production).
    await twoReplicas(
      createFileLock(certsDir),
      createFileLock(certsDir),
      createFileChallengeStore(certsDir),
      'http-01',
    );
    expect(await readdir(join(certsDir, '.acme', 'challenges'))).toEqual([]);
  });

  it('a lock whose holder died (older than its TTL) is taken over; a live one is not', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const lock = createFileLock(certsDir);
    const held = await lock.tryAcquire('pebble:x', 60_000);
    expect(held).not.toBeNull();
    expect(await lock.tryAcquire('pebble:x', 60_000)).toBeNull();
    // A TTL shorter than the file's age makes it stale.
    await new Promise((r) => setTimeout(r, 30));
    const taken = await lock.tryAcquire('pebble:x', 10);
    expect(taken).not.toBeNull();
    // The first holder's release must not delete the new holder's file.
    await held?.release();
    expect(await lock.tryAcquire('pebble:x', 60_000)).toBeNull();
    await taken?.release();
    expect(await lock.tryAcquire('pebble:x', 60_000)).not.toBeNull();
  });

  it('an unreachable ACME server is counted, backs off exponentially and leaves the existing certificate serving', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    // An existing certificate past 2/3 of its life (issued 20 days ago for 25 days).
    const ca = makeCa();
    const old = makeServerCert(ca, ['down.example.test'], {
      days: 25,
      now: new Date(Date.now() - 20 * 86_400_000),
    });
    await mkdir(join(certsDir, 'down'), { recursive: true });
    await writeFile(join(certsDir, 'down', 'tls.crt'), old.certPem);
    await writeFile(join(certsDir, 'down', 'tls.key'), old.keyPem);
    const closed = await freePort();
    let nowMs = Date.now();
    const { m, results } = manager({
      lock: createFileLock(certsDir),
      issuers: [{ name: 'pebble', directoryUrl: `https://127.0.0.1:${closed}/dir`, caBundle: pebble.caPem }],
      now: () => nowMs,
      random: () => 1,
      backoffMinMs: 60_000,
      backoffMaxMs: 3_600_000,
    });
    const gw = acmeGateway('public', 'pebble', [{ credentialName: 'down', hosts: ['down.example.test'] }]);
    await m.reconcile([gw]);
    expect(results).toEqual(['failed']);
    let t = m.targets()[0];
    expect(t?.failures).toBe(1);
    expect(t?.nextAttemptAtMs).toBe(nowMs + 60_000);
    expect(t?.lastError).toMatch(/ECONNREFUSED .*\/dir/);
    expect(await readFile(join(certsDir, 'down', 'tls.crt'), 'utf8')).toBe(old.certPem);
    expect(await readFile(join(certsDir, 'down', 'tls.key'), 'utf8')).toBe(old.keyPem);

    // Within the back-off nothing is tried.
    nowMs += 30_000;
    await m.reconcile([gw]);
    expect(results).toEqual(['failed']);
    // After it, one more attempt, and the next delay doubles.
    nowMs += 31_000;
    await m.reconcile([gw]);
    expect(results).toEqual(['failed', 'failed']);
    t = m.targets()[0];
    expect(t?.failures).toBe(2);
    expect(t?.nextAttemptAtMs).toBe(nowMs + 120_000);
    expect(await readFile(join(certsDir, 'down', 'tls.crt'), 'utf8')).toBe(old.certPem);
  });

  it('a failed challenge (nobody answers HTTP-01) is counted and writes nothing', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    // The manager's tokens are not the ones the responder serves, so pebble gets 404s.
    const { m, results } = manager({ lock: createFileLock(certsDir), tokens: createAcmeTokens() });
    await m.reconcile([
      acmeGateway('public', 'pebble', [{ credentialName: 'nobody', hosts: ['nobody.example.test'] }]),
    ]);
    expect(results).toEqual(['failed']);
    expect(m.targets()[0]?.lastError).toMatch(/acme-challenge.* 404/);
    await expect(readFile(join(certsDir, 'nobody', 'tls.crt'))).rejects.toThrow(/ENOENT/);
  });
});

/**
 * The Global store against a real redis-server on a free port: the three algorithms in one script
 * call with Redis's clock, the checks of requests arriving while a call is on the wire batched, keys with the prefix that expire, a refused request counted nowhere;
 * the timeout, the breaker (open, half-open probe, closed again), Redis restarting, and Redis
 * hung rather than gone (stopped with SIGSTOP; a server that accepts and never answers).
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis.ts';
import { until } from '../support/until.ts';
import { closedPort } from '../support/upstreams.ts';
import { createRedisStore, type BreakerState, type RedisStore } from '../../src/ratelimit/redis-store.ts';
import type { LimitCheck, LimitShape, LimitVerdict } from '../../src/ratelimit/limits.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

async function redis(): Promise<RedisServer> {
  const r = await startRedisServer();
  cleanups.push(() => r.close());
  return r;
}

function store(
  url: string,
  opts: { timeoutMs?: number; onBreaker?: (s: BreakerState) => void } = {},
): RedisStore {
  const s = createRedisStore({
    target: { url },
    keyPrefix: 'test:',
    timeoutMs: opts.timeoutMs ?? 200,
    breakerOpenMs: 300,
    ...(opts.onBreaker ? { onBreaker: opts.onBreaker } : {}),
  });
  cleanups.push(() => s.close());
  return s;
}

const shape = (
  algorithm: LimitShape['algorithm'],
  requests: number,
  windowMs: number,
  burst = requests,
): LimitShape => ({
  algorithm,
  requests,
  windowMs,
  burst,
});

const check = (bucket: string, limit: LimitShape, shadow = false): LimitCheck => ({ bucket, limit, shadow });

/** The store's answer; a breaker that is open (false: failureMode decides) as a failure too. */
const ask = (s: RedisStore, checks: readonly LimitCheck[]): Promise<readonly LimitVerdict[]> =>
  new Promise((resolve, reject) => {
    if (!s.check(checks, { answered: resolve, failed: () => reject(new Error('store failed')) }))
      reject(new Error('breaker open'));
  });

const NO_ANSWER_EXPECTED = {
  answered: () => expect.fail('an open breaker answered'),
  failed: () => expect.fail('an open breaker made a call'),
};

/** The store connects in the background; the first call after creation may find it not ready yet. */
async function ready(s: RedisStore): Promise<void> {
  await until(
    async () =>
      (await ask(s, [check('warm-up', shape('FixedWindow', 1_000_000, 1000))]).catch(() => null)) !== null,
    {
      timeoutMs: 5000,
      what: 'the store answering',
    },
  );
}

async function admittedOf(s: RedisStore, c: LimitCheck, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await ask(s, [c]))[0]!.allowed) ok++;
  return ok;
}

describe('Redis rate-limit store', () => {
  it('FixedWindow admits N per window aligned on Redis TIME; the key carries the prefix and expires with the window', async () => {
    const r = await redis();
    const s = store(r.url);
    await ready(s);
    const DAY = 86_400_000;
    const l = shape('FixedWindow', 5, DAY);
    const v = [];
    for (let i = 0; i < 7; i++) v.push((await ask(s, [check('fw', l)]))[0]!);
    expect(v.map((x) => x.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(v.map((x) => x.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
    const [sec, micro] = await r.client.time();
    const nowMs = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    // The reset is the end of the day by Redis's clock.
    expect(Math.abs(v[6]!.resetMs - (DAY - (nowMs % DAY)))).toBeLessThan(200);
    expect(await r.client.hget('test:rl:fw', 'c')).toBe('5');
    const pttl = await r.client.pttl('test:rl:fw');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(DAY);
  });

  it('SlidingWindow never admits more than N in a window; TokenBucket admits its burst then refills', async () => {
    const r = await redis();
    const s = store(r.url);
    await ready(s);
    expect(await admittedOf(s, check('sw', shape('SlidingWindow', 4, 60_000)), 8)).toBe(4);
    expect(await r.client.zcard('test:rl:sw')).toBe(4);
    expect(await r.client.pttl('test:rl:sw')).toBeGreaterThan(0);
    const tb = shape('TokenBucket', 10, 1000, 3);
    expect(await admittedOf(s, check('tb', tb), 6)).toBe(3);
    const refused = (await ask(s, [check('tb', tb)]))[0]!;
    expect(refused.allowed).toBe(false);
    expect(refused.resetMs).toBeGreaterThan(0);
    expect(refused.resetMs).toBeLessThanOrEqual(100);
    await until(async () => (await ask(s, [check('tb', tb)]))[0]!.allowed, {
      timeoutMs: 2000,
      what: 'a refilled token',
    });
    expect(await r.client.pttl('test:rl:tb')).toBeGreaterThan(0);
  });

  it('all buckets in one call: refused by one, counted in none; shadow never refuses', async () => {
    const r = await redis();
    const s = store(r.url);
    await ready(s);
    const tight = check('tight', shape('FixedWindow', 1, 86_400_000));
    const loose = check('loose', shape('FixedWindow', 100, 86_400_000));
    await ask(s, [tight, loose]);
    const v = await ask(s, [tight, loose]);
    expect(v.map((x) => x.allowed)).toEqual([false, true]);
    expect(await r.client.hget('test:rl:loose', 'c')).toBe('1');
    const shadowed = await ask(s, [{ ...tight, shadow: true }, loose]);
    expect(shadowed.map((x) => x.allowed)).toEqual([false, true]);
    expect(await r.client.hget('test:rl:loose', 'c')).toBe('2');
  });

  it('requests checked in one turn of the event loop share one script call, each decided whole and in arrival order', async () => {
    const r = await redis();
    const s = store(r.url);
    await ready(s);
    const before = s.sent();
    const tight = check('batch-tight', shape('FixedWindow', 3, 86_400_000));
    const other = check('batch-other', shape('TokenBucket', 100, 1000));
    const refuser = check('batch-refuser', shape('FixedWindow', 0, 86_400_000));
    // The third request is refused by its own bucket, so it counts in neither (as alone).
    const verdicts = await Promise.all([
      ask(s, [tight, other]),
      ask(s, [tight]),
      ask(s, [tight, refuser]),
      ask(s, [tight]),
      ask(s, [tight]),
    ]);
    // Checked in one turn of the event loop: one call for all five.
    expect(s.sent() - before).toBe(1);
    expect(verdicts.map((v) => v.map((x) => x.allowed))).toEqual([
      [true, true],
      [true],
      [true, false],
      [true],
      [false],
    ]);
    expect(verdicts.map((v) => v[0]!.remaining)).toEqual([2, 1, 1, 0, 0]);
    expect(await r.client.hget('test:rl:batch-tight', 'c')).toBe('3');
  });

  it('one bucket met by many requests of one call is counted by each in turn: SlidingWindow and TokenBucket, written back once with its expiry', async () => {
    const r = await redis();
    const s = store(r.url);
    await ready(s);
    const sliding = check('shared-sw', shape('SlidingWindow', 4, 60_000));
    const bucket = check('shared-tb', shape('TokenBucket', 1, 60_000, 3));
    const before = s.sent();
    const verdicts = await Promise.all(Array.from({ length: 8 }, () => ask(s, [sliding, bucket])));
    expect(s.sent() - before).toBe(1);
    // Admitted while both allow: the token bucket's burst of 3 refuses the fourth, which then
    // counts in neither (the sliding window keeps room for a fifth it never sees admitted).
    expect(verdicts.map((v) => v.map((x) => x.allowed))).toEqual([
      [true, true],
      [true, true],
      [true, true],
      [true, false],
      [true, false],
      [true, false],
      [true, false],
      [true, false],
    ]);
    expect(verdicts.map((v) => v[1]!.remaining)).toEqual([2, 1, 0, 0, 0, 0, 0, 0]);
    expect(await r.client.zcard('test:rl:shared-sw')).toBe(3);
    expect(Number(await r.client.hget('test:rl:shared-tb', 't'))).toBeCloseTo(0, 1);
    expect(await r.client.pttl('test:rl:shared-sw')).toBeGreaterThan(50_000);
    expect(await r.client.pttl('test:rl:shared-tb')).toBeGreaterThan(100_000);
  });

  it('Redis unreachable: calls fail within the timeout, the breaker opens, and closes again once Redis answers', async () => {
    const states: BreakerState[] = [];
    const port = await closedPort();
    const s = store(`redis://127.0.0.1:${port}`, { timeoutMs: 50, onBreaker: (st) => states.push(st) });
    const c = check('x', shape('FixedWindow', 5, 1000));
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await expect(ask(s, [c])).rejects.toThrow();
      expect(performance.now() - t0).toBeLessThan(500);
    }
    expect(s.breaker()).toBe('open');
    // While open, nothing waits at all: no call, and no promise to settle.
    expect(s.check([c], NO_ANSWER_EXPECTED)).toBe(false);
    expect(states).toEqual(['open']);
  });

  it('a killed and restarted redis-server: failures while it is down, then answers again by itself', async () => {
    const r = await redis();
    const s = store(r.url, { timeoutMs: 50 });
    await ready(s);
    const c = check('k', shape('FixedWindow', 1000, 60_000));
    await r.client.shutdown('NOSAVE').catch(() => undefined);
    await until(async () => (await ask(s, [c]).catch(() => null)) === null, {
      timeoutMs: 5000,
      what: 'the store failing',
    });
    const restarted = await startRedisServer({ port: r.port });
    cleanups.push(() => restarted.close());
    await until(async () => (await ask(s, [c]).catch(() => null)) !== null, {
      timeoutMs: 10_000,
      what: 'the store answering again',
    });
    expect(s.breaker()).toBe('closed');
  });

  it('a hung redis-server (SIGSTOP, connection open): every call fails within the timeout, the breaker opens, and what is sent stays bounded however many calls come', async () => {
    const r = await redis();
    const states: BreakerState[] = [];
    const s = store(r.url, { timeoutMs: 50, onBreaker: (st) => states.push(st) });
    await ready(s);
    const c = check('hung', shape('FixedWindow', 1_000_000, 60_000));
    const sentBefore = s.sent();
    r.process.kill('SIGSTOP');
    cleanups.push(async () => r.process.kill('SIGCONT'));
    // 100 calls a second for 3 s, as a gateway under load would make them.
    const slowest: number[] = [];
    const calls: Promise<void>[] = [];
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      calls.push(
        ask(s, [c]).then(
          () => expect.fail('a stopped Redis answered'),
          () => void slowest.push(performance.now() - t0),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all(calls);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(states[0]).toBe('open');
    // Generous next to the 50 ms timeout on a busy machine; the figure is bench/'s.
    expect(Math.max(...slowest)).toBeLessThan(500);
    // Sent: the calls before the breaker opened plus about one probe a second (breakerOpenMs
    // 300 here), not the 300 calls made.
    const sent = s.sent() - sentBefore;
    expect(sent).toBeLessThan(30);
    expect(rssGrowth).toBeLessThan(32 * 1024 * 1024);
    r.process.kill('SIGCONT');
    await until(async () => (await ask(s, [c]).catch(() => null)) !== null, {
      timeoutMs: 10_000,
      what: 'the store answering after SIGCONT',
    });
    expect(s.breaker()).toBe('closed');
  });

  it('a server that accepts and never answers: calls fail within the timeout and the breaker opens', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const sock of sockets) sock.destroy();
          silent.close(() => resolve());
        }),
    );
    const port = (silent.address() as AddressInfo).port;
    const s = store(`redis://127.0.0.1:${port}`, { timeoutMs: 50 });
    const c = check('silent', shape('FixedWindow', 5, 1000));
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await expect(ask(s, [c])).rejects.toThrow();
      expect(performance.now() - t0).toBeLessThan(500);
    }
    expect(s.breaker()).toBe('open');
    expect(sockets.size).toBeGreaterThan(0);
  });
});

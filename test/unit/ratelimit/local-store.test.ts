/**
 * The three algorithms of the in-process store on a clock the test moves: FixedWindow aligned to
 * the epoch, SlidingWindow exact in every interval, TokenBucket's burst and refill; a refused
 * request counts nowhere; idle buckets are forgotten and the bucket count is bounded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalStore, type LocalStore } from '../../../src/ratelimit/local-store.ts';
import type { LimitCheck, LimitShape } from '../../../src/ratelimit/limits.ts';

let clock = 0;
const stores: LocalStore[] = [];
afterEach(() => {
  while (stores.length > 0) stores.pop()!.close();
});

function store(opts: { maxBuckets?: number } = {}): LocalStore {
  const s = createLocalStore({ now: () => clock, sweepMs: 60_000, ...opts });
  stores.push(s);
  return s;
}

function check(bucket: string, limit: LimitShape, shadow = false): LimitCheck {
  return { bucket, limit, shadow };
}

const fixed = (requests: number, windowMs: number): LimitShape => ({
  algorithm: 'FixedWindow',
  requests,
  windowMs,
  burst: requests,
});
const sliding = (requests: number, windowMs: number): LimitShape => ({
  algorithm: 'SlidingWindow',
  requests,
  windowMs,
  burst: requests,
});
const bucket = (requests: number, windowMs: number, burst: number): LimitShape => ({
  algorithm: 'TokenBucket',
  requests,
  windowMs,
  burst,
});

/** Sends one request at each time; returns the times admitted. */
function admittedAt(s: LocalStore, limit: LimitShape, times: readonly number[]): number[] {
  const out: number[] = [];
  for (const t of times) {
    clock = t;
    if (s.check([check('b', limit)])[0]!.allowed) out.push(t);
  }
  return out;
}

function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  let best = 0;
  for (let i = 0; i < times.length; i++) {
    let n = 0;
    for (let j = i; j < times.length && times[j]! < times[i]! + windowMs; j++) n++;
    best = Math.max(best, n);
  }
  return best;
}

describe('local store', () => {
  it('FixedWindow admits `requests` per window aligned to the epoch, and says when it resets', () => {
    const s = store();
    const l = fixed(3, 1000);
    clock = 10_900;
    const v = [1, 2, 3, 4].map(() => s.check([check('b', l)])[0]!);
    expect(v.map((x) => x.allowed)).toEqual([true, true, true, false]);
    expect(v.map((x) => x.remaining)).toEqual([2, 1, 0, 0]);
    expect(v[3]!.resetMs).toBe(100);
    clock = 11_000;
    expect(s.check([check('b', l)])[0]!.allowed).toBe(true);
  });

  it('SlidingWindow never admits more than `requests` in any interval of the window', () => {
    const s = store();
    const times = Array.from({ length: 400 }, (_, i) => i * 7 + (i % 3));
    const admitted = admittedAt(s, sliding(10, 200), times);
    expect(maxInAnyWindow(admitted, 200)).toBe(10);
    // And it is not stingy: about 10 per 200 ms over the run (2800 ms).
    expect(admitted.length).toBeGreaterThanOrEqual(135);
  });

  it('FixedWindow can admit 2N across a boundary; SlidingWindow cannot', () => {
    const times = [...Array.from({ length: 5 }, () => 990), ...Array.from({ length: 5 }, () => 1010)];
    expect(maxInAnyWindow(admittedAt(store(), fixed(5, 1000), times), 1000)).toBe(10);
    expect(maxInAnyWindow(admittedAt(store(), sliding(5, 1000), times), 1000)).toBe(5);
  });

  it('TokenBucket admits `burst` at once, then `requests` per window; never more than burst + requests in a window', () => {
    const s = store();
    const l = bucket(10, 1000, 30);
    clock = 0;
    const first = Array.from({ length: 40 }, () => s.check([check('b', l)])[0]!.allowed).filter(Boolean);
    expect(first).toHaveLength(30);
    clock = 500;
    const refilled = Array.from({ length: 10 }, () => s.check([check('b', l)])[0]!.allowed).filter(Boolean);
    expect(refilled).toHaveLength(5);
    const times = Array.from({ length: 2000 }, (_, i) => 1000 + i * 3);
    const admitted = admittedAt(s, l, times);
    expect(maxInAnyWindow(admitted, 1000)).toBeLessThanOrEqual(40);
    // Retry-After of a refused request: the time to one token (100 ms at 10/s).
    clock = 100_000;
    const drained = bucket(10, 1000, 1);
    s.check([check('c', drained)]);
    expect(s.check([check('c', drained)])[0]).toMatchObject({ allowed: false, resetMs: 100 });
  });

  it('a request refused by one bucket is counted in none; a shadow bucket never refuses', () => {
    const s = store();
    const tight = fixed(1, 1000);
    const loose = fixed(100, 1000);
    clock = 0;
    s.check([check('tight', tight), check('loose', loose)]);
    const v = s.check([check('tight', tight), check('loose', loose)]);
    expect(v.map((x) => x.allowed)).toEqual([false, true]);
    expect(v[1]!.remaining).toBe(99);
    const shadowed = s.check([check('tight', tight, true), check('loose', loose)]);
    expect(shadowed.map((x) => x.allowed)).toEqual([false, true]);
    expect(shadowed[1]!.remaining).toBe(98);
  });

  it('idle buckets are forgotten and the number kept is bounded', () => {
    const s = createLocalStore({ now: () => clock, sweepMs: 10, maxBuckets: 100 });
    stores.push(s);
    clock = 0;
    for (let i = 0; i < 1000; i++) s.check([check(`k${i}`, fixed(5, 1000))]);
    expect(s.size()).toBe(100);
    clock = 5000;
    s.check([check('fresh', fixed(5, 1000))]);
    expect(s.size()).toBe(1);
  });

  it('InFlight: at most N held at once; a release frees one place and an empty bucket is forgotten', () => {
    const s = store();
    const l: LimitShape = { algorithm: 'InFlight', requests: 2, windowMs: 0, burst: 2 };
    const v = [1, 2, 3].map(() => s.check([check('c', l)])[0]!);
    expect(v.map((x) => x.allowed)).toEqual([true, true, false]);
    s.release(['c']);
    expect(s.check([check('c', l)])[0]!.allowed).toBe(true);
    s.release(['c']);
    s.release(['c']);
    expect(s.size()).toBe(0);
    // A release for a bucket no longer held changes nothing.
    s.release(['c']);
    expect(s.check([check('c', l)])[0]!.remaining).toBe(1);
  });
});

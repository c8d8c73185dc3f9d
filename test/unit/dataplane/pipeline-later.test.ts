/**
 * A filter that answers later without a promise (dataplane/filters/filter.ts Later): the Global
 * rate-limit store's waiters. The pipeline resumes the request when the store answers, once,
 * refuses it when the rules do, answers 500 when what runs next throws (the store's reply handler
 * must never see an exception), and does nothing for a request already answered.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  FILTER_FAILED,
  Later,
  type FilterContext,
  type FilterReply,
} from '../../../src/dataplane/filters/filter.ts';
import type { FilterRuntime, RateLimitRuntime } from '../../../src/dataplane/filters/filter.ts';
import { runFilters } from '../../../src/dataplane/pipeline.ts';
import { createRateLimitMetrics } from '../../../src/observability/ratelimit-metrics.ts';
import type { LimitCheck, LimitVerdict, LimitWaiter, RemoteLimiter } from '../../../src/ratelimit/limits.ts';
import { createLocalStore } from '../../../src/ratelimit/local-store.ts';
import { routedBenchRequest } from '../../../bench/configs/ratelimit.ts';

/** A Global store whose answers the test gives by hand. */
function handStore(): RemoteLimiter & { waiting: { checks: readonly LimitCheck[]; waiter: LimitWaiter }[] } {
  const waiting: { checks: readonly LimitCheck[]; waiter: LimitWaiter }[] = [];
  return {
    waiting,
    check(checks, waiter) {
      waiting.push({ checks, waiter });
      return true;
    },
  };
}

/** The bench's request on its Global rule, a store answering by hand, and what the pipeline did. */
function start(): {
  ctx: FilterContext;
  store: ReturnType<typeof handStore>;
  next: FilterContext[];
  replies: FilterReply[];
  run: (next?: (c: FilterContext) => void) => void;
} {
  const { ctx, filters } = routedBenchRequest('global');
  const store = handStore();
  const rateLimit: RateLimitRuntime = {
    local: createLocalStore(),
    fallback: createLocalStore(),
    global: store,
    observer: createRateLimitMetrics(new Registry()),
  };
  const rt = { jwks: null, observer: null, now: Date.now, rateLimit } as unknown as FilterRuntime;
  const next: FilterContext[] = [];
  const replies: FilterReply[] = [];
  const run = (onNext: (c: FilterContext) => void = (c) => next.push(c)): void =>
    runFilters(ctx, filters, rt, onNext, (_c, r) => replies.push(r));
  return { ctx, store, next, replies, run };
}

const allowed = (checks: readonly LimitCheck[]): LimitVerdict[] =>
  checks.map(() => ({ allowed: true, remaining: 5, resetMs: 1000 }));

describe('a filter that answers later (Later)', () => {
  it('settled before or after the pipeline waits on it, it resumes exactly once', () => {
    const seen: (FilterReply | null)[] = [];
    const early = new Later();
    early.settle(null);
    early.settle(FILTER_FAILED);
    early.whenSettled((r) => seen.push(r));
    const late = new Later();
    late.whenSettled((r) => seen.push(r));
    expect(seen).toEqual([null]);
    late.settle(FILTER_FAILED);
    late.settle(null);
    expect(seen).toEqual([null, FILTER_FAILED]);
  });

  it('the pipeline waits for the Global store and goes on when it admits', () => {
    const { ctx, store, next, replies, run } = start();
    run();
    expect(next).toEqual([]);
    expect(store.waiting).toHaveLength(1);
    const w = store.waiting[0]!;
    w.waiter.answered(allowed(w.checks));
    expect(next).toEqual([ctx]);
    expect(replies).toEqual([]);
  });

  it('a refusal is the reply (429), and the request never goes on', () => {
    const { store, next, replies, run } = start();
    run();
    const w = store.waiting[0]!;
    w.waiter.answered(w.checks.map(() => ({ allowed: false, remaining: 0, resetMs: 2500 })));
    expect(next).toEqual([]);
    expect(replies.map((r) => r.status)).toEqual([429]);
    expect(replies[0]!.headers).toEqual(expect.arrayContaining(['retry-after', '3']));
  });

  it('what runs next throwing becomes a 500, not an exception in the store', () => {
    const { store, replies, run } = start();
    run(() => {
      throw new Error('boom');
    });
    const w = store.waiting[0]!;
    expect(() => w.waiter.answered(allowed(w.checks))).not.toThrow();
    expect(replies).toEqual([FILTER_FAILED]);
  });

  it('a request answered while it waited (the client left) is not resumed', () => {
    const { ctx, store, next, replies, run } = start();
    run();
    (ctx as { finished: boolean }).finished = true;
    const w = store.waiting[0]!;
    w.waiter.answered(allowed(w.checks));
    expect(next).toEqual([]);
    expect(replies).toEqual([]);
  });

  it('a failed call is decided by failureMode (Open: the local fallback admits)', () => {
    const { ctx, store, next, replies, run } = start();
    run();
    store.waiting[0]!.waiter.failed();
    expect(next).toEqual([ctx]);
    expect(replies).toEqual([]);
  });
});

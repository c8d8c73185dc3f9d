/**
 * The rate-limit filter per request (dataplane/filters/rate-limit.ts runRateLimit), on
 * bench:ratelimit's rule (one bucket per client address, a limit never reached), with the
 * metrics sink the gateway uses: Local storage (the in-process store, synchronous), and Global
 * storage with a store that answers at once, so what is timed is the filter's own work around
 * the Redis call (bucket names, verdicts, resuming), not the round trip.
 */
import { Registry } from 'prom-client';
import { Later, type FilterContext, type RateLimitRuntime } from '../../src/dataplane/filters/filter.ts';
import { runRateLimit } from '../../src/dataplane/filters/rate-limit.ts';
import { createRateLimitMetrics } from '../../src/observability/ratelimit-metrics.ts';
import type { LimitCheck, LimitVerdict, LimitWaiter, RemoteLimiter } from '../../src/ratelimit/limits.ts';
import { createLocalStore } from '../../src/ratelimit/local-store.ts';
import type { RateLimitFilter } from '../../src/snapshot/types.ts';
import { routedBenchRequest } from '../configs/ratelimit.ts';
import { bench } from './timing.ts';

/** A request routed to the rule's route, and the route's rate-limit filter. */
function setUp(storage: 'Local' | 'Global'): { ctx: FilterContext; filter: RateLimitFilter } {
  const { ctx, filters } = routedBenchRequest(storage === 'Local' ? 'local' : 'global');
  const filter = filters.find((f): f is RateLimitFilter => f.kind === 'rate-limit');
  if (filter === undefined) throw new Error('no rate-limit filter on the route');
  return { ctx, filter };
}

const ALLOWED: LimitVerdict = { allowed: true, remaining: 999_999_999, resetMs: 1000 };
const answering: RemoteLimiter = {
  check: (checks: readonly LimitCheck[], waiter: LimitWaiter) => {
    queueMicrotask(() => waiter.answered(checks.map(() => ALLOWED)));
    return true;
  },
};

function runtime(): RateLimitRuntime {
  return {
    local: createLocalStore(),
    fallback: createLocalStore(),
    global: answering,
    observer: createRateLimitMetrics(new Registry()),
  };
}

const local = setUp('Local');
const rtLocal = runtime();
bench('runRateLimit, Local, 1 rule keyed by address', () => {
  const out = runRateLimit(local.ctx, local.filter, rtLocal);
  if (out !== null) throw new Error('refused');
  return out;
});

/** Async: ns per request with `inFlight` requests awaiting at once, as a busy gateway has them. */
async function benchAsync(name: string, fn: () => Promise<unknown>, iterations = 300_000): Promise<void> {
  const inFlight = 32;
  const lane = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await fn();
  };
  await Promise.all(Array.from({ length: inFlight }, () => lane(20_000 / inFlight)));
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, () => lane(iterations / inFlight)));
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  process.stdout.write(`${name.padEnd(48)} ${ns.toFixed(1).padStart(8)} ns/op\n`);
}

const global = setUp('Global');
const rtGlobal = runtime();
await benchAsync('runRateLimit, Global (store answers at once)', async () => {
  const out = runRateLimit(global.ctx, global.filter, rtGlobal);
  const r = out instanceof Later ? await new Promise((resolve) => out.whenSettled(resolve)) : await out;
  if (r !== null) throw new Error('refused');
});

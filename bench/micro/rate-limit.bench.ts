/**
 * The rate-limit filter per request (dataplane/filters/rate-limit.ts runRateLimit), on
 * bench:ratelimit's rule (one bucket per client address, a limit never reached), with the
 * metrics sink the gateway uses: Local storage (the in-process store, synchronous), and Global
 * storage with a store that answers at once, so what is timed is the filter's own work around
 * the Redis call (bucket names, grouping, verdicts, promise chain), not the round trip.
 */
import { Registry } from 'prom-client';
import { compile } from '../../src/compile/index.ts';
import { loadResources } from '../../src/config/index.ts';
import type { FilterContext, RateLimitRuntime } from '../../src/dataplane/filters/filter.ts';
import { runRateLimit } from '../../src/dataplane/filters/rate-limit.ts';
import { createRateLimitMetrics } from '../../src/observability/ratelimit-metrics.ts';
import type { LimitCheck, LimitVerdict, LimitWaiter, RemoteLimiter } from '../../src/ratelimit/limits.ts';
import { createLocalStore } from '../../src/ratelimit/local-store.ts';
import { admitRequest, selectRoute, undecidedRequest } from '../../src/snapshot/route-request.ts';
import type { RateLimitFilter } from '../../src/snapshot/types.ts';
import { RATE_LIMIT_BENCH_HOST, rateLimitBenchConfig } from '../configs/ratelimit.ts';
import { bench } from './timing.ts';

/** A request routed to the rule's route, as the pipeline hands it to the filter. */
function setUp(storage: 'Local' | 'Global'): { ctx: FilterContext; filter: RateLimitFilter } {
  const loaded = loadResources(
    [
      {
        file: 'bench.yaml',
        text: rateLimitBenchConfig(8080, 18081, storage === 'Local' ? 'local' : 'global', 6379),
      },
    ],
    {
      defaultNamespace: 'default',
    },
  );
  const snapshot = compile(loaded.resources, {
    namespace: 'istio-system',
    labels: { istio: 'ingressgateway' },
    rootNamespace: 'istio-system',
    nowMs: Date.now(),
  }).snapshot;
  const req = Object.assign(undecidedRequest('GET', 'http', 8080, { host: RATE_LIMIT_BENCH_HOST }), {
    peerIp: '127.0.0.1',
    remoteIp: '127.0.0.1',
    localIp: '127.0.0.1',
    sni: '',
    peerPrincipal: null,
    auth: null,
    responseHeadersToAdd: null,
    deferredLimits: null,
  });
  if (admitRequest(req, snapshot, '/item/42', `${RATE_LIMIT_BENCH_HOST}:8080`, '') !== null)
    throw new Error('refused');
  if (selectRoute(req) !== null) throw new Error('no route');
  const filter = req.route?.filters?.find((f): f is RateLimitFilter => f.kind === 'rate-limit');
  if (filter === undefined) throw new Error('no rate-limit filter on the route');
  return { ctx: req as unknown as FilterContext, filter };
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
  const out = await runRateLimit(global.ctx, global.filter, rtGlobal);
  if (out !== null) throw new Error('refused');
});

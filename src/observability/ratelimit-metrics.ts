/**
 * Rate limiting as Prometheus sees it: decisions by policy, rule and result, the Global store's
 * round trips, and its breaker. Labels are names from config, never a key value (a client IP, a
 * header, a claim), so the series stay few.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type BreakerStateName = 'closed' | 'half_open' | 'open';

export interface RateLimitMetrics {
  /** result: ok | over_limit | shadow_over_limit | exempt | error | fallback. */
  decision(policy: string, rule: string, result: string): void;
  redisLatency(ms: number): void;
  breaker(state: BreakerStateName): void;
}

const BREAKER_VALUE: Readonly<Record<BreakerStateName, number>> = { closed: 0, half_open: 1, open: 2 };

const RESULTS = ['ok', 'over_limit', 'shadow_over_limit', 'exempt', 'error', 'fallback'] as const;
const RESULT_INDEX: Readonly<Record<string, number>> = Object.fromEntries(RESULTS.map((r, i) => [r, i]));

export function createRateLimitMetrics(registry: Registry): RateLimitMetrics {
  // Counted here per request (two map lookups and an add) and handed to prom-client only when
  // scraped: its own inc() hashes and validates the labels on every call, a cost the request
  // path cannot afford for every rate-limited request.
  const counts = new Map<string, Map<string, Float64Array>>();
  new Counter({
    name: 'sluice_ratelimit_decisions_total',
    help: 'Rate-limit decisions by policy (ns/name), rule and result (ok, over_limit, shadow_over_limit, exempt, error: answered 500 RLSE, fallback: decided locally while the Global store could not answer).',
    labelNames: ['policy', 'rule', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [policy, rules] of counts)
        for (const [rule, byResult] of rules)
          byResult.forEach((n, i) => {
            if (n > 0) this.inc({ policy, rule, result: RESULTS[i]! }, n);
          });
    },
  });
  const latency = new Histogram({
    name: 'sluice_ratelimit_redis_duration_seconds',
    help: 'Round trip of the Global rate-limit script call to Redis, answered calls only.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const breaker = new Gauge({
    name: 'sluice_ratelimit_breaker_state',
    help: 'The Global rate-limit store breaker: 0 closed (Redis answering), 1 half open (one request probing), 2 open (failureMode decides without asking).',
    registers: [registry],
  });
  breaker.set(0);
  return {
    decision: (policy, rule, result) => {
      let rules = counts.get(policy);
      if (rules === undefined) counts.set(policy, (rules = new Map()));
      let byResult = rules.get(rule);
      if (byResult === undefined) rules.set(rule, (byResult = new Float64Array(RESULTS.length)));
      const i = RESULT_INDEX[result];
      if (i !== undefined) byResult[i]!++;
    },
    redisLatency: (ms) => latency.observe(ms / 1000),
    breaker: (state) => breaker.set(BREAKER_VALUE[state]),
  };
}

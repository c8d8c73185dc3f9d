/**
 * The rate-limit stores of one gateway: the process-wide Local store (in-process, or the
 * --workers primary's over the worker channel), the local fallback of Global rules, and the
 * Redis store, which follows the serving snapshot's MeshConfig `redis` (opened when a Global rule
 * first needs it, replaced when the settings change, closed when none needs it).
 */
import type { RateLimitRuntime } from '../dataplane/filters/filter.ts';
import { closeRateLimitServiceClients } from '../dataplane/filters/rate-limit-service.ts';
import type { Logger } from '../observability/logger.ts';
import type { RateLimitMetrics } from '../observability/ratelimit-metrics.ts';
import type { Limiter, RemoteLimiter } from '../ratelimit/limits.ts';
import { createLocalStore } from '../ratelimit/local-store.ts';
import { createRedisStore, type RedisStore } from '../ratelimit/redis-store.ts';
import type { RateLimitRedisSettings } from '../snapshot/types.ts';
import {
  describeRedisTarget,
  readRedisCredentials,
  redisTargetKey,
  type RedisCredentials,
} from '../util/redis-client.ts';

export type RateLimitObserver = RateLimitMetrics;

export interface RateLimitStores {
  readonly runtime: RateLimitRuntime;
  /** Follows the snapshot being applied; null = no Global rule. */
  follow(settings: RateLimitRedisSettings | null): void;
  close(): Promise<void>;
}

const ERROR_LOG_INTERVAL_MS = 60_000;

/** A Global store that cannot be reached at all: failureMode decides every check at once. */
const UNAVAILABLE: RemoteLimiter = { check: () => false };

export function createRateLimitStores(opts: {
  readonly logger: Logger;
  /** The --workers primary's store; absent = this process's own. */
  readonly local?: Limiter;
  readonly observer?: RateLimitObserver | null;
}): RateLimitStores {
  const observer = opts.observer ?? null;
  const own = opts.local === undefined ? createLocalStore() : null;
  const fallback = createLocalStore();
  const runtime: RateLimitRuntime = {
    local: opts.local ?? own!,
    fallback,
    global: null,
    observer,
  };
  let key = '';
  let store: RedisStore | null = null;
  const closing = new Set<Promise<void>>();
  const retire = (s: RedisStore | null): void => {
    if (s === null) return;
    const p = s.close().finally(() => closing.delete(p));
    closing.add(p);
  };
  return {
    runtime,
    follow(settings) {
      const next =
        settings === null
          ? ''
          : `${redisTargetKey(settings.target)}|${settings.keyPrefix}|${settings.timeoutMs}`;
      if (next === key) return;
      key = next;
      retire(store);
      store = null;
      runtime.global = null;
      if (settings === null) return;
      const log = opts.logger.child({ component: 'ratelimit', redis: describeRedisTarget(settings.target) });
      let credentials: RedisCredentials;
      try {
        credentials = readRedisCredentials(settings.target);
      } catch (err) {
        // Without its password or CA certificates the store cannot count: every Global check
        // fails, so the policies' failureMode decides, as while Redis is down; the next settings
        // change retries.
        const message = (err as Error).message;
        log.error({ err: message }, 'rate-limit store credentials unavailable; failureMode decides');
        runtime.global = UNAVAILABLE;
        return;
      }
      let lastLogMs = 0;
      store = createRedisStore({
        target: settings.target,
        credentials,
        keyPrefix: settings.keyPrefix,
        timeoutMs: settings.timeoutMs,
        ...(observer !== null ? { onLatency: (ms: number) => observer.redisLatency(ms) } : {}),
        onBreaker: (state) => {
          observer?.breaker(state);
          if (state === 'open')
            log.warn('rate-limit store unreachable; failureMode decides until it answers');
          else if (state === 'closed') log.info('rate-limit store answering again');
        },
        onError: (message) => {
          const now = Date.now();
          if (now - lastLogMs < ERROR_LOG_INTERVAL_MS) return;
          lastLogMs = now;
          log.warn({ err: message }, 'rate-limit store error');
        },
      });
      runtime.global = store;
    },
    async close() {
      retire(store);
      store = null;
      runtime.global = null;
      own?.close();
      fallback.close();
      closeRateLimitServiceClients();
      await Promise.all(closing);
    },
  };
}

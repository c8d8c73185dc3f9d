/**
 * The Redis connection a MeshConfig declares (`redis.url`, `redis.keyPrefix`; model/sluice.ts),
 * made by control/ and handed to what needs it (ACME coordination now, rate limits later).
 *
 * It must never take the gateway down: the client connects on its first command (nothing is
 * opened for a MeshConfig that only declares it), a command fails after one reconnection attempt
 * or 5 s instead of queueing forever, reconnection goes on in the background with back-off, and
 * connection errors are logged (throttled) instead of being thrown. Callers treat a failed
 * command as a failed attempt (the ACME manager backs off). The URL is only ever logged redacted.
 */
import type { Redis } from 'ioredis';
import { DEFAULT_REDIS_KEY_PREFIX, type RedisSettings } from '../model/sluice.ts';
import type { Logger } from '../observability/logger.ts';
import { closeRedisClient, loadRedis, redactRedisUrl } from '../util/redis-url.ts';

export { DEFAULT_REDIS_KEY_PREFIX } from '../model/sluice.ts';

export interface RedisConnection {
  readonly client: Redis;
  readonly keyPrefix: string;
  /** The URL without its password, for logs. */
  readonly where: string;
  close(): Promise<void>;
}

/** One error line per outage (and at most one a minute while it lasts), one line when it is back. */
const ERROR_LOG_INTERVAL_MS = 60_000;

export function connectRedis(settings: RedisSettings, logger: Logger): RedisConnection {
  const where = redactRedisUrl(settings.url);
  const log = logger.child({ component: 'redis', redis: where });
  const RedisClient = loadRedis();
  const client = new RedisClient(settings.url, {
    lazyConnect: true,
    connectTimeout: 5000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 5), 5000),
  });
  let lastErrorLogMs = 0;
  let down = false;
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (down && now - lastErrorLogMs < ERROR_LOG_INTERVAL_MS) return;
    down = true;
    lastErrorLogMs = now;
    log.warn({ err: err.message }, 'redis unreachable; retrying in the background');
  });
  client.on('ready', () => {
    if (down) log.info('redis reachable again');
    down = false;
  });
  return {
    client,
    keyPrefix: settings.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX,
    where,
    close: () => closeRedisClient(client),
  };
}

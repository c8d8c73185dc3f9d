/**
 * The Redis connection a MeshConfig declares (`redis`: a URL, Sentinel or Cluster, and
 * `keyPrefix`; model/sluice.ts), made by control/ for ACME coordination (rate limits make their
 * own, with their own timeouts: ratelimit/redis-store.ts).
 *
 * It must never take the gateway down: the client connects on its first command (nothing is
 * opened for a MeshConfig that only declares it), a command fails after one reconnection attempt
 * or 5 s instead of queueing forever, reconnection goes on in the background with back-off, and
 * connection errors are logged (throttled) instead of being thrown. Callers treat a failed
 * command as a failed attempt (the ACME manager backs off). The URL is only ever logged redacted;
 * a password from `passwordFile`/`passwordEnv` and the CA certificates of `tls.caCertificates`
 * are read here, when the connection is made, and a file or variable that cannot be read is
 * logged by name (the commands then fail, NOAUTH or a refused certificate, and the ACME manager
 * backs off as from any other failure).
 */
import { DEFAULT_REDIS_KEY_PREFIX, type RedisSettings } from '../model/sluice.ts';
import type { Logger } from '../observability/logger.ts';
import {
  createRedisClient,
  describeRedisTarget,
  readRedisCredentials,
  type RedisClient,
  type RedisCredentials,
} from '../util/redis-client.ts';
import { closeRedisClient } from '../util/redis-url.ts';

export { DEFAULT_REDIS_KEY_PREFIX } from '../model/sluice.ts';

export interface RedisConnection {
  readonly client: RedisClient;
  readonly keyPrefix: string;
  /** The URL without its password, for logs. */
  readonly where: string;
  close(): Promise<void>;
}

/** One error line per outage (and at most one a minute while it lasts), one line when it is back. */
const ERROR_LOG_INTERVAL_MS = 60_000;

/** The password and CA certificates the settings name; a failure to read them is logged by name. */
function credentialsOrLogged(settings: RedisSettings, log: Logger): RedisCredentials {
  try {
    return readRedisCredentials(settings);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'redis credentials unavailable');
    return {};
  }
}

export function connectRedis(settings: RedisSettings, logger: Logger): RedisConnection {
  const where = describeRedisTarget(settings);
  const log = logger.child({ component: 'redis', redis: where });
  const client = createRedisClient(settings, credentialsOrLogged(settings, log), {
    lazyConnect: true,
    connectTimeout: 5000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 1,
    retryDelayMs: (times) => Math.min(200 * 2 ** Math.min(times, 5), 5000),
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

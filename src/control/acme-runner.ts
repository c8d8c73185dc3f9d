/**
 * `serve`'s ACME glue (issue 5 item 6): after each accepted config it hands the MeshConfig's
 * `acme.issuers` and the Gateways to the manager (providers/acme.ts), which orders what is
 * missing or due and writes it into --certs-dir, where the certs-dir watcher rotates it in. The
 * manager exists only while some MeshConfig declares issuers; the data plane's hooks always do
 * (ACME can be switched on by a reload) and cost one prefix check on plaintext requests.
 *
 * Coordination store: Redis when the MeshConfig declares `redis` (lock `SET NX PX`, answers
 * with a TTL), else a lock file and answer files under --certs-dir/.acme/ (acme-lock.ts).
 *
 * Who answers challenges: the orderer keeps each answer in memory and publishes it to that store
 * before telling the CA to validate; listeners answer from memory first, then from the store
 * (HTTP-01 token lookups, TLS-ALPN-01 certificates built from the stored key authorization). So
 * replicas that did not order, and the workers of `--workers N` (the primary orders, the workers
 * own the listeners: role 'answer' here), answer through the store. That was chosen over
 * broadcasting answers to workers over IPC: the answer is in the store before the CA is told to
 * look, whereas a broadcast would need acknowledgements to be sure of that, a worker restarted
 * mid-order would miss it, and replicas need the store anyway, so there is one path to test.
 */
import type { ResourceSet } from '../model/resource.ts';
import type { MeshConfigSpec, RedisSettings } from '../model/sluice.ts';
import type { Logger } from '../observability/logger.ts';
import {
  acmeInputsOf,
  createAcmeManager,
  type AcmeManager,
  type AcmeManagerOptions,
  type AcmeMetrics,
} from '../providers/acme.ts';
import {
  createFileChallengeStore,
  createFileLock,
  createRedisChallengeStore,
  createRedisLock,
  type AcmeLock,
} from '../providers/acme-lock.ts';
import { createAcmeTokens, type SharedChallengeStore } from '../tls/acme-tokens.ts';
import type { AcmeHooks } from './reconcile.ts';
import { connectRedis, type RedisConnection } from './redis-connection.ts';
import { redisTargetKey } from '../util/redis-client.ts';

/** 'order': runs the manager (single process, or the --workers primary); 'answer': only answers (workers). */
export type AcmeRole = 'order' | 'answer';

/** Manager timings tests shorten; production uses the manager's defaults. */
export type AcmeTuning = Partial<
  Pick<
    AcmeManagerOptions,
    'pollMinMs' | 'requestRetries' | 'backoffMinMs' | 'backoffMaxMs' | 'lockRetryMs' | 'now'
  >
>;

export interface AcmeRunnerOptions {
  readonly role: AcmeRole;
  readonly certsDir: string;
  readonly logger: Logger;
  /** This gateway's workload labels: Gateways selecting another workload are ignored. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly metrics?: AcmeMetrics;
  readonly tuning?: AcmeTuning;
}

/** One row of the admin `/acme` page. */
export interface AcmeTargetRow {
  readonly issuer: string;
  readonly credential: string;
  readonly hosts: readonly string[];
  readonly failures: number;
  /** No order is tried before this (back-off, or another replica holds the lock). */
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  /** When the current certificate reaches 2/3 of its lifetime and is renewed. */
  readonly renewAt: string | null;
}

export interface AcmeRunner {
  /** For createGateway({ acme }). */
  readonly hooks: AcmeHooks;
  /** After each accepted config; returns at once (orders run in the background and never throw). */
  update(set: ResourceSet): void;
  status(): AcmeTargetRow[];
  close(): Promise<void>;
}

/** The Redis connection of the first MeshConfig that declares one (MeshConfigs merge first-wins per field). */
export function redisSettingsOf(set: ResourceSet): RedisSettings | undefined {
  for (const r of set.resources) {
    if (r.kind !== 'MeshConfig') continue;
    const redis = (r.spec as MeshConfigSpec).redis;
    if (redis !== undefined) return redis;
  }
  return undefined;
}

interface Store {
  readonly key: string;
  readonly lock: AcmeLock;
  readonly challenges: SharedChallengeStore;
  readonly redis: RedisConnection | null;
}

const iso = (ms: number | undefined): string | null =>
  ms === undefined || ms <= 0 ? null : new Date(ms).toISOString();

export function createAcmeRunner(opts: AcmeRunnerOptions): AcmeRunner {
  const log = opts.logger.child({ component: 'acme' });
  const fileStore: Store = {
    key: 'file',
    lock: createFileLock(opts.certsDir),
    challenges: createFileChallengeStore(opts.certsDir),
    redis: null,
  };
  let store = fileStore;
  let enabled = false;
  let manager: AcmeManager | null = null;
  let closing: Promise<void> | null = null;
  const stopping = new Set<Promise<void>>();

  // The manager and the token store keep these for their lifetime; they follow `store`, which a
  // reload may switch between files and Redis.
  const lock: AcmeLock = {
    get kind() {
      return store.lock.kind;
    },
    tryAcquire: (name, ttlMs) => store.lock.tryAcquire(name, ttlMs),
  };
  const shared: SharedChallengeStore = {
    put: (key, value, ttlMs) => store.challenges.put(key, value, ttlMs),
    // With ACME off nothing is pending anywhere: challenge paths route without touching the store.
    get: (key) => (enabled ? store.challenges.get(key) : Promise.resolve(null)),
    delete: (key) => store.challenges.delete(key),
  };
  const tokens = createAcmeTokens({ shared });
  const hooks: AcmeHooks = {
    httpToken: (token) => tokens.httpToken(token),
    lookupHttpToken: (token) => tokens.lookupHttpToken(token),
    alpnContext: (servername) => tokens.alpnContext(servername),
    loadAlpnContext: (servername) => tokens.loadAlpnContext(servername),
  };

  function retire(old: Store): void {
    if (old.redis === null) return;
    const done = old.redis.close().finally(() => stopping.delete(done));
    stopping.add(done);
  }

  function selectStore(settings: RedisSettings | undefined): void {
    const key =
      settings === undefined ? 'file' : `redis|${redisTargetKey(settings)}|${settings.keyPrefix ?? ''}`;
    if (key === store.key) return;
    const old = store;
    if (settings === undefined) store = fileStore;
    else {
      const redis = connectRedis(settings, opts.logger);
      const redisLock = createRedisLock(redis.client, { prefix: `${redis.keyPrefix}acme:lock:` });
      store = {
        key,
        redis,
        // ioredis' own messages do not say which server (/acme lastError, logs).
        lock: {
          kind: 'redis',
          tryAcquire: (name, ttlMs) =>
            redisLock.tryAcquire(name, ttlMs).catch((err: unknown) => {
              throw new Error(`redis ${redis.where}: ${err instanceof Error ? err.message : String(err)}`, {
                cause: err,
              });
            }),
        },
        challenges: createRedisChallengeStore(redis.client, { prefix: `${redis.keyPrefix}acme:challenge:` }),
      };
    }
    log.info(
      store.redis !== null
        ? { store: 'redis', redis: store.redis.where, keyPrefix: store.redis.keyPrefix }
        : { store: 'file', dir: `${opts.certsDir}/.acme` },
      'ACME lock and challenge store',
    );
    retire(old);
  }

  function stopManager(): void {
    if (manager === null) return;
    const done = manager.stop().finally(() => stopping.delete(done));
    stopping.add(done);
    manager = null;
  }

  function apply(set: ResourceSet): void {
    const { issuers, gateways } = acmeInputsOf(set);
    const was = enabled;
    enabled = issuers.length > 0;
    // Redis is connected only while ACME uses it.
    selectStore(enabled ? redisSettingsOf(set) : undefined);
    if (opts.role === 'answer') return;
    if (!enabled) {
      if (was) log.info('ACME off: no MeshConfig declares acme.issuers');
      stopManager();
      return;
    }
    if (manager === null) {
      log.info({ issuers: issuers.map((i) => i.name), lock: store.lock.kind }, 'ACME on');
      manager = createAcmeManager({
        ...opts.tuning,
        issuers,
        certsDir: opts.certsDir,
        logger: opts.logger,
        lock,
        tokens,
        ...(opts.labels !== undefined ? { labels: opts.labels } : {}),
        ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
      });
    } else manager.setIssuers(issuers);
    void manager.reconcile(gateways);
  }

  return {
    hooks,
    update(set) {
      if (closing !== null) return;
      // Called on the reload path after the config went live: ACME trouble must not reject it.
      try {
        apply(set);
      } catch (err) {
        log.error(
          { err: err instanceof Error ? err.message : String(err) },
          'ACME could not take the new config',
        );
      }
    },
    status() {
      return (manager?.targets() ?? []).map((t) => ({
        issuer: t.issuer,
        credential: t.credential,
        hosts: t.hosts,
        failures: t.failures,
        nextAttemptAt: iso(t.nextAttemptAtMs),
        lastError: t.lastError ?? null,
        renewAt: iso(t.renewAtMs),
      }));
    },
    close() {
      closing ??= (async () => {
        stopManager();
        await Promise.allSettled([...stopping]);
        await store.redis?.close();
      })();
      return closing;
    },
  };
}

/**
 * "Only one replica orders a certificate at a time." Two implementations of one small lease:
 *
 * - Redis (the project's shared store; ioredis is the client): `SET <key> <id> NX PX <ttl>`, kept
 *   alive while the order runs by a compare-and-PEXPIRE script and released by a Lua
 *   compare-and-delete, so a replica whose lease already expired never deletes another's.
 * - No Redis configured: a lock file created with O_EXCL under `--certs-dir/.acme/locks/`, the
 *   directory every replica shares in file mode. Its mtime is refreshed while held; a file older
 *   than the TTL is stale (its holder died) and is taken over. Two replicas that find the same
 *   stale file at the same instant can both take it over; the cost is one duplicate order, whose
 *   result is the same certificate files written atomically, so it is tolerated.
 *
 * Replicas that do not get the lock do not wait on it: they re-check later and find the new
 * certificate in the shared credential store (the files the holder wrote).
 *
 * The same two stores carry the challenge answers (SharedChallengeStore), because the ACME
 * server's validation request reaches whichever replica the load balancer picks, not necessarily
 * the one that ordered.
 */
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { SharedChallengeStore } from '../tls/acme-tokens.ts';

export interface AcmeLockHandle {
  release(): Promise<void>;
}

export interface AcmeLock {
  /** Which store, for logs: 'redis' or 'file'. */
  readonly kind: 'redis' | 'file';
  /** One attempt: a handle when taken, null when another holder has it. Store errors reject. */
  tryAcquire(name: string, ttlMs: number): Promise<AcmeLockHandle | null>;
}

/** The ioredis calls used, so tests and callers can pass any ioredis `Redis`/`Cluster` instance. */
export interface RedisLockClient {
  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null>;
  set(key: string, value: string, px: 'PX', ttlMs: number): Promise<'OK' | null>;
  get(key: string): Promise<string | null>;
  del(key: string): Promise<number>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

const RELEASE_SCRIPT =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
const EXTEND_SCRIPT =
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

export const ACME_LOCK_PREFIX = 'sluice:acme:lock:';

function holderId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Refresh a lease at a third of its TTL so a long order never loses it; unref'd so it never holds the process. */
function keepAlive(ttlMs: number, refresh: () => Promise<unknown>): () => void {
  const timer = setInterval(
    () => void refresh().catch(() => undefined),
    Math.max(1000, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

export function createRedisLock(redis: RedisLockClient, opts: { prefix?: string } = {}): AcmeLock {
  const prefix = opts.prefix ?? ACME_LOCK_PREFIX;
  return {
    kind: 'redis',
    async tryAcquire(name, ttlMs) {
      const key = prefix + name;
      const id = holderId();
      const ok = await redis.set(key, id, 'PX', ttlMs, 'NX');
      if (ok !== 'OK') return null;
      const stopKeepAlive = keepAlive(ttlMs, () => redis.eval(EXTEND_SCRIPT, 1, key, id, ttlMs));
      return {
        async release() {
          stopKeepAlive();
          await redis.eval(RELEASE_SCRIPT, 1, key, id);
        },
      };
    },
  };
}

export function createFileLock(certsDir: string): AcmeLock {
  const dir = join(certsDir, '.acme', 'locks');
  return {
    kind: 'file',
    async tryAcquire(name, ttlMs) {
      await mkdir(dir, { recursive: true });
      const path = join(dir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
      const id = holderId();
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const fh = await open(path, 'wx', 0o600);
          await fh.writeFile(id);
          await fh.close();
          const stopKeepAlive = keepAlive(ttlMs, () => {
            const t = new Date();
            return utimes(path, t, t);
          });
          return {
            async release() {
              stopKeepAlive();
              // Compare-and-delete, as with Redis: after a takeover the file is someone else's.
              const holder = await readFile(path, 'utf8').catch(() => '');
              if (holder === id) await unlink(path).catch(() => undefined);
            },
          };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const st = await stat(path).catch(() => null);
          if (st !== null && Date.now() - st.mtimeMs < ttlMs) return null;
          await unlink(path).catch(() => undefined);
        }
      }
      return null;
    },
  };
}

export const ACME_CHALLENGE_PREFIX = 'sluice:acme:challenge:';

/** Challenge answers in Redis, expiring by themselves (PX) if the orderer dies mid-order. */
export function createRedisChallengeStore(
  redis: RedisLockClient,
  opts: { prefix?: string } = {},
): SharedChallengeStore {
  const prefix = opts.prefix ?? ACME_CHALLENGE_PREFIX;
  return {
    async put(key, value, ttlMs) {
      await redis.set(prefix + key, value, 'PX', ttlMs);
    },
    get: (key) => redis.get(prefix + key),
    async delete(key) {
      await redis.del(prefix + key);
    },
  };
}

/**
 * Challenge answers as files in `--certs-dir/.acme/challenges/` (file names are hashes: keys hold
 * host names and tokens). Expired entries are treated as absent; the orderer deletes its own.
 */
export function createFileChallengeStore(certsDir: string): SharedChallengeStore {
  const dir = join(certsDir, '.acme', 'challenges');
  const pathOf = (key: string) => join(dir, createHash('sha256').update(key).digest('hex'));
  return {
    async put(key, value, ttlMs) {
      await mkdir(dir, { recursive: true });
      const tmp = `${pathOf(key)}.${randomBytes(6).toString('hex')}.tmp`;
      await writeAll(tmp, JSON.stringify({ value, expiresAtMs: Date.now() + ttlMs }));
      await rename(tmp, pathOf(key));
    },
    async get(key) {
      try {
        const entry = JSON.parse(await readFile(pathOf(key), 'utf8')) as {
          value: string;
          expiresAtMs: number;
        };
        return Date.now() < entry.expiresAtMs ? entry.value : null;
      } catch {
        return null;
      }
    },
    async delete(key) {
      await unlink(pathOf(key)).catch(() => undefined);
    },
  };
}

async function writeAll(path: string, data: string): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

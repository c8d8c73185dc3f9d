/**
 * Global rate limits in Redis, shared by every replica and worker: one script call (EVALSHA,
 * EVAL once after a Redis restart, ioredis `defineCommand`) decides and counts every bucket of a
 * request, with Redis's own clock (`TIME`), so replicas whose clocks differ still share aligned
 * windows. The algorithms are local-store.ts's, written in Lua: a refused request counts in no
 * bucket; every key expires once its bucket is back to its initial state.
 *
 * Never in the way of the gateway: a command waits at most `timeoutMs` (then the caller's
 * failureMode decides), nothing queues while Redis is unreachable (ioredis' offline queue is
 * off), and a breaker opens after consecutive failures so requests stop waiting on a dead
 * Redis: while open no call is made and `check` answers null (failureMode decides at once, with
 * no promise to settle); after `breakerOpenMs` one request probes, and its success closes the
 * breaker. ioredis reconnects in the background with back-off.
 */
import {
  createRedisClient,
  type RedisClient,
  type RedisCredentials,
  type RedisTarget,
} from '../util/redis-client.ts';
import { closeRedisClient } from '../util/redis-url.ts';
import type { LimitCheck, LimitShape, LimitVerdict, RemoteLimiter } from './limits.ts';

/**
 * Script: the checks of several requests at once, each decided as a whole and in order (a later
 * request sees what an earlier one counted). KEYS are every request's buckets in order; ARGV[1]
 * is how many buckets each request has ("2,1,1"); ARGV[i + 1] is bucket i's limit, written once
 * per rule as "algorithm (F|S|T),requests,windowMs,burst,shadow (0|1)" and parsed once per call.
 * Returns per bucket: allowed (1|0), remaining, reset ms, all in one comma-separated string (one
 * reply to decode instead of three integers a bucket).
 */
export const RATE_LIMIT_SCRIPT = `
-- Redis before 5 replicates scripts verbatim, which TIME forbids; 5+ replicate effects anyway.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limits = {}
local out = {}
-- Per bucket, by its index in KEYS: its limit, what the first pass read, and its verdict.
local lim, state, start, allowed, avail = {}, {}, {}, {}, {}
local last = 0
for size in string.gmatch(ARGV[1], '%d+') do
  local first = last + 1
  last = last + tonumber(size)
  local ok = true
  for i = first, last do
    local spec = ARGV[i + 1]
    local l = limits[spec]
    if l == nil then
      local a, r, w, b, sh = string.match(spec, '^(%a),([^,]+),([^,]+),([^,]+),(%d)$')
      l = { a, tonumber(r), tonumber(w), tonumber(b), sh == '1' }
      limits[spec] = l
    end
    lim[i] = l
    local a, r, w, b, k = l[1], l[2], l[3], l[4], KEYS[i]
    if a == 'F' then
      local ws = now - (now % w)
      local h = redis.call('HMGET', k, 'w', 'c')
      local c = 0
      if tonumber(h[1]) == ws then c = tonumber(h[2]) or 0 end
      start[i], state[i] = ws, c
      allowed[i] = c < r
      avail[i] = r - c
    elseif a == 'S' then
      redis.call('ZREMRANGEBYSCORE', k, '-inf', now - w)
      local used = redis.call('ZCARD', k)
      state[i] = used
      allowed[i] = used < r
      avail[i] = r - used
    else
      local h = redis.call('HMGET', k, 't', 'l')
      local tokens = b
      if h[1] then
        local elapsed = now - tonumber(h[2])
        if elapsed < 0 then elapsed = 0 end
        tokens = math.min(b, tonumber(h[1]) + elapsed * r / w)
      end
      state[i] = tokens
      allowed[i] = tokens >= 1
      avail[i] = math.floor(tokens)
    end
    if not allowed[i] and not l[5] then ok = false end
  end
  for i = first, last do
    local l, k = lim[i], KEYS[i]
    local a, r, w, b = l[1], l[2], l[3], l[4]
    local counted = ok and allowed[i]
    local reset
    if a == 'F' then
      local ws = start[i]
      if counted then
        redis.call('HSET', k, 'w', ws, 'c', state[i] + 1)
        redis.call('PEXPIREAT', k, ws + w)
      end
      reset = ws + w - now
    elseif a == 'S' then
      if counted then
        redis.call('ZADD', k, now, now .. '.' .. state[i])
        redis.call('PEXPIRE', k, w)
        reset = w
      else
        local oldest = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
        if oldest[2] then reset = tonumber(oldest[2]) + w - now else reset = 0 end
      end
    else
      local tokens = state[i]
      if counted then
        tokens = tokens - 1
        redis.call('HSET', k, 't', tostring(tokens), 'l', now)
        redis.call('PEXPIRE', k, math.ceil((b - tokens) * w / r) + 1000)
        reset = math.ceil((b - tokens) * w / r)
      else
        reset = math.ceil((1 - tokens) * w / r)
      end
    end
    local remaining = avail[i]
    if counted then remaining = remaining - 1 end
    if remaining < 0 then remaining = 0 end
    if reset < 0 then reset = 0 end
    out[#out + 1] = allowed[i] and 1 or 0
    out[#out + 1] = remaining
    out[#out + 1] = math.ceil(reset)
  end
end
return table.concat(out, ',')
`;

// InFlight limits are Local only (validation refuses them with Global storage).
const ALGORITHM_CODE = { FixedWindow: 'F', SlidingWindow: 'S', TokenBucket: 'T', InFlight: 'T' } as const;

/** A limit as the script reads it, [counted, shadow]: written once per compiled limit, not per request. */
const LIMIT_ARGS = new WeakMap<LimitShape, readonly [string, string]>();

function limitArgs(l: LimitShape, shadow: boolean): string {
  let a = LIMIT_ARGS.get(l);
  if (a === undefined) {
    const spec = `${ALGORITHM_CODE[l.algorithm]},${l.requests},${l.windowMs},${l.burst},`;
    LIMIT_ARGS.set(l, (a = [spec + '0', spec + '1']));
  }
  return a[shadow ? 1 : 0];
}

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface RedisStoreOptions {
  /** One server, Sentinel or Cluster; never logged by this module. */
  readonly target: RedisTarget;
  /** The password and CA certificates the target names (read by the caller); never logged. */
  readonly credentials?: RedisCredentials;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  /** Consecutive failures that open the breaker; default 3. */
  readonly breakerFailures?: number;
  /** How long the breaker stays open before one request probes; default 1000 ms. */
  readonly breakerOpenMs?: number;
  /** Each answered script call's round trip, ms (the latency histogram). */
  readonly onLatency?: (ms: number) => void;
  readonly onBreaker?: (state: BreakerState) => void;
  /** A failure worth a (throttled) log line; the message never holds the URL. */
  readonly onError?: (message: string) => void;
}

export interface RedisStore extends RemoteLimiter {
  /** null while the breaker is open (no call is made); a rejection when the call fails or times out. */
  check(checks: readonly LimitCheck[]): Promise<readonly LimitVerdict[]> | null;
  breaker(): BreakerState;
  /**
   * Script calls handed to the client so far. What a hung Redis can hold in memory (ioredis keeps
   * a sent command until its answer or the connection's end) grows with this, not with traffic:
   * while the breaker is open nothing is sent.
   */
  sent(): number;
  close(): Promise<void>;
}

type ScriptClient = RedisClient & {
  /** ioredis flattens the array into the command's arguments. */
  sluiceRateLimit(numKeys: number, args: readonly (string | number)[]): Promise<string>;
};

/** One request's checks waiting for the next script call. */
interface Pending {
  readonly checks: readonly LimitCheck[];
  readonly resolve: (v: readonly LimitVerdict[]) => void;
  readonly reject: (e: unknown) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export function createRedisStore(opts: RedisStoreOptions): RedisStore {
  const client = createRedisClient(opts.target, opts.credentials ?? {}, {
    connectTimeout: Math.max(1000, opts.timeoutMs),
    commandTimeout: opts.timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryDelayMs: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
  }) as ScriptClient;
  client.defineCommand('sluiceRateLimit', { lua: RATE_LIMIT_SCRIPT });
  client.on('error', (err: Error) => opts.onError?.(err.message));
  // Until the first connection is up, a call waits for it (at most the timeout) instead of
  // failing at once: a fresh store would otherwise send its first requests to the fallback.
  let firstReady: Promise<void> | null = new Promise<void>((resolve) =>
    client.once('ready', () => {
      firstReady = null;
      resolve();
    }),
  );
  const failuresToOpen = opts.breakerFailures ?? 3;
  const openMs = opts.breakerOpenMs ?? 1000;
  let state: BreakerState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probing = false;
  let sent = 0;
  const setState = (s: BreakerState): void => {
    if (s === state) return;
    state = s;
    opts.onBreaker?.(s);
  };
  const failed = (err: unknown): never => {
    probing = false;
    failures++;
    if (state === 'half_open' || failures >= failuresToOpen) {
      openedAt = performance.now();
      setState('open');
    }
    throw err;
  };
  // Cluster: one hash tag for every rate-limit key, so the buckets of any one request share a
  // slot and one script call still covers them all (a tag per bucket cannot work: buckets meet
  // in requests in every combination). The keys live on one master; the others hold the rest.
  const prefix = opts.keyPrefix + (opts.target.cluster !== undefined ? '{rl}:' : 'rl:');
  // While a script call is on the wire, the checks of every request that arrives in one turn of
  // the event loop go out together as the next call: ioredis' work per command and the script's
  // start are shared instead of paid per request (each request is still decided whole, in arrival
  // order). With nothing on the wire a check goes out at once.
  let batch: Pending[] | null = null;
  let inFlight = 0;
  const flush = (): void => {
    const pending = batch!;
    batch = null;
    const keys: string[] = [];
    const limits: string[] = [];
    let sizes = '';
    for (const p of pending) {
      sizes += sizes === '' ? p.checks.length : ',' + p.checks.length;
      for (const c of p.checks) {
        keys.push(prefix + c.bucket);
        limits.push(limitArgs(c.limit, c.shadow));
      }
    }
    const started = performance.now();
    const call = (): Promise<string> => {
      sent++;
      return client.sluiceRateLimit(keys.length, [...keys, sizes, ...limits]);
    };
    const answer =
      firstReady === null ? call() : Promise.race([firstReady, sleep(opts.timeoutMs)]).then(call);
    inFlight++;
    answer
      .finally(() => inFlight--)
      .then(
        (reply) => {
          const flat = reply.split(',');
          opts.onLatency?.(performance.now() - started);
          probing = false;
          failures = 0;
          setState('closed');
          let at = 0;
          for (const p of pending) {
            const out: LimitVerdict[] = [];
            for (let i = 0; i < p.checks.length; i++, at += 3)
              out.push({
                allowed: flat[at] === '1',
                remaining: Number(flat[at + 1]),
                resetMs: Number(flat[at + 2]),
              });
            p.resolve(out);
          }
        },
        (err: unknown) => {
          try {
            failed(err);
          } catch (e) {
            for (const p of pending) p.reject(e);
          }
        },
      );
  };
  return {
    check(checks) {
      if (state === 'open') {
        if (performance.now() - openedAt < openMs || probing) return null;
        setState('half_open');
      }
      if (state === 'half_open') {
        if (probing) return null;
        probing = true;
      }
      return new Promise<readonly LimitVerdict[]>((resolve, reject) => {
        // Nothing on the wire: send at once (no added latency when traffic is light).
        if (inFlight === 0 && batch === null) {
          batch = [{ checks, resolve, reject }];
          flush();
          return;
        }
        if (batch === null) {
          batch = [];
          setImmediate(flush);
        }
        batch.push({ checks, resolve, reject });
      });
    },
    breaker: () => state,
    sent: () => sent,
    close: () => closeRedisClient(client),
  };
}

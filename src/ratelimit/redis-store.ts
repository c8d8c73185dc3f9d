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
 * Redis: while open no call is made and `check` answers false (failureMode decides at once, and
 * the waiter is never called); after `breakerOpenMs` one request probes, and its success closes the
 * breaker. ioredis reconnects in the background with back-off.
 */
import {
  createRedisClient,
  type RedisClient,
  type RedisCredentials,
  type RedisTarget,
} from '../util/redis-client.ts';
import { closeRedisClient } from '../util/redis-url.ts';
import type { LimitCheck, LimitShape, LimitVerdict, LimitWaiter, RemoteLimiter } from './limits.ts';

/**
 * Script: the checks of several requests at once, each decided as a whole and in order (a later
 * request sees what an earlier one counted). KEYS are the call's distinct buckets; ARGV[1] lists
 * each request's buckets as indexes into KEYS ("1,2;1;3": requests separated by ';'); ARGV[k + 1]
 * is the limit of KEYS[k], written once per rule as "algorithm (F|S|T),requests,windowMs,burst,
 * shadow (0|1)" and parsed once per call. A bucket is read once per call, counted in memory by
 * every request that meets it, and written back once at the end (a script runs alone, so nothing
 * else sees the state between). Returns per request and bucket: allowed (1|0), remaining, reset
 * ms, all in one comma-separated string (one reply to decode instead of three integers a bucket).
 */
export const RATE_LIMIT_SCRIPT = `
-- Redis before 5 replicates scripts verbatim, which TIME forbids; 5+ replicate effects anyway.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local specs, lim, st = {}, {}, {}
-- The limit of KEYS[k], parsed once per distinct spec.
local function limitOf(k)
  local l = lim[k]
  if l == nil then
    local spec = ARGV[k + 1]
    l = specs[spec]
    if l == nil then
      local a, r, w, b, sh = string.match(spec, '^(%a),([^,]+),([^,]+),([^,]+),(%d)$')
      l = { a, tonumber(r), tonumber(w), tonumber(b), sh == '1' }
      specs[spec] = l
    end
    lim[k] = l
  end
  return l
end
-- The state of KEYS[k], read on first use: F {ws, c}, S {c}, T {tok}.
local function stateOf(k, l)
  local s = st[k]
  if s ~= nil then return s end
  local a, r, w, b, key = l[1], l[2], l[3], l[4], KEYS[k]
  if a == 'F' then
    local ws = now - (now % w)
    local h = redis.call('HMGET', key, 'w', 'c')
    local c = 0
    if tonumber(h[1]) == ws then c = tonumber(h[2]) or 0 end
    s = { ws = ws, c = c }
  elseif a == 'S' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - w)
    s = { c = redis.call('ZCARD', key) }
  else
    local h = redis.call('HMGET', key, 't', 'l')
    local tok = b
    if h[1] then
      local elapsed = now - tonumber(h[2])
      if elapsed < 0 then elapsed = 0 end
      tok = math.min(b, tonumber(h[1]) + elapsed * r / w)
    end
    s = { tok = tok }
  end
  st[k] = s
  return s
end
local out = {}
-- Per bucket of the current request, by its position: its key index, verdict and availability.
local ids, allowed, avail = {}, {}, {}
for req in string.gmatch(ARGV[1], '[^;]+') do
  local n = 0
  local ok = true
  for id in string.gmatch(req, '%d+') do
    n = n + 1
    local k = tonumber(id)
    local l = limitOf(k)
    local s = stateOf(k, l)
    ids[n] = k
    if l[1] == 'T' then
      allowed[n] = s.tok >= 1
      avail[n] = math.floor(s.tok)
    else
      allowed[n] = s.c < l[2]
      avail[n] = l[2] - s.c
    end
    if not allowed[n] and not l[5] then ok = false end
  end
  for j = 1, n do
    local k = ids[j]
    local l, s = lim[k], st[k]
    local a, r, w, b = l[1], l[2], l[3], l[4]
    local counted = ok and allowed[j]
    local reset
    if a == 'F' then
      if counted then
        s.c = s.c + 1
        s.dirty = true
      end
      reset = s.ws + w - now
    elseif a == 'S' then
      if counted then
        redis.call('ZADD', KEYS[k], now, now .. '.' .. s.c)
        s.c = s.c + 1
        s.dirty = true
        reset = w
      else
        local oldest = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
        if oldest[2] then reset = tonumber(oldest[2]) + w - now else reset = 0 end
      end
    else
      if counted then
        s.tok = s.tok - 1
        s.dirty = true
        reset = math.ceil((b - s.tok) * w / r)
      else
        reset = math.ceil((1 - s.tok) * w / r)
      end
    end
    local remaining = avail[j]
    if counted then remaining = remaining - 1 end
    if remaining < 0 then remaining = 0 end
    if reset < 0 then reset = 0 end
    out[#out + 1] = allowed[j] and 1 or 0
    out[#out + 1] = remaining
    out[#out + 1] = math.ceil(reset)
  end
end
-- What was counted, written once per bucket; each key expires once its bucket is back to its
-- initial state.
for k, s in pairs(st) do
  if s.dirty then
    local l = lim[k]
    local r, w, b, key = l[2], l[3], l[4], KEYS[k]
    if l[1] == 'F' then
      redis.call('HSET', key, 'w', s.ws, 'c', s.c)
      redis.call('PEXPIREAT', key, s.ws + w)
    elseif l[1] == 'S' then
      redis.call('PEXPIRE', key, w)
    else
      redis.call('HSET', key, 't', tostring(s.tok), 'l', now)
      redis.call('PEXPIRE', key, math.ceil((b - s.tok) * w / r) + 1000)
    end
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
  /** false while the breaker is open (no call is made); `waiter.failed` when the call fails or times out. */
  check(checks: readonly LimitCheck[], waiter: LimitWaiter): boolean;
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
  readonly waiter: LimitWaiter;
}

/**
 * The script's answer, "1,41,17,…", to each waiter: per check, allowed (1|0), remaining and reset
 * ms, read in place (no split into strings). Non-negative integers only, as the script writes them.
 */
function answerAll(reply: string, pending: readonly Pending[]): void {
  let at = 0;
  const next = (): number => {
    let n = 0;
    for (; at < reply.length; at++) {
      const c = reply.charCodeAt(at);
      if (c === 44) break;
      n = n * 10 + (c - 48);
    }
    at++;
    return n;
  };
  for (let i = 0; i < pending.length; i++) {
    const p = pending[i]!;
    const out = new Array<LimitVerdict>(p.checks.length);
    for (let j = 0; j < out.length; j++) {
      const allowed = next() === 1;
      const remaining = next();
      out[j] = { allowed, remaining, resetMs: next() };
    }
    answerOne(p, out);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Waiters resume their requests inside the reply handler: one that throws must not keep the
 * others of the call from hearing their answer (the pipeline's own resumption catches; this is
 * the store's guard).
 */
function answerOne(p: Pending, v: LimitVerdict[]): void {
  try {
    p.waiter.answered(v);
  } catch {
    // Nothing to add: the request is the waiter's; the rest of the call goes on.
  }
}

function failOne(p: Pending): void {
  try {
    p.waiter.failed();
  } catch {
    // As in answerOne.
  }
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
  const failed = (): void => {
    probing = false;
    failures++;
    if (state === 'half_open' || failures >= failuresToOpen) {
      openedAt = performance.now();
      setState('open');
    }
  };
  // Cluster: one hash tag for every rate-limit key, so the buckets of any one request share a
  // slot and one script call still covers them all (a tag per bucket cannot work: buckets meet
  // in requests in every combination). The keys live on one master; the others hold the rest.
  const prefix = opts.keyPrefix + (opts.target.cluster !== undefined ? '{rl}:' : 'rl:');
  // The checks of every request that arrives in one turn of the event loop go out together as
  // one call at the end of the turn (its check phase): the write to Redis, reading its reply and
  // ioredis' work per command are paid once per turn, not per request (each request is still
  // decided whole, in arrival order). At light load the turn ends at once, so nothing waits.
  let batch: Pending[] | null = null;
  const flush = (): void => {
    const pending = batch!;
    batch = null;
    // A bucket goes once however many requests of the call count in it (a busy client, a
    // shared key): fewer arguments to write and one read and write of it in the script.
    const slots = new Map<string, number>();
    const keys: string[] = [];
    const limits: string[] = [];
    let refs = '';
    for (let i = 0; i < pending.length; i++) {
      const checks = pending[i]!.checks;
      if (i > 0) refs += ';';
      for (let j = 0; j < checks.length; j++) {
        const c = checks[j]!;
        let slot = slots.get(c.bucket);
        if (slot === undefined) {
          keys.push(prefix + c.bucket);
          limits.push(limitArgs(c.limit, c.shadow));
          slots.set(c.bucket, (slot = keys.length));
        }
        refs += j === 0 ? slot : ',' + slot;
      }
    }
    const started = performance.now();
    const call = (): Promise<string> => {
      sent++;
      return client.sluiceRateLimit(keys.length, [...keys, refs, ...limits]);
    };
    const answer =
      firstReady === null ? call() : Promise.race([firstReady, sleep(opts.timeoutMs)]).then(call);
    answer.then(
      (reply) => {
        opts.onLatency?.(performance.now() - started);
        probing = false;
        failures = 0;
        setState('closed');
        answerAll(reply, pending);
      },
      () => {
        failed();
        for (const p of pending) failOne(p);
      },
    );
  };
  return {
    check(checks, waiter) {
      if (state === 'open') {
        if (performance.now() - openedAt < openMs || probing) return false;
        setState('half_open');
      }
      if (state === 'half_open') {
        if (probing) return false;
        probing = true;
      }
      if (batch === null) {
        batch = [];
        setImmediate(flush);
      }
      batch.push({ checks, waiter });
      return true;
    },
    breaker: () => state,
    sent: () => sent,
    close: () => closeRedisClient(client),
  };
}

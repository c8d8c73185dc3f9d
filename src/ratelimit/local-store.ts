/**
 * Rate-limit buckets in this process's memory: the Local storage of a single process, the
 * `--workers` primary's shared budget (the workers ask it over the worker channel), and the
 * fallback of Global storage while Redis cannot answer.
 *
 * The three algorithms, as the Redis script (redis-store.ts) runs them:
 * - FixedWindow: a count per window aligned to the epoch; at most `requests` per window.
 * - SlidingWindow: the times of the admitted requests of the last window (a log), so no interval
 *   of the window's length ever holds more than `requests`; memory grows with `requests`.
 * - TokenBucket: `burst` tokens, refilled at `requests` per window; at most burst + requests in
 *   any window.
 *
 * Memory is bounded: a bucket is forgotten once it is back to its initial state (checked by a
 * sweep every few seconds), and beyond `maxBuckets` the oldest buckets are forgotten first.
 */
import type { Limiter, LimitCheck, LimitShape, LimitVerdict } from './limits.ts';

interface Fixed {
  windowStart: number;
  count: number;
}

interface Sliding {
  /** Admission times, oldest first, from `head`. */
  times: number[];
  head: number;
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

interface InFlight {
  count: number;
}

type State = Fixed | Sliding | Bucket | InFlight;

interface Entry {
  state: State;
  /** When the bucket is back to its initial state if nothing else is admitted. */
  idleAtMs: number;
}

export interface LocalStoreOptions {
  readonly now?: () => number;
  /** Buckets kept at most; default 1,000,000. */
  readonly maxBuckets?: number;
  /** How often idle buckets are swept; default 5 s. */
  readonly sweepMs?: number;
}

export interface LocalStore extends Limiter {
  check(checks: readonly LimitCheck[]): readonly LimitVerdict[];
  /** Buckets held (for tests and the memory bound). */
  size(): number;
  close(): void;
}

interface Peek {
  readonly allowed: boolean;
  /** Remaining before this request is counted. */
  readonly available: number;
  readonly state: State;
}

function peek(limit: LimitShape, state: State | undefined, now: number): Peek {
  switch (limit.algorithm) {
    case 'FixedWindow': {
      const windowStart = now - (now % limit.windowMs);
      const s = state as Fixed | undefined;
      const count = s !== undefined && s.windowStart === windowStart ? s.count : 0;
      const next: Fixed = s ?? { windowStart, count: 0 };
      next.windowStart = windowStart;
      next.count = count;
      return { allowed: count < limit.requests, available: limit.requests - count, state: next };
    }
    case 'SlidingWindow': {
      const s = (state as Sliding | undefined) ?? { times: [], head: 0 };
      const horizon = now - limit.windowMs;
      while (s.head < s.times.length && s.times[s.head]! <= horizon) s.head++;
      if (s.head > 64 && s.head * 2 > s.times.length) {
        s.times = s.times.slice(s.head);
        s.head = 0;
      }
      const used = s.times.length - s.head;
      return { allowed: used < limit.requests, available: limit.requests - used, state: s };
    }
    case 'TokenBucket': {
      const s = state as Bucket | undefined;
      const rate = limit.requests / limit.windowMs;
      const tokens =
        s === undefined ? limit.burst : Math.min(limit.burst, s.tokens + Math.max(0, now - s.lastMs) * rate);
      const next: Bucket = s ?? { tokens, lastMs: now };
      next.tokens = tokens;
      next.lastMs = now;
      return { allowed: tokens >= 1, available: Math.floor(tokens), state: next };
    }
    case 'InFlight': {
      const s = (state as InFlight | undefined) ?? { count: 0 };
      return { allowed: s.count < limit.requests, available: limit.requests - s.count, state: s };
    }
  }
}

/** Counts one admitted request; returns when the bucket is idle again. */
function commit(limit: LimitShape, state: State, now: number): number {
  switch (limit.algorithm) {
    case 'FixedWindow': {
      const s = state as Fixed;
      s.count++;
      return s.windowStart + limit.windowMs;
    }
    case 'SlidingWindow': {
      (state as Sliding).times.push(now);
      return now + limit.windowMs;
    }
    case 'TokenBucket': {
      const s = state as Bucket;
      s.tokens -= 1;
      return now + ((limit.burst - s.tokens) * limit.windowMs) / limit.requests;
    }
    case 'InFlight':
      (state as InFlight).count++;
      // Kept until its requests are released.
      return Infinity;
  }
}

/** Ms until the bucket admits again (refused) or is whole again (admitted). */
function resetIn(limit: LimitShape, state: State, allowed: boolean, now: number): number {
  switch (limit.algorithm) {
    case 'FixedWindow':
      return (state as Fixed).windowStart + limit.windowMs - now;
    case 'SlidingWindow': {
      const s = state as Sliding;
      if (s.head >= s.times.length) return 0;
      const t = allowed ? s.times[s.times.length - 1]! : s.times[s.head]!;
      return t + limit.windowMs - now;
    }
    case 'TokenBucket': {
      const s = state as Bucket;
      const missing = allowed ? limit.burst - s.tokens : 1 - s.tokens;
      return Math.max(0, Math.ceil((missing * limit.windowMs) / limit.requests));
    }
    case 'InFlight':
      // Unknowable: as soon as one of them ends.
      return 0;
  }
}

export function createLocalStore(opts: LocalStoreOptions = {}): LocalStore {
  const now = opts.now ?? Date.now;
  const maxBuckets = opts.maxBuckets ?? 1_000_000;
  const buckets = new Map<string, Entry>();
  const sweep = (): void => {
    const t = now();
    for (const [k, e] of buckets) if (e.idleAtMs <= t) buckets.delete(k);
  };
  const timer = setInterval(sweep, opts.sweepMs ?? 5000);
  timer.unref();
  // Reused between calls: what the first pass found, so each bucket is looked up once.
  const peeks: Peek[] = [];
  const entries: (Entry | undefined)[] = [];
  return {
    check(checks) {
      const t = now();
      let ok = true;
      peeks.length = 0;
      entries.length = 0;
      for (let i = 0; i < checks.length; i++) {
        const c = checks[i]!;
        const e = buckets.get(c.bucket);
        const p = peek(c.limit, e?.state, t);
        entries.push(e);
        peeks.push(p);
        if (!p.allowed && !c.shadow) ok = false;
      }
      const out = new Array<LimitVerdict>(checks.length);
      let swept = false;
      for (let i = 0; i < checks.length; i++) {
        const c = checks[i]!;
        const p = peeks[i]!;
        const counted = ok && p.allowed;
        if (counted) {
          const idleAtMs = commit(c.limit, p.state, t);
          // A sweep for room may have dropped what the first pass found.
          const e = swept ? buckets.get(c.bucket) : entries[i];
          if (e === undefined) {
            if (buckets.size >= maxBuckets) {
              sweep();
              swept = true;
              // Still full: forget the oldest bucket (it admits afresh) rather than grow without bound.
              if (buckets.size >= maxBuckets) buckets.delete(buckets.keys().next().value!);
            }
            buckets.set(c.bucket, { state: p.state, idleAtMs });
          } else {
            e.state = p.state;
            e.idleAtMs = idleAtMs;
          }
        }
        out[i] = {
          allowed: p.allowed,
          remaining: Math.max(0, p.available - (counted ? 1 : 0)),
          resetMs: resetIn(c.limit, p.state, counted, t),
        };
      }
      return out;
    },
    release(names) {
      for (const name of names) {
        const e = buckets.get(name);
        if (e === undefined) continue;
        const s = e.state as InFlight;
        if (--s.count <= 0) buckets.delete(name);
      }
    },
    size: () => buckets.size,
    close: () => clearInterval(timer),
  };
}

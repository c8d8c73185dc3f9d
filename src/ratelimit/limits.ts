/**
 * What a rate-limit store is asked and answers. Plain data, so the same checks go to the
 * in-process store, over the worker channel to the primary's, or to Redis in one script call.
 */

/** InFlight: at most `requests` at once; each admitted request is released by `release`. */
export type LimitAlgorithm = 'FixedWindow' | 'SlidingWindow' | 'TokenBucket' | 'InFlight';

export interface LimitShape {
  readonly algorithm: LimitAlgorithm;
  readonly requests: number;
  readonly windowMs: number;
  /** TokenBucket capacity; the windows ignore it. */
  readonly burst: number;
}

export interface LimitCheck {
  /** The bucket's full name: rule, limit shape and key values. */
  readonly bucket: string;
  readonly limit: LimitShape;
  /** Counted when the request is admitted; never the reason it is not. */
  readonly shadow: boolean;
}

export interface LimitVerdict {
  /** This bucket alone would admit the request. */
  readonly allowed: boolean;
  /** Requests this bucket admits now, after this one if it was admitted. */
  readonly remaining: number;
  /** Ms until this bucket admits again (refused) or its quota is whole again (admitted). */
  readonly resetMs: number;
}

/**
 * A store: decides every check of one request together. The request is admitted when every
 * non-shadow check allows it; only then is it counted, in every bucket (shadow ones too), so a
 * refused request spends no one's budget.
 */
export interface Limiter {
  check(checks: readonly LimitCheck[]): readonly LimitVerdict[] | Promise<readonly LimitVerdict[]>;
  /** An admitted InFlight request is done: one fewer in each of these buckets. */
  release(buckets: readonly string[]): void;
}

/** Hears a remote store's answer to one request's checks: one call, never from inside `check`. */
export interface LimitWaiter {
  /** The verdicts, in the order of the checks. */
  answered(verdicts: readonly LimitVerdict[]): void;
  /** The call failed or timed out. */
  failed(): void;
}

/**
 * A store in another process (Redis). Answers through a waiter rather than a promise: one reply
 * answers a whole batch of requests, each resumed at once. `false` means it cannot answer now (its
 * breaker is open, its credentials could not be read): the waiter is never called, and the rules'
 * failureMode decides at once.
 */
export interface RemoteLimiter {
  check(checks: readonly LimitCheck[], waiter: LimitWaiter): boolean;
}

/** Every non-shadow verdict allows. */
export function admitted(checks: readonly LimitCheck[], verdicts: readonly LimitVerdict[]): boolean {
  for (let i = 0; i < checks.length; i++) if (!checks[i]!.shadow && !verdicts[i]!.allowed) return false;
  return true;
}

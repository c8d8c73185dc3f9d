import { inspect } from 'node:util';

export interface UntilOptions {
  /** Give up after this long. Default 5000. */
  timeoutMs?: number;
  /** Wait this long between attempts. Default 20. */
  intervalMs?: number;
  /** What is being waited for, for the failure message ("gateway ready on :8080"). */
  what?: string;
}

type Seen = { kind: 'value'; value: unknown } | { kind: 'error'; error: unknown } | { kind: 'pending' };

const PENDING = Symbol('pending');

/**
 * Polls `fn` until it returns a truthy value without throwing, and resolves to that value.
 * Tests wait with this instead of a fixed sleep. On the deadline it rejects with an Error naming
 * `what` and the last value or error seen, so a failure says what the test was looking at.
 * An attempt still pending at the deadline does not hold the test past it.
 */
export async function until<T>(fn: () => Promise<T> | T, opts: UntilOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const what = opts.what ?? 'condition';
  const deadline = Date.now() + timeoutMs;
  let seen: Seen;
  let attempts = 0;

  for (;;) {
    attempts += 1;
    try {
      const value = await raceDeadline(fn, deadline);
      if (value === PENDING) {
        seen = { kind: 'pending' };
      } else if (value) {
        return value;
      } else {
        seen = { kind: 'value', value };
      }
    } catch (error) {
      seen = { kind: 'error', error };
    }
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) break;
    await sleep(Math.min(intervalMs, leftMs));
  }

  throw new Error(
    `until: timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}; ${describe(seen)}`,
    seen.kind === 'error' ? { cause: seen.error } : undefined,
  );
}

async function raceDeadline<T>(fn: () => Promise<T> | T, deadline: number): Promise<T | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof PENDING>((resolve) => {
    timer = setTimeout(() => resolve(PENDING), Math.max(0, deadline - Date.now()));
  });
  try {
    // Promise.resolve().then(fn) turns a synchronous throw into a rejection like an async one.
    return await Promise.race([Promise.resolve().then(fn), late]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(seen: Seen): string {
  switch (seen.kind) {
    case 'pending':
      return 'the last attempt was still pending';
    case 'value':
      return `last value: ${inspect(seen.value, { depth: 4, breakLength: Infinity })}`;
    case 'error':
      return `last error: ${inspect(seen.error, { depth: 4 })}`;
  }
}

/**
 * Local rate limits across `--workers`: the budget is the primary's, so N workers share one
 * budget, not N. A worker sends the checks of the requests that arrived in one event-loop turn as
 * one message and the primary answers them from its store in one message, in order; every
 * decision is the primary's, so the shared limit is exact (no leases to strand at a window's end).
 * Should the primary not answer in time, the worker decides from a store of its own rather than
 * keep a request waiting.
 */
import type { Worker } from 'node:cluster';
import type { Limiter, LimitCheck, LimitVerdict } from '../ratelimit/limits.ts';
import { createLocalStore, type LocalStore } from '../ratelimit/local-store.ts';

/** worker → primary */
export interface LimitsAsk {
  readonly type: 'sluice:limits';
  readonly id: number;
  readonly checks: readonly (readonly LimitCheck[])[];
  /** InFlight buckets whose requests ended since the last message. */
  readonly release: readonly string[];
}

/** primary → worker */
export interface LimitsAnswer {
  readonly type: 'sluice:limits-answer';
  readonly id: number;
  readonly verdicts: readonly (readonly LimitVerdict[])[];
}

const ANSWER_TIMEOUT_MS = 1000;

interface Waiting {
  readonly resolve: (v: readonly LimitVerdict[]) => void;
  readonly checks: readonly LimitCheck[];
}

/** In a worker: the Limiter whose budget is the primary's. */
export function createWorkerLimiter(
  send: (m: LimitsAsk) => boolean = (m) => process.send?.(m) ?? false,
): Limiter & { onMessage(m: unknown): void; close(): void } {
  const own = createLocalStore();
  const inFlight = new Map<number, { waiting: Waiting[]; timer: NodeJS.Timeout }>();
  let batch: Waiting[] = [];
  let released: string[] = [];
  let scheduled = false;
  let nextId = 1;
  const decideHere = (waiting: readonly Waiting[]): void => {
    for (const w of waiting) w.resolve(own.check(w.checks));
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  const flush = (): void => {
    scheduled = false;
    const waiting = batch;
    const release = released;
    batch = [];
    released = [];
    if (waiting.length === 0) {
      send({ type: 'sluice:limits', id: 0, checks: [], release });
      return;
    }
    const id = nextId++;
    const timer = setTimeout(() => {
      inFlight.delete(id);
      decideHere(waiting);
    }, ANSWER_TIMEOUT_MS);
    timer.unref();
    inFlight.set(id, { waiting, timer });
    if (!send({ type: 'sluice:limits', id, checks: waiting.map((w) => w.checks), release })) {
      clearTimeout(timer);
      inFlight.delete(id);
      decideHere(waiting);
    }
  };
  return {
    check(checks) {
      return new Promise((resolve) => {
        batch.push({ resolve, checks });
        schedule();
      });
    },
    release(buckets) {
      released.push(...buckets);
      schedule();
    },
    onMessage(m) {
      const a = m as LimitsAnswer;
      if (a === null || typeof a !== 'object' || a.type !== 'sluice:limits-answer') return;
      const entry = inFlight.get(a.id);
      if (entry === undefined) return;
      inFlight.delete(a.id);
      clearTimeout(entry.timer);
      entry.waiting.forEach((w, i) => w.resolve(a.verdicts[i] ?? own.check(w.checks)));
    },
    close() {
      own.close();
      for (const e of inFlight.values()) {
        clearTimeout(e.timer);
        decideHere(e.waiting);
      }
      inFlight.clear();
    },
  };
}

/** In the primary: answers every worker's asks from one store. */
export function createPrimaryLimits(): {
  answer(worker: Worker, m: LimitsAsk): void;
  close(): void;
} {
  let store: LocalStore | null = null;
  return {
    answer(worker, m) {
      store ??= createLocalStore();
      const s = store;
      if (m.release.length > 0) s.release(m.release);
      if (m.checks.length === 0) return;
      const verdicts = m.checks.map((c) => s.check(c));
      if (worker.isConnected())
        worker.send({ type: 'sluice:limits-answer', id: m.id, verdicts } satisfies LimitsAnswer);
    },
    close() {
      store?.close();
      store = null;
    },
  };
}

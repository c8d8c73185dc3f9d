/**
 * One worker process per core (node:cluster; the workers share the listen ports). The primary
 * owns the providers and the reload loop: its config thread reads, validates and judges each set
 * once, then the primary ships the ResourceSet (JSON-safe model) to every worker as a delta
 * against what that worker holds (control/set-delta.ts); each worker compiles it (reusing what
 * did not change), applies it and answers with the snapshot hash it compiled, so every worker is
 * known to serve the same version. The primary
 * restarts a worker that dies (with back-off), coordinates the drain, and answers the status,
 * metrics and admin ports for all of them.
 */
import cluster, { type Worker } from 'node:cluster';
import { compileSnapshot, createCompileCache } from '../compile/index.ts';
import { createDeltaReceiver, createDeltaSender, type DeltaSender, type SetDelta } from './set-delta.ts';
import type { Gateway } from './reconcile.ts';
import {
  createPrimaryLimits,
  createWorkerLimiter,
  type LimitsAnswer,
  type LimitsAsk,
} from './worker-limits.ts';
import type { Limiter } from '../ratelimit/limits.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import type { ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics, MetricsJson } from '../observability/metrics.ts';

/** primary → worker */
export type ToWorker =
  | {
      readonly type: 'sluice:apply';
      readonly version: number;
      readonly hash: string;
      /** The set, as what this worker does not hold yet (control/set-delta.ts). */
      readonly delta: SetDelta;
      /** The clock the primary compiled at, so every worker compiles the same snapshot. */
      readonly nowMs: number;
    }
  | { readonly type: 'sluice:drain'; readonly delayMs: number; readonly timeoutMs: number }
  | { readonly type: 'sluice:log-level'; readonly level: string }
  | { readonly type: 'sluice:query'; readonly id: number; readonly what: WorkerQuery }
  | LimitsAnswer;

/** worker → primary */
export type FromWorker =
  | { readonly type: 'sluice:hello' }
  | {
      readonly type: 'sluice:applied';
      readonly version: number;
      readonly hash: string;
      readonly boundPorts: readonly (readonly [number, number])[];
      /** Ports the worker's serving snapshot needs and has not bound. */
      readonly unbound: readonly number[];
    }
  | {
      readonly type: 'sluice:apply-failed';
      readonly version: number;
      readonly error: string;
      readonly unbound: readonly number[];
    }
  | { readonly type: 'sluice:answer'; readonly id: number; readonly value: unknown }
  | LimitsAsk;

export type WorkerQuery = 'metrics' | 'clusters' | 'certs' | 'stats' | 'egress';

/** What a worker says about itself (admin /workers). */
export interface WorkerStats {
  readonly pid: number;
  readonly version: number;
  readonly hash: string;
  /** Requests this worker has finished; shows the load is spread. */
  readonly requests: number;
  readonly listeners: readonly (readonly [number, number])[];
}

export interface WorkerStatus {
  readonly slot: number;
  readonly pid: number | null;
  readonly state: 'starting' | 'serving' | 'restarting' | 'stopped';
  readonly version: number;
  readonly hash: string | null;
  readonly restarts: number;
  readonly requests: number | null;
}

export interface WorkerPoolOptions {
  readonly count: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** First restart delay; doubles per quick death up to maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A worker that lived this long resets the back-off. */
  readonly stableAfterMs?: number;
  /** How long an apply may take in every worker. */
  readonly applyTimeoutMs?: number;
}

export interface WorkerPool {
  /** Resolves once every worker has started and can take a config. */
  readonly started: Promise<void>;
  /** Ships a validated set to every worker; resolves once all have applied it, rejects (and re-syncs the previous set) if any could not. */
  apply(resources: ResourceSet, version: number, hash: string, nowMs: number): Promise<void>;
  /**
   * Every running worker serves `version` or newer with every listener it needs bound (and at
   * least one runs).
   */
  allServing(version: number): boolean;
  status(): Promise<WorkerStatus[]>;
  /** Asks every running worker; answers in slot order, missing ones left out. */
  query(what: WorkerQuery, timeoutMs?: number): Promise<{ slot: number; pid: number; value: unknown }[]>;
  broadcast(message: ToWorker): void;
  /** Graceful: every worker drains (accepting for delayMs, in-flight up to timeoutMs), then exits. */
  drain(delayMs: number, timeoutMs: number): Promise<void>;
  /** Immediate: SIGKILL every worker. */
  kill(): void;
}

interface Slot {
  readonly index: number;
  worker: Worker | null;
  hello: boolean;
  version: number;
  hash: string | null;
  /** Ports its serving snapshot needs and it has not bound, as it last said. */
  unbound: readonly number[];
  restarts: number;
  quickDeaths: number;
  startedAtMs: number;
  restartTimer: NodeJS.Timeout | null;
  /** Applies that failed in a row (a restarted worker whose port is taken); sets the retry back-off. */
  applyFailures: number;
  retryTimer: NodeJS.Timeout | null;
  /** What this worker holds of the sets shipped to it. */
  readonly sender: DeltaSender;
}

interface Desired {
  readonly version: number;
  readonly hash: string;
  readonly resources: ResourceSet;
  readonly nowMs: number;
}

interface PendingApply {
  readonly desired: Desired;
  readonly waiting: Set<number>;
  /** Workers the set goes to once the one applying it now has answered. */
  readonly queue: Slot[];
  readonly errors: string[];
  readonly done: () => void;
}

export function startWorkerPool(opts: WorkerPoolOptions): WorkerPool {
  const log = opts.logger;
  const backoffMs = opts.backoffMs ?? 250;
  const maxBackoffMs = opts.maxBackoffMs ?? 10_000;
  const stableAfterMs = opts.stableAfterMs ?? 30_000;
  const applyTimeoutMs = opts.applyTimeoutMs ?? 30_000;
  const slots: Slot[] = [];
  /** The set every worker should serve: the last accepted one, or the one being applied. */
  let desired: Desired | null = null;
  let accepted: Desired | null = null;
  let pending: PendingApply | null = null;
  let stopping = false;
  let queryId = 0;
  const answers = new Map<number, (slot: number, value: unknown) => void>();
  const limits = createPrimaryLimits();
  const exited = new Set<() => void>();
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));

  const running = (): Slot[] => slots.filter((s) => s.worker !== null && s.worker.isConnected());
  const updateGauge = (): void => opts.metrics.workers.set(slots.filter((s) => s.worker !== null).length);

  const send = (slot: Slot, message: ToWorker): void => {
    const w = slot.worker;
    if (w === null || !w.isConnected()) return;
    try {
      w.send(message);
    } catch (err) {
      log.warn({ err, slot: slot.index }, 'could not message worker');
    }
  };

  const shipDesired = (slot: Slot): void => {
    if (desired === null || !slot.hello) return;
    if (pending !== null && pending.desired === desired) pending.waiting.add(slot.index);
    send(slot, {
      type: 'sluice:apply',
      version: desired.version,
      hash: desired.hash,
      delta: slot.sender.encode(desired.resources),
      nowMs: desired.nowMs,
    });
  };

  const serves = (slot: Slot, d: Desired): boolean => slot.version === d.version && slot.hash === d.hash;

  /**
   * A worker that could not apply what every worker should serve (restarted while another process
   * holds a port), or that lost a listener it needs, tries again with back-off, so it recovers once
   * the port is free (applying the same set again opens what is missing).
   */
  const retryLater = (slot: Slot): void => {
    if (stopping || slot.retryTimer !== null) return;
    slot.applyFailures += 1;
    const delayMs = Math.min(maxBackoffMs, backoffMs * 2 ** (slot.applyFailures - 1));
    slot.retryTimer = setTimeout(() => {
      slot.retryTimer = null;
      // A pool-wide apply under way ships to this worker itself.
      if (desired !== null && pending === null && (!serves(slot, desired) || slot.unbound.length > 0))
        shipDesired(slot);
    }, delayMs);
  };

  /** The next queued worker still there gets the set. */
  const shipNext = (p: PendingApply): void => {
    for (let s = p.queue.shift(); s !== undefined; s = p.queue.shift()) {
      if (s.worker !== null && s.worker.isConnected() && s.hello && p.waiting.has(s.index)) {
        shipDesired(s);
        return;
      }
      p.waiting.delete(s.index);
    }
  };

  const settle = (slotIndex: number, error: string | null): void => {
    const p = pending;
    if (p === null || !p.waiting.delete(slotIndex)) return;
    if (error !== null) p.errors.push(error);
    shipNext(p);
    if (p.waiting.size === 0) p.done();
  };

  const onMessage = (slot: Slot, message: FromWorker): void => {
    switch (message.type) {
      case 'sluice:hello':
        slot.hello = true;
        if (slots.every((s) => s.hello)) markStarted();
        log.debug({ slot: slot.index, pid: slot.worker?.process.pid }, 'worker up');
        shipDesired(slot);
        return;
      case 'sluice:applied': {
        slot.version = message.version;
        slot.hash = message.hash;
        slot.unbound = message.unbound;
        slot.applyFailures = 0;
        opts.metrics.listeners.set(message.boundPorts.length);
        opts.metrics.workerSnapshotVersion.set({ worker: String(slot.index) }, message.version);
        const want = pending?.desired ?? desired;
        const mismatch = want !== null && want.version === message.version && want.hash !== message.hash;
        log.debug(
          { slot: slot.index, version: message.version, hash: message.hash.slice(0, 12) },
          'worker applied config',
        );
        if (want !== null && message.version === want.version) {
          settle(
            slot.index,
            mismatch
              ? `worker ${slot.index} compiled a different snapshot (${message.hash.slice(0, 12)}, expected ${want.hash.slice(0, 12)})`
              : null,
          );
        }
        return;
      }
      case 'sluice:apply-failed':
        slot.unbound = message.unbound;
        // It may hold nothing now (it could not decode): the next ship carries the whole set.
        slot.sender.reset();
        log.error(
          { slot: slot.index, version: message.version, error: message.error },
          'worker could not apply config',
        );
        if (pending !== null && pending.desired.version === message.version)
          settle(slot.index, message.error);
        retryLater(slot);
        return;
      case 'sluice:answer':
        answers.get(message.id)?.(slot.index, message.value);
        return;
      case 'sluice:limits':
        if (slot.worker !== null) limits.answer(slot.worker, message);
        return;
    }
  };

  const fork = (slot: Slot): void => {
    slot.restartTimer = null;
    if (stopping) return;
    const worker = cluster.fork({ SLUICE_WORKER_SLOT: String(slot.index) });
    slot.worker = worker;
    slot.sender.reset();
    slot.hello = false;
    slot.version = 0;
    slot.hash = null;
    slot.unbound = [];
    slot.applyFailures = 0;
    if (slot.retryTimer !== null) clearTimeout(slot.retryTimer);
    slot.retryTimer = null;
    slot.startedAtMs = Date.now();
    updateGauge();
    worker.on('message', (m: FromWorker) => onMessage(slot, m));
    worker.on('error', (err: Error) => log.warn({ err, slot: slot.index }, 'worker channel error'));
    worker.on('exit', (code: number | null, signal: string | null) => {
      if (slot.worker === worker) slot.worker = null;
      slot.hello = false;
      opts.metrics.workerSnapshotVersion.set({ worker: String(slot.index) }, 0);
      updateGauge();
      settle(slot.index, null);
      for (const fn of exited) fn();
      if (stopping) return;
      const livedMs = Date.now() - slot.startedAtMs;
      slot.quickDeaths = livedMs >= stableAfterMs ? 0 : slot.quickDeaths + 1;
      const delayMs = Math.min(maxBackoffMs, backoffMs * 2 ** Math.max(0, slot.quickDeaths - 1));
      slot.restarts += 1;
      opts.metrics.workerRestarts.inc();
      log.error(
        { slot: slot.index, pid: worker.process.pid, code, signal, livedMs, restartInMs: delayMs },
        'worker died; restarting',
      );
      slot.restartTimer = setTimeout(() => fork(slot), delayMs);
    });
  };

  // Workers run the same command line; serve-process.ts sends them to runWorker().
  for (let i = 0; i < opts.count; i++) {
    const slot: Slot = {
      index: i,
      worker: null,
      hello: false,
      version: 0,
      hash: null,
      unbound: [],
      restarts: 0,
      quickDeaths: 0,
      startedAtMs: 0,
      restartTimer: null,
      applyFailures: 0,
      retryTimer: null,
      sender: createDeltaSender(),
    };
    slots.push(slot);
    fork(slot);
  }

  /** Sends `target` to every worker not serving it and waits (bounded) for their answers. */
  const applyEverywhere = (target: Desired): Promise<string[]> =>
    new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const p: PendingApply = {
        desired: target,
        waiting: new Set(),
        queue: [],
        errors: [],
        done: () => {
          if (timer !== null) clearTimeout(timer);
          if (pending === p) pending = null;
          resolve(p.errors);
        },
      };
      pending = p;
      desired = target;
      // One worker at a time: while one compiles and swaps, the others serve at full speed (on a
      // small machine they would otherwise all compile at once, each slowed by the others).
      for (const slot of running()) if (slot.hello && !serves(slot, target)) p.waiting.add(slot.index);
      p.queue.push(...running().filter((slot) => p.waiting.has(slot.index)));
      shipNext(p);
      if (p.waiting.size === 0) {
        p.done();
        return;
      }
      timer = setTimeout(() => {
        p.errors.push(
          `workers ${[...p.waiting].join(', ')} did not apply version ${target.version} within ${applyTimeoutMs} ms`,
        );
        p.waiting.clear();
        p.done();
      }, applyTimeoutMs);
    });

  return {
    started,
    async apply(resources, version, hash, nowMs) {
      const target: Desired = { version, hash, resources, nowMs };
      const errors = await applyEverywhere(target);
      if (errors.length === 0) {
        accepted = target;
        return;
      }
      // Some worker could not (a port in use, say): put every worker back on the last good set.
      desired = accepted;
      if (accepted !== null) {
        const back = accepted;
        const again = await applyEverywhere(back);
        if (again.length > 0)
          log.error({ errors: again }, 'workers could not go back to the last good config; retrying');
      }
      throw new SluiceError('SLUICE_LISTEN_FAILED', errors[0] ?? 'a worker could not apply the config');
    },
    allServing(version) {
      // A worker already on a newer set (a reload being applied) still serves: readiness must not
      // flap on every reload. One restarted and not yet configured (version 0) does not.
      const live = running();
      return live.length > 0 && live.every((s) => s.hello && s.version >= version && s.unbound.length === 0);
    },
    async status() {
      const answered = await this.query('stats', 1000);
      const requests = new Map(answered.map((a) => [a.slot, (a.value as WorkerStats).requests]));
      return slots.map((s) => ({
        slot: s.index,
        pid: s.worker?.process.pid ?? null,
        state: stopping
          ? 'stopped'
          : s.worker === null
            ? 'restarting'
            : s.hello && s.version > 0
              ? 'serving'
              : 'starting',
        version: s.version,
        hash: s.hash,
        restarts: s.restarts,
        requests: requests.get(s.index) ?? null,
      }));
    },
    query(what, timeoutMs = 2000) {
      const id = ++queryId;
      const targets = running().filter((s) => s.hello);
      const got = new Map<number, unknown>();
      return new Promise((resolve) => {
        const finish = (): void => {
          clearTimeout(timer);
          answers.delete(id);
          resolve(
            targets
              .filter((s) => got.has(s.index))
              .map((s) => ({ slot: s.index, pid: s.worker?.process.pid ?? 0, value: got.get(s.index) })),
          );
        };
        const timer = setTimeout(finish, timeoutMs);
        answers.set(id, (slot, value) => {
          got.set(slot, value);
          if (got.size === targets.length) finish();
        });
        if (targets.length === 0) finish();
        for (const s of targets) send(s, { type: 'sluice:query', id, what });
      });
    },
    broadcast(message) {
      for (const s of running()) send(s, message);
    },
    async drain(delayMs, timeoutMs) {
      stopping = true;
      limits.close();
      for (const s of slots) {
        if (s.restartTimer !== null) clearTimeout(s.restartTimer);
        if (s.retryTimer !== null) clearTimeout(s.retryTimer);
      }
      const live = running();
      for (const s of live) send(s, { type: 'sluice:drain', delayMs, timeoutMs });
      const allGone = (): boolean => slots.every((s) => s.worker === null);
      if (allGone()) return;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (!allGone()) return;
          clearTimeout(timer);
          exited.delete(check);
          resolve();
        };
        // A worker that does not finish by then is cut, as its connections would be.
        const timer = setTimeout(
          () => {
            for (const s of slots) s.worker?.process.kill('SIGKILL');
          },
          delayMs + timeoutMs + 5000,
        );
        exited.add(check);
      });
    },
    kill() {
      stopping = true;
      limits.close();
      for (const s of slots) {
        if (s.restartTimer !== null) clearTimeout(s.restartTimer);
        if (s.retryTimer !== null) clearTimeout(s.retryTimer);
        s.worker?.process.kill('SIGKILL');
      }
    },
  };
}

/**
 * The worker side: one gateway, applying what the primary ships. Signals are the primary's to
 * handle (a terminal's Ctrl-C reaches the whole process group); the primary says when to drain.
 * Resolves with the exit code once drained; if the primary dies, node:cluster exits the worker.
 */
export function runWorker(opts: {
  identity: GatewayIdentity;
  logger: Logger;
  /** This worker's registry: process (and request) metrics, sent to the primary on scrape. */
  metrics: Metrics;
  /**
   * The gateway as serve builds it; `countRequest` must be called once per finished request,
   * `limits` is the Local rate-limit store all workers share (the primary's).
   */
  createGateway: (countRequest: () => void, limits: Limiter) => Gateway;
  setLogLevel: (level: string) => void;
  /** After each applied set (the worker's ACME runner follows the MeshConfig's issuers and store). */
  onApplied?: (resources: ResourceSet) => void;
}): Promise<number> {
  const log = opts.logger;
  let requests = 0;
  const limits = createWorkerLimiter();
  const gateway = opts.createGateway(() => {
    requests++;
  }, limits);
  const metrics = opts.metrics;
  let version = 0;
  let hash = '';
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  process.on('SIGHUP', ignore);
  const reply = (message: FromWorker): void => {
    if (process.connected) process.send?.(message);
  };

  // The set arrives as a delta against the last one; compile reuses the routes of unchanged
  // VirtualServices, so a change to one costs this event loop about one VirtualService. Between
  // the steps, requests waiting are served (a very large set takes tens of ms a step).
  const receiver = createDeltaReceiver();
  const cache = createCompileCache();
  const served = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  let applying: Promise<void> = Promise.resolve();
  const apply = async (m: Extract<ToWorker, { type: 'sluice:apply' }>): Promise<void> => {
    try {
      const resources = receiver.decode(m.delta);
      await served();
      const snapshot = compileSnapshot(resources, { ...opts.identity, nowMs: m.nowMs }, cache);
      await served();
      await gateway.apply(snapshot);
      version = m.version;
      hash = snapshot.hash;
      opts.onApplied?.(resources);
      reply({
        type: 'sluice:applied',
        version,
        hash,
        boundPorts: [...gateway.boundPorts()],
        unbound: gateway.unboundPorts(),
      });
    } catch (err) {
      reply({
        type: 'sluice:apply-failed',
        version: m.version,
        error: err instanceof Error ? err.message : String(err),
        unbound: gateway.unboundPorts(),
      });
    }
  };

  const answer = async (id: number, what: WorkerQuery): Promise<void> => {
    let value: unknown;
    if (what === 'metrics') value = (await metrics.registry.getMetricsAsJSON()) satisfies MetricsJson;
    else if (what === 'clusters') value = gateway.clusterStatus();
    else if (what === 'certs') value = gateway.certificates();
    else if (what === 'egress') value = gateway.egressBlocked();
    else
      value = {
        pid: process.pid,
        version,
        hash,
        requests,
        listeners: [...gateway.boundPorts()],
      } satisfies WorkerStats;
    reply({ type: 'sluice:answer', id, value });
  };

  return new Promise((resolve) => {
    process.on('message', (m: ToWorker) => {
      switch (m.type) {
        case 'sluice:apply':
          // In order, one at a time: each delta is against the set the one before left.
          applying = applying.then(() => apply(m));
          return;
        case 'sluice:query':
          void answer(m.id, m.what);
          return;
        case 'sluice:log-level':
          opts.setLogLevel(m.level);
          return;
        case 'sluice:limits-answer':
          limits.onMessage(m);
          return;
        case 'sluice:drain':
          log.info({ delayMs: m.delayMs, timeoutMs: m.timeoutMs }, 'worker draining');
          gateway.startDraining();
          setTimeout(() => {
            gateway.drain(m.timeoutMs).then(
              () => resolve(0),
              (err: unknown) => {
                log.error({ err }, 'worker drain failed');
                resolve(1);
              },
            );
          }, m.delayMs);
          return;
      }
    });
    reply({ type: 'sluice:hello' });
  });
}

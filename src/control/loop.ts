/**
 * The reload loop: providers report whole resource sets; the loop waits for a quiet moment
 * (about 100 ms, capped near 1 s so a steady drizzle of events still reloads), keeps only the
 * newest set, builds it, and applies it unless it is identical to what runs or it is rejected.
 * Policy (DESIGN §5): the file provider's sets are refused whole on any error; the last good
 * snapshot keeps serving.
 */
import { formatDiagnostic, hasErrors } from '../errors/diagnostic.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProviderUpdate } from '../providers/provider.ts';
import type { BuildResult } from './build.ts';

export type ReloadResult = 'accepted' | 'rejected' | 'unchanged' | 'failed';

export interface ReloadStats {
  accepted: number;
  rejected: number;
  unchanged: number;
  failed: number;
  /** Hash of the snapshot serving now, null before the first accepted set. */
  currentHash: string | null;
  /** 1 for the first accepted snapshot, +1 per accepted change. */
  version: number;
  /** Date.now() when the serving snapshot was applied. */
  appliedAtMs: number | null;
}

export interface ReloadLoopOptions {
  readonly build: (update: ProviderUpdate) => BuildResult;
  /** Installs a built snapshot; throws (e.g. a port that cannot be bound) to reject it. */
  readonly apply: (build: BuildResult, version: number) => Promise<void>;
  readonly logger: Logger;
  readonly quietMs?: number;
  readonly maxWaitMs?: number;
  readonly onResult?: (result: ReloadResult, build: BuildResult | null) => void;
}

export interface ReloadLoop {
  /** Hand this to a provider's start(). */
  readonly onUpdate: (update: ProviderUpdate) => void;
  readonly stats: Readonly<ReloadStats>;
  /** The newest accepted build, null before the first. */
  current(): BuildResult | null;
  /** Resolves once the pending work (if any) has been processed; for tests and shutdown. */
  settled(): Promise<void>;
  stop(): void;
}

export function createReloadLoop(opts: ReloadLoopOptions): ReloadLoop {
  const quietMs = opts.quietMs ?? 100;
  const maxWaitMs = opts.maxWaitMs ?? 1000;
  const log = opts.logger;
  const stats: ReloadStats = {
    accepted: 0,
    rejected: 0,
    unchanged: 0,
    failed: 0,
    currentHash: null,
    version: 0,
    appliedAtMs: null,
  };
  let pending: ProviderUpdate | null = null;
  let firstPendingAt = 0;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let stopped = false;
  let current: BuildResult | null = null;
  let idleWaiters: (() => void)[] = [];

  const finish = (result: ReloadResult, build: BuildResult | null): void => {
    stats[result]++;
    opts.onResult?.(result, build);
  };

  const processOne = async (update: ProviderUpdate): Promise<void> => {
    let build: BuildResult;
    try {
      build = opts.build(update);
    } catch (err) {
      log.error({ err }, 'config build failed unexpectedly; keeping the current config');
      finish('failed', null);
      return;
    }
    if (build.snapshot.hash === stats.currentHash) {
      log.debug({ hash: build.snapshot.hash }, 'config unchanged');
      finish('unchanged', build);
      return;
    }
    if (hasErrors(build.diagnostics)) {
      const errors = build.diagnostics.filter((d) => d.level === 'error');
      for (const d of errors) log.error(formatDiagnostic(d));
      log.error(
        { errors: errors.length },
        stats.currentHash === null
          ? 'config rejected; nothing is served until a valid config arrives'
          : 'config rejected; the last good config keeps serving',
      );
      finish('rejected', build);
      return;
    }
    for (const d of build.diagnostics)
      (d.level === 'warning' ? log.warn : log.info).call(log, formatDiagnostic(d));
    const version = stats.version + 1;
    try {
      await opts.apply(build, version);
    } catch (err) {
      log.error({ err }, 'config could not be applied; the last good config keeps serving');
      finish('rejected', build);
      return;
    }
    stats.version = version;
    stats.currentHash = build.snapshot.hash;
    stats.appliedAtMs = Date.now();
    current = build;
    log.info(
      { version, hash: build.snapshot.hash.slice(0, 12), resources: build.resources.resources.length },
      'config applied',
    );
    finish('accepted', build);
  };

  const drain = (): void => {
    timer = null;
    if (running || stopped) return;
    const update = pending;
    pending = null;
    if (!update) {
      wakeIdle();
      return;
    }
    running = processOne(update).finally(() => {
      running = null;
      if (pending && !stopped) schedule();
      else wakeIdle();
    });
  };

  const schedule = (): void => {
    if (timer) clearTimeout(timer);
    const waited = Date.now() - firstPendingAt;
    const delay = Math.max(0, Math.min(quietMs, maxWaitMs - waited));
    timer = setTimeout(drain, delay);
  };

  const wakeIdle = (): void => {
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  return {
    onUpdate(update) {
      if (stopped) return;
      if (!pending && !timer) firstPendingAt = Date.now();
      pending = update;
      if (!running) schedule();
    },
    stats,
    current: () => current,
    settled() {
      if (!pending && !running && !timer) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      wakeIdle();
    },
  };
}

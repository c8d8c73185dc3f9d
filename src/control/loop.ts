/**
 * The reload loop, the one place that decides when to read the configuration and whether what it
 * read is a change (DESIGN §5 hot reload). A provider only says "may have changed"; the loop waits
 * for a quiet moment (about 100 ms, capped near 1 s so a steady drizzle of events still reloads),
 * reads the whole set, and goes on only when it differs from the last set it judged. Each change
 * is built, every diagnostic of it logged once, and applied unless it is refused.
 * Policy: the file provider's sets are refused whole on any error, and a set that would bind no
 * Gateway server at all (an empty or truncated file, a directory emptied mid-deploy) is refused
 * as an accident unless `allowEmpty` (--allow-empty-config) says it is meant; the last good
 * snapshot keeps serving. The Kubernetes API's synced state is authoritative: a resource with
 * errors is left out and the rest applied (build.ts refusesSet), and a state binding no server is
 * applied with a warning. A set the provider marks incomplete (not yet synced) is not judged.
 */
import { createHash } from 'node:crypto';
import { hashResources } from '../compile/index.ts';
import { formatDiagnostic, type Diagnostic } from '../errors/diagnostic.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProviderUpdate } from '../providers/provider.ts';
import { refusesSet, type BuildResult } from './build.ts';

export type ReloadResult = 'accepted' | 'rejected' | 'unchanged' | 'failed';

export interface ReloadStats {
  accepted: number;
  rejected: number;
  unchanged: number;
  failed: number;
  /** Reads of the configuration; a read that finds nothing new has no result. */
  reads: number;
  /** Hash of the snapshot serving now, null before the first accepted set. */
  currentHash: string | null;
  /** 1 for the first accepted snapshot, +1 per accepted change. */
  version: number;
  /** Date.now() when the serving snapshot was applied. */
  appliedAtMs: number | null;
}

export interface ReloadLoopOptions {
  /** Reads the whole configuration as it is now (the provider's read()). */
  readonly read: () => Promise<ProviderUpdate>;
  /** Load + compile. */
  readonly build: (update: ProviderUpdate) => BuildResult | Promise<BuildResult>;
  /** Installs a built snapshot; throws (e.g. a port that cannot be bound) to reject it. */
  readonly apply: (build: BuildResult, version: number) => Promise<void>;
  readonly logger: Logger;
  /** Accept a set that binds no Gateway server (--allow-empty-config). */
  readonly allowEmpty?: boolean;
  readonly quietMs?: number;
  readonly maxWaitMs?: number;
  readonly onResult?: (result: ReloadResult, build: BuildResult | null) => void;
}

/** What one explicit reload did. */
export interface Reloaded {
  readonly result: ReloadResult;
  /** The set read (null when it could not be read). */
  readonly update: ProviderUpdate | null;
  /** Why apply() refused it (a port that cannot be bound), when that is what happened. */
  readonly applyError: unknown;
}

export interface ReloadLoop {
  /** Hand this to a provider's start(): something may have changed; read after a quiet moment. */
  readonly changed: () => void;
  /**
   * Reads now and judges what it finds, even if it is what was read last (first load, SIGHUP:
   * its diagnostics are logged again). Runs after any reload already under way.
   */
  reload(): Promise<Reloaded>;
  readonly stats: Readonly<ReloadStats>;
  /** The newest accepted build, null before the first. */
  current(): BuildResult | null;
  /** Resolves once no read is pending or running; for tests and shutdown. */
  settled(): Promise<void>;
  stop(): void;
}

/** Identifies what a provider reported: the resources and every load diagnostic. */
function fingerprintOf(update: ProviderUpdate): string {
  const diagnostics = createHash('sha256').update(JSON.stringify(update.diagnostics)).digest('hex');
  return `${hashResources(update.resources)}:${diagnostics}`;
}

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Why a set binds nothing, in the terms of what the user wrote. */
function emptyMessage(build: BuildResult, update: ProviderUpdate, first: boolean): string {
  const resources = build.resources.resources;
  const gateways = resources.filter((r) => r.kind === 'Gateway').length;
  const files = update.files === undefined ? '' : ` from ${count(update.files, 'file')}`;
  const why =
    gateways === 0
      ? 'it has no Gateway'
      : `none of its ${count(gateways, 'Gateway')} gives this gateway a server (selector, hosts)`;
  return (
    `the new config binds no Gateway server: ${why} (${count(resources.length, 'resource')}${files}); ` +
    `refusing it (--allow-empty-config accepts it); ` +
    (first ? 'nothing is served until a config with a server arrives' : 'the last good config keeps serving')
  );
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
    reads: 0,
    currentHash: null,
    version: 0,
    appliedAtMs: null,
  };
  let current: BuildResult | null = null;
  /** What the last judged read held; a read holding the same is nothing new. */
  let judged: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  /** When the first event not yet covered by a read arrived (0: none). */
  let firstChangeAt = 0;
  /** A debounced read is queued and has not started: later events are covered by it. */
  let readQueued = false;
  let tail: Promise<unknown> = Promise.resolve();
  let busy = 0;
  let stopped = false;
  let idleWaiters: (() => void)[] = [];
  /** Why the provider's picture is incomplete, as last logged (null: it was complete). */
  let waitingFor: string | null = null;

  const finish = (
    result: ReloadResult,
    build: BuildResult | null,
    update: ProviderUpdate | null,
    applyError: unknown = null,
  ): Reloaded => {
    stats[result]++;
    opts.onResult?.(result, build);
    return { result, update, applyError };
  };

  const logAll = (diagnostics: readonly Diagnostic[]): void => {
    for (const d of diagnostics)
      (d.level === 'error' ? log.error : d.level === 'warning' ? log.warn : log.info).call(
        log,
        formatDiagnostic(d),
      );
  };

  /** One read and, if it is news (or `forced`), its verdict. null: nothing new. */
  const cycle = async (forced: boolean): Promise<Reloaded | null> => {
    firstChangeAt = 0;
    stats.reads++;
    let update: ProviderUpdate;
    try {
      update = await opts.read();
    } catch (err) {
      log.error({ err }, 'config could not be read; keeping the current config');
      return finish('failed', null, null);
    }
    if (stopped) return null;
    if (update.incomplete !== undefined) {
      if (waitingFor !== update.incomplete) log.info(`config not complete yet: ${update.incomplete}`);
      waitingFor = update.incomplete;
      return null;
    }
    waitingFor = null;
    const fingerprint = fingerprintOf(update);
    if (fingerprint === judged && !forced) {
      log.debug('config read; nothing changed');
      return null;
    }
    let build: BuildResult;
    try {
      build = await opts.build(update);
    } catch (err) {
      log.error({ err }, 'config build failed unexpectedly; keeping the current config');
      return finish('failed', null, update);
    }
    const first = current === null;
    const previous = judged;
    judged = fingerprint;
    // Every change says everything about itself, whatever becomes of it.
    logAll(build.diagnostics);
    if (build.diagnostics.some(refusesSet)) {
      log.error(
        { errors: build.diagnostics.filter(refusesSet).length },
        first
          ? 'config rejected; nothing is served until a valid config arrives'
          : 'config rejected; the last good config keeps serving',
      );
      return finish('rejected', build, update);
    }
    // The egress proxy is a bound server too: a config of ServiceEntries alone is not empty.
    const binds = build.snapshot.listeners.size + (build.snapshot.egress === undefined ? 0 : 1);
    if (update.authoritative === true && binds === 0)
      log.warn(
        formatDiagnostic({
          level: 'warning',
          code: 'SLUICE_KUBE_NO_SERVER',
          message: `the synced state binds no Gateway server (${count(build.resources.resources.length, 'resource')}); applying it: nothing is served until a Gateway selects this gateway`,
        }),
      );
    // With allowEmpty off no empty set is ever accepted, so "binds nothing" is always a loss.
    else if (!opts.allowEmpty && binds === 0) {
      log.error(
        formatDiagnostic({
          level: 'error',
          code: 'SLUICE_CONFIG_EMPTY',
          message: emptyMessage(build, update, first),
        }),
      );
      return finish('rejected', build, update);
    }
    if (build.snapshot.hash === stats.currentHash) {
      log.info({ hash: build.snapshot.hash.slice(0, 12) }, 'config unchanged: it compiles to what serves');
      return finish('unchanged', build, update);
    }
    const version = stats.version + 1;
    try {
      await opts.apply(build, version);
    } catch (err) {
      // Not judged: the same set is tried again on the next read (the port may be free by then).
      judged = previous;
      log.error(
        { err },
        first
          ? 'config could not be applied; nothing is served'
          : 'config could not be applied; the last good config keeps serving',
      );
      return finish('rejected', build, update, err);
    }
    stats.version = version;
    stats.currentHash = build.snapshot.hash;
    stats.appliedAtMs = Date.now();
    current = build;
    log.info(
      { version, hash: build.snapshot.hash.slice(0, 12), resources: build.resources.resources.length },
      'config applied',
    );
    return finish('accepted', build, update);
  };

  const wakeIdle = (): void => {
    if (busy > 0 || timer !== null) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  /** Cycles run one at a time, in order. */
  const enqueue = <T>(work: () => Promise<T>): Promise<T> => {
    busy++;
    const next = tail.then(work);
    tail = next
      .catch(() => undefined)
      .finally(() => {
        busy--;
        wakeIdle();
      });
    return next;
  };

  const fire = (): void => {
    timer = null;
    if (stopped || readQueued) return;
    readQueued = true;
    void enqueue(() => {
      readQueued = false;
      return stopped ? Promise.resolve(null) : cycle(false);
    });
  };

  return {
    changed() {
      if (stopped) return;
      const now = Date.now();
      if (firstChangeAt === 0) firstChangeAt = now;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(fire, Math.max(0, Math.min(quietMs, maxWaitMs - (now - firstChangeAt))));
    },
    async reload() {
      if (stopped) return { result: 'unchanged', update: null, applyError: null };
      // This read covers every event so far.
      if (timer !== null) clearTimeout(timer);
      timer = null;
      const done = await enqueue(() => cycle(true));
      return done ?? { result: 'unchanged', update: null, applyError: null };
    },
    stats,
    current: () => current,
    settled() {
      if (busy === 0 && timer === null) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      wakeIdle();
    },
  };
}

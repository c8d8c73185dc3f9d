/**
 * `sluice serve`: providers → reload loop → gateway, plus the status, metrics and admin ports.
 * With --workers 1 everything runs in this process (startServe). With more, this process is the
 * primary (startPrimary): it owns the providers and the loop, validates each set once, ships it
 * to node:cluster workers that each compile and serve it (control/workers.ts), and answers the
 * status, metrics and admin ports for all of them. Returns handles so tests and `quickstart` can
 * run it in-process; serve-process.ts wires signals.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Provider, ProviderHealth, ProviderUpdate } from '../providers/provider.ts';
import { createReloadLoop, type ReloadLoop, type ReloadResult } from '../control/loop.ts';
import { createSnapshotBuilder, type BuildResult } from '../control/build.ts';
import { startConfigThread } from '../control/config-thread.ts';
import { createGateway, type AcmeHooks, type Gateway } from '../control/reconcile.ts';
import { createEgressLedger, mergeBlocked, type BlockedDestination } from '../observability/egress-ledger.ts';
import { createAcmeRunner, type AcmeRunner, type AcmeTuning } from '../control/acme-runner.ts';
import { startWorkerPool, type WorkerPool } from '../control/workers.ts';
import { startStatusServer, type StatusServer } from '../admin/status-server.ts';
import { startAdminServer, type AdminServer, type AdminState } from '../admin/admin-server.ts';
import { startMetricsServer, type MetricsServer } from '../admin/metrics-server.ts';
import {
  createMetrics,
  aggregateRegistries,
  registerOverflowCounter,
  registerMirrorCounters,
  registerPoolGauges,
  statsJson,
  type OverflowSample,
  type PoolSample,
  type Metrics,
  type MetricsJson,
} from '../observability/metrics.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createObservability } from '../observability/request-observer.ts';
import { createPolicyMetrics } from '../observability/policy-metrics.ts';
import { createRateLimitMetrics } from '../observability/ratelimit-metrics.ts';
import type { Limiter } from '../ratelimit/limits.ts';
import { registerTlsMetrics } from '../observability/tls-metrics.ts';
import { mergeCertificateLists, type CertificateInfo } from '../observability/tls-stats.ts';
import type { Registry } from 'prom-client';
import type { RequestContext } from '../dataplane/request-context.ts';
import { limitStatus, type PoolStatus } from '../upstream/pools.ts';
import { mirrorCounts } from '../upstream/mirror.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import type { Options } from './flags.ts';
import { identityOf, ingressOptionsOf } from './io.ts';

/** What signal handling needs from a running serve, single-process or primary. */
export interface Running {
  readonly logger: Logger;
  readonly loop: ReloadLoop;
  readonly status: StatusServer;
  readonly admin: AdminServer;
  readonly metricsServer: MetricsServer;
  readonly metrics: Metrics;
  /** Resolves when the first config has been applied (by every worker). */
  readonly firstApplied: Promise<void>;
  isReady(): boolean;
  /** SIGHUP: re-read every config path now, report its diagnostics, and reload if anything changed. */
  reload(): Promise<void>;
  /** SIGTERM behaviour: readiness 503 at once, accept for drainDelay, then close and finish in-flight work. */
  drain(): Promise<void>;
  /** Immediate stop (tests, second signal). */
  close(): Promise<void>;
}

export interface RunningGateway extends Running {
  readonly gateway: Gateway;
}

export interface RunningPrimary extends Running {
  readonly workers: WorkerPool;
}

export interface ServeDeps {
  readonly logger?: Logger;
  /** Reload loop timing (tests). */
  readonly quietMs?: number;
  readonly maxWaitMs?: number;
  /** ACME manager timings (tests). */
  readonly acme?: AcmeTuning;
  /** Kubernetes provider timings (tests). */
  readonly kubeBackoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly leaderTiming?: { readonly leaseDurationMs: number; readonly renewMs: number };
}

/**
 * The Lease the replicas of one gateway share to pick the one that writes status: named by the
 * gateway's labels, so an ingress and an egress deployment in one namespace each have their own.
 */
export function statusLeaseName(labels: Readonly<Record<string, string>>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
  return `sluice-status-${createHash('sha256').update(text).digest('hex').slice(0, 10)}`;
}

function checkOptions(opts: Options): void {
  if (opts.config.length === 0 && !opts.kubernetes)
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      'no --config given (a file or directory of Istio YAML), and no --kubernetes',
    );
  if (!opts.kubernetes && (opts.watchNamespaces.length > 0 || opts.kubeconfig !== null || opts.writeStatus))
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      '--watch-namespace, --kubeconfig and --write-status need --kubernetes',
    );
  if (!opts.writeStatus && (opts.publishService !== null || opts.publishStatusAddresses.length > 0))
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      '--publish-service and --publish-status-address need --write-status',
    );
}

export function isLogLevel(logger: Logger, level: string): boolean {
  return level === 'silent' || Object.hasOwn(logger.levels.values, level);
}

interface ControlParts {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly apply: (build: BuildResult, version: number) => Promise<void>;
  /** Called after each accepted apply. */
  readonly afterApply?: () => void;
  /** Orders certificates for the accepted config (this process or the primary runs the orders). */
  readonly acme: AcmeRunner;
  readonly ready: (version: number) => boolean;
  /** The registry to scrape: this process's, or the primary's and every worker's merged. */
  readonly scrape: () => Promise<Registry>;
  readonly admin: Pick<AdminState, 'clusters' | 'certs' | 'egressBlocked' | 'setLogLevel'> & {
    workers(loop: ReloadLoop): unknown;
  };
  /**
   * Drains the data plane: at once every response says `Connection: close`; listeners accept for
   * --drain-delay, then stop; in-flight work gets --drain-timeout.
   */
  readonly drainDataPlane: () => Promise<void>;
  /** Stops the data plane at once. */
  readonly closeDataPlane: () => Promise<void>;
}

/** The part single-process and primary share: provider, loop, status/metrics/admin ports, drain. */
async function startControl(opts: Options, deps: ServeDeps, parts: ControlParts): Promise<Running> {
  const { logger, metrics } = parts;
  const identity = identityOf(opts);
  let draining = false;
  let resolveFirst!: () => void;
  const firstApplied = new Promise<void>((resolve) => (resolveFirst = resolve));
  // Config files plus certificates (--certs-dir/<name>/ and Gateway file paths) as Secrets, read,
  // validated and judged in the config thread, off this event loop.
  const thread = startConfigThread({
    sources: {
      paths: opts.config,
      defaultNamespace: opts.configNamespace,
      certsDir: opts.certsDir,
      gatewayNamespace: opts.namespace,
      ingress: ingressOptionsOf(opts),
    },
    identity,
    kubernetes: opts.kubernetes
      ? {
          kubeconfig: opts.kubeconfig,
          namespaces: opts.watchNamespaces,
          gatewayNamespace: opts.namespace,
          rootNamespace: opts.rootNamespace,
          ingressClass: opts.ingressClass,
          ...(deps.kubeBackoff !== undefined ? { backoff: deps.kubeBackoff } : {}),
          ...(opts.writeStatus
            ? {
                writeStatus: {
                  leaseName: statusLeaseName(opts.labels),
                  // The pod's name (its hostname), made unique as client-go's identities are.
                  identity: `${hostname()}_${randomUUID()}`,
                  ...(deps.leaderTiming !== undefined ? { timing: deps.leaderTiming } : {}),
                  publish: {
                    ...(opts.publishService !== null ? { service: opts.publishService } : {}),
                    addresses: opts.publishStatusAddresses,
                  },
                },
              }
            : {}),
        }
      : null,
  });
  const provider: Provider = thread.provider;
  let lastHealth: ProviderHealth | null = null;
  provider.onHealth?.((health) => {
    metrics.recordProviderHealth(health);
    if (lastHealth?.connected !== health.connected && (lastHealth !== null || !health.connected)) {
      if (health.connected) logger.info({ source: health.source }, 'config source reachable again');
      else
        logger.warn(
          { source: health.source, error: health.error },
          'config source unreachable; retrying with back-off, the last config keeps serving',
        );
    }
    if ((health.statusWriteFailures ?? 0) > (lastHealth?.statusWriteFailures ?? 0))
      logger.warn({ error: health.statusError }, 'could not write Kubernetes status or Events');
    lastHealth = health;
  });
  const loop = createReloadLoop({
    logger,
    quietMs: deps.quietMs,
    maxWaitMs: deps.maxWaitMs,
    onResult: (result: ReloadResult, build) => {
      metrics.configReloads.inc({ result });
      if (result === 'accepted' || result === 'rejected')
        for (const d of build?.diagnostics ?? [])
          if (d.unsupported !== undefined)
            metrics.configUnsupported.inc({ kind: d.subject?.kind ?? '', field: d.unsupported });
      if (result === 'accepted')
        metrics.recordApplied(loop.stats.version, loop.stats.appliedAtMs ?? Date.now());
    },
    read: () => provider.read(),
    allowEmpty: opts.allowEmptyConfig,
    build: createSnapshotBuilder(thread.judge, identity),
    apply: async (build, version) => {
      await parts.apply(build, version);
      parts.afterApply?.();
      parts.acme.update(build.resources);
      resolveFirst();
    },
  });
  // Every result starts at 0 so a rate() over it works from the first scrape.
  for (const r of ['accepted', 'rejected', 'unchanged', 'failed'] as const)
    metrics.configReloads.inc({ result: r }, 0);
  const isReady = (): boolean => !draining && loop.stats.version > 0 && parts.ready(loop.stats.version);
  const started: { close(): Promise<void> }[] = [];
  const undo = async (err: unknown): Promise<never> => {
    await Promise.allSettled([parts.acme.close(), provider.stop(), ...started.map((s) => s.close())]);
    await parts.closeDataPlane();
    throw err;
  };
  const status = await startStatusServer({ host: opts.bind, port: opts.statusPort, isReady }).catch(
    (err: unknown) => undo(portError('status', opts.bind, opts.statusPort, err)),
  );
  started.push(status);
  const metricsServer = await startMetricsServer({
    host: opts.bind,
    port: opts.metricsPort,
    contentType: metrics.registry.contentType,
    render: async () => (await parts.scrape()).metrics(),
  }).catch((err: unknown) => undo(portError('metrics', opts.bind, opts.metricsPort, err)));
  started.push(metricsServer);
  const admin = await startAdminServer({
    port: opts.adminPort,
    state: {
      snapshot: () => loop.current()?.snapshot ?? null,
      resources: () => loop.current()?.resources.resources ?? [],
      version: () => loop.stats.version,
      stats: () => statsJson(parts.scrape()),
      logLevel: () => logger.level,
      clusters: parts.admin.clusters,
      certs: parts.admin.certs,
      egressBlocked: parts.admin.egressBlocked,
      acme: () => parts.acme.status(),
      setLogLevel: parts.admin.setLogLevel,
      workers: () => parts.admin.workers(loop),
    },
  }).catch((err: unknown) => undo(portError('admin', '127.0.0.1', opts.adminPort, err)));
  started.push(admin);
  await provider.start(loop.changed).catch(undo);
  // The first load, now: a Gateway port that cannot be bound, or a --config path that cannot be
  // read, is a process fault at start (exit 3); a config that is merely invalid or binds nothing
  // waits, at readiness 503, for one that works.
  const first = await loop.reload();
  const fault = startFault(first.update, first.applyError);
  if (fault !== null) {
    loop.stop();
    await provider.stop();
    await undo(fault);
  }

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    loop.stop();
    // First, and synchronously as far as it goes: a second signal exits right after this call.
    const dataPlane = parts.closeDataPlane();
    await provider.stop();
    await Promise.allSettled([dataPlane, parts.acme.close(), ...started.map((s) => s.close())]);
  };
  const reload = async (): Promise<void> => {
    if (closed || draining) return;
    await loop.reload();
  };
  const drain = async (): Promise<void> => {
    if (draining || closed) return;
    draining = true;
    logger.info(
      { drainDelayMs: opts.drainDelayMs, drainTimeoutMs: opts.drainTimeoutMs },
      'draining: readiness is 503 now',
    );
    // A config change during the drain would only open listeners that are about to close.
    loop.stop();
    void parts.acme.close();
    const dataPlane = parts.drainDataPlane();
    await provider.stop();
    await dataPlane;
    logger.info('drained');
    await close();
  };
  return { logger, loop, status, admin, metricsServer, metrics, firstApplied, isReady, reload, drain, close };
}

/**
 * A status/metrics/admin port that cannot be bound is a process fault with a one-line reason that
 * names the flag that moves it.
 */
function portError(what: 'status' | 'metrics' | 'admin', host: string, port: number, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined) return err;
  return new SluiceError(
    'SLUICE_LISTEN_FAILED',
    `cannot listen on ${host}:${port} (${what} port): ${code}; --${what}-port moves it`,
    { cause: err },
  );
}

/** What makes the first load a process fault: an unbindable Gateway port, an unreadable --config path. */
function startFault(update: ProviderUpdate | null, applyError: unknown): SluiceError | null {
  if (applyError !== null)
    return applyError instanceof SluiceError
      ? applyError
      : new SluiceError('SLUICE_LISTEN_FAILED', String(applyError), { cause: applyError });
  const unreadable = update?.diagnostics.find((d) => d.code === 'SLUICE_CONFIG_READ' && d.level === 'error');
  return unreadable === undefined ? null : new SluiceError('SLUICE_CONFIG_READ', unreadable.message);
}

const WORKER_START_TIMEOUT_MS = 15_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The gateway as `serve` runs it, in the single process or in each worker: the one place the data
 * plane's per-request hooks (access log, request metrics) are wired. `onRequestDone` is extra
 * work the caller needs per finished request (a worker counts its requests).
 */
export function createServingGateway(
  opts: Options,
  logger: Logger,
  metrics: Metrics,
  onRequestDone?: (ctx: RequestContext) => void,
  acme?: AcmeHooks,
  /** The Local rate-limit store shared by all workers (the primary's); absent = this process's own. */
  rateLimitLocal?: Limiter,
): Gateway {
  // Request metrics (istio_*) join this process's registry; the access log and tracing follow
  // each request's pinned snapshot (MeshConfig accessLogFile…, tracing.provider), so reloads apply.
  const obs = createObservability({
    registry: metrics.registry,
    namespace: opts.namespace,
    labels: opts.labels,
    warn: (msg) => logger.warn(msg),
  });
  const done =
    onRequestDone === undefined
      ? obs.onRequestDone
      : (ctx: RequestContext): void => {
          obs.onRequestDone(ctx);
          onRequestDone(ctx);
        };
  const gateway = createGateway({
    bind: opts.bind,
    logger,
    onRequestDone: done,
    onEgressDone: obs.onRequestDone,
    egressLedger: createEgressLedger(metrics.registry),
    ...(obs.metrics !== null ? { tcp: obs.metrics } : {}),
    ...(acme !== undefined ? { acme } : {}),
    policy: createPolicyMetrics(metrics.registry, logger),
    rateLimit: {
      ...(rateLimitLocal !== undefined ? { local: rateLimitLocal } : {}),
      observer: createRateLimitMetrics(metrics.registry),
    },
  });
  registerPoolGauges(metrics.registry, () => poolSamples(gateway));
  registerOverflowCounter(metrics.registry, () => overflowSamples(gateway));
  registerMirrorCounters(metrics.registry, mirrorCounts);
  registerTlsMetrics(metrics.registry, {
    stats: () => gateway.tlsStats,
    certificates: (nowMs) => gateway.certificates(nowMs),
  });
  // Buffered access log lines and queued spans are flushed once the data plane has stopped.
  return {
    ...gateway,
    close: () => gateway.close().finally(() => obs.close()),
    drain: (timeoutMs: number) => gateway.drain(timeoutMs).finally(() => obs.close()),
  };
}

/**
 * Pools are keyed by settings; the metric names the cluster (`outbound|80||a.ns.svc.cluster.local`),
 * the first by name when several share a pool.
 */
export function poolSamples(gateway: Gateway): PoolSample[] {
  const names = new Map<string, string>();
  for (const c of gateway.current.get().clusters.values()) {
    const seen = names.get(c.key);
    if (seen === undefined || c.name < seen) names.set(c.key, c.name);
  }
  return (gateway.clusterStatus() as PoolStatus[]).map((p) => ({
    cluster: names.get(p.clusterKey) ?? p.clusterKey,
    connected: p.connected,
    active: p.active,
    pending: p.pending,
    ejected: p.ejected,
    ejections: p.ejections,
  }));
}

const LIMIT_NAMES = {
  connections: 'maxConnections',
  pending: 'http1MaxPendingRequests',
  requests: 'http2MaxRequests',
  retries: 'maxRetries',
} as const;

/** Overflow counts per cluster state, named by the cluster that holds it now. */
export function overflowSamples(gateway: Gateway): OverflowSample[] {
  const names = new Map<string, string>();
  for (const c of gateway.current.get().clusters.values()) names.set(c.stateKey, c.name);
  const out: OverflowSample[] = [];
  for (const s of limitStatus()) {
    const cluster = names.get(s.stateKey);
    if (cluster === undefined) continue;
    for (const [k, limit] of Object.entries(LIMIT_NAMES))
      out.push({ cluster, limit, count: s.overflows[k as keyof typeof LIMIT_NAMES] });
  }
  return out;
}

/**
 * The ACME runner of the process that orders (single process, or the primary: one orderer per
 * host), counting into this process's registry.
 */
function createOrderingAcme(opts: Options, deps: ServeDeps, logger: Logger, metrics: Metrics): AcmeRunner {
  return createAcmeRunner({
    role: 'order',
    certsDir: opts.certsDir,
    logger,
    labels: opts.labels,
    metrics: { orderResult: (issuer, _credential, result) => metrics.acmeOrders.inc({ issuer, result }) },
    ...(deps.acme !== undefined ? { tuning: deps.acme } : {}),
  });
}

/** One process: the gateway's listeners live here. */
export async function startServe(opts: Options, deps: ServeDeps = {}): Promise<RunningGateway> {
  checkOptions(opts);
  const logger = deps.logger ?? createLogger({ level: opts.logLevel });
  const metrics = createMetrics({ role: 'single' });
  const acme = createOrderingAcme(opts, deps, logger, metrics);
  const gateway = createServingGateway(opts, logger, metrics, undefined, acme.hooks);
  metrics.workers.set(1);
  const running = await startControl(opts, deps, {
    logger,
    metrics,
    apply: (build) => gateway.apply(build.snapshot),
    afterApply: () => metrics.listeners.set(gateway.boundPorts().size),
    acme,
    // A listener the serving config needs that is not bound (one a refused reload could not
    // reopen) makes the gateway not ready.
    ready: () => gateway.unboundPorts().length === 0,
    scrape: () => Promise.resolve(metrics.registry),
    admin: {
      clusters: () => gateway.clusterStatus(),
      certs: () => gateway.certificates(),
      egressBlocked: () => gateway.egressBlocked(),
      workers: (loop) => [
        {
          slot: 0,
          pid: process.pid,
          state: 'serving',
          version: loop.stats.version,
          hash: loop.stats.currentHash,
          restarts: 0,
          requests: null,
        },
      ],
      setLogLevel: (level) => {
        if (!isLogLevel(logger, level)) return false;
        logger.level = level;
        return true;
      },
    },
    drainDataPlane: async () => {
      // Keep-alive clients hear `Connection: close` from now on; new connections are still taken.
      gateway.startDraining();
      await sleep(opts.drainDelayMs);
      await gateway.drain(opts.drainTimeoutMs);
    },
    closeDataPlane: () => gateway.close(),
  });
  return { ...running, gateway };
}

/** The primary of --workers N: no listeners of its own; the workers serve. */
export async function startPrimary(opts: Options, deps: ServeDeps = {}): Promise<RunningPrimary> {
  checkOptions(opts);
  const logger = deps.logger ?? createLogger({ level: opts.logLevel });
  const metrics = createMetrics({ role: 'primary' });
  const workers = startWorkerPool({ count: opts.workers, logger, metrics });
  // A worker that cannot even start must not keep the status port from answering.
  let timer: NodeJS.Timeout | undefined;
  const startedInTime = await Promise.race([
    workers.started.then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), WORKER_START_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (startedInTime) logger.info({ workers: opts.workers }, 'workers started');
  else
    logger.warn(
      { workers: opts.workers, waitedMs: WORKER_START_TIMEOUT_MS },
      'not every worker has started; going on',
    );
  const running = await startControl(opts, deps, {
    logger,
    metrics,
    apply: (build, version) => workers.apply(build.resources, version, build.snapshot.hash, build.nowMs),
    // The workers answer its challenges from the shared store (control/acme-runner.ts).
    acme: createOrderingAcme(opts, deps, logger, metrics),
    ready: (version) => workers.allServing(version),
    scrape: async () =>
      aggregateRegistries(
        metrics.registry,
        (await workers.query('metrics')).map((a) => a.value as MetricsJson),
      ),
    admin: {
      clusters: async () =>
        (await workers.query('clusters')).map((a) => ({ worker: a.slot, pid: a.pid, clusters: a.value })),
      // Every worker serves the same snapshot version: one list, not one per worker.
      certs: async () =>
        mergeCertificateLists((await workers.query('certs')).map((a) => a.value as CertificateInfo[])),
      egressBlocked: async () =>
        mergeBlocked((await workers.query('egress')).map((a) => a.value as BlockedDestination[])),
      workers: () => workers.status(),
      setLogLevel: (level) => {
        if (!isLogLevel(logger, level)) return false;
        logger.level = level;
        workers.broadcast({ type: 'sluice:log-level', level });
        return true;
      },
    },
    drainDataPlane: () => workers.drain(opts.drainDelayMs, opts.drainTimeoutMs),
    closeDataPlane: async () => workers.kill(),
  });
  return { ...running, workers };
}

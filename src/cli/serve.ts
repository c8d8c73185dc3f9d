/**
 * `sluice serve`: providers → reload loop → gateway, plus the status and admin ports.
 * Returns a handle so tests and `quickstart` can run it in-process; main.ts wires signals.
 */
import { createFileProvider } from '../providers/file.ts';
import type { Provider } from '../providers/provider.ts';
import { createReloadLoop, type ReloadLoop } from '../control/loop.ts';
import { buildFromResources, type BuildResult } from '../control/build.ts';
import { createGateway, type Gateway } from '../control/reconcile.ts';
import { startStatusServer, type StatusServer } from '../admin/status-server.ts';
import { startAdminServer, type AdminServer } from '../admin/admin-server.ts';
import { startMetricsServer, type MetricsServer } from '../admin/metrics-server.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import type { Options } from './flags.ts';
import { identityOf } from './io.ts';

export interface RunningGateway {
  readonly logger: Logger;
  readonly gateway: Gateway;
  readonly loop: ReloadLoop;
  readonly status: StatusServer;
  readonly admin: AdminServer;
  readonly metricsServer: MetricsServer;
  readonly metrics: Metrics;
  /** Resolves when the first config has been applied. */
  readonly firstApplied: Promise<void>;
  isReady(): boolean;
  /** SIGTERM behaviour: readiness 503 at once, accept for drainDelay, then close and finish in-flight work. */
  drain(): Promise<void>;
  /** Immediate stop (tests, second signal). */
  close(): Promise<void>;
}

export async function startServe(opts: Options, deps: { logger?: Logger } = {}): Promise<RunningGateway> {
  const logger = deps.logger ?? createLogger({ level: opts.logLevel });
  if (opts.kubernetes) throw new SluiceError('SLUICE_CLI_USAGE', '--kubernetes is not available yet in this build; use --config');
  if (opts.config.length === 0) throw new SluiceError('SLUICE_CLI_USAGE', 'no --config given (a file or directory of Istio YAML)');
  if (opts.workers > 1) {
    // node:cluster workers come with the operations work; until then one process serves.
    logger.warn({ workers: opts.workers }, 'multiple workers are not implemented yet; serving with one process');
  }
  const identity = identityOf(opts);
  const gateway = createGateway({ bind: opts.bind, logger });
  let draining = false;
  let resolveFirst!: () => void;
  const firstApplied = new Promise<void>((resolve) => (resolveFirst = resolve));
  const metrics = createMetrics();
  const loop = createReloadLoop({
    logger,
    onResult: (result) => {
      metrics.configReloads.inc({ result });
      metrics.snapshotVersion.set(loop.stats.version);
      if (result === 'accepted') metrics.snapshotAppliedAt.set(Date.now() / 1000);
    },
    build: (update) => buildFromResources(update.resources, update.diagnostics, identity),
    apply: async (build: BuildResult) => {
      await gateway.apply(build.snapshot);
      resolveFirst();
    },
  });
  const isReady = (): boolean => !draining && loop.stats.version > 0;
  const status = await startStatusServer({ host: opts.bind, port: opts.statusPort, isReady });
  const closeOnFailure = (servers: { close(): Promise<void> }[]) => async (err: unknown) => {
    await Promise.allSettled(servers.map((s) => s.close()));
    throw err;
  };
  const metricsServer = await startMetricsServer({ host: opts.bind, port: opts.metricsPort, registry: metrics.registry }).catch(
    closeOnFailure([status]),
  );
  const admin = await startAdminServer({
    port: opts.adminPort,
    logger,
    state: {
      snapshot: () => loop.current()?.snapshot ?? null,
      resources: () => loop.current()?.resources.resources ?? [],
      clusters: () => gateway.clusterStatus(),
      version: () => loop.stats.version,
    },
  }).catch(closeOnFailure([status, metricsServer]));
  const provider: Provider = createFileProvider({ paths: opts.config, defaultNamespace: opts.configNamespace });
  await provider.start(loop.onUpdate);

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    loop.stop();
    await provider.stop();
    await Promise.allSettled([gateway.close(), status.close(), admin.close(), metricsServer.close()]);
  };
  const drain = async (): Promise<void> => {
    draining = true;
    logger.info({ drainDelayMs: opts.drainDelayMs, drainTimeoutMs: opts.drainTimeoutMs }, 'draining');
    await new Promise((r) => setTimeout(r, opts.drainDelayMs));
    loop.stop();
    await provider.stop();
    await gateway.drain(opts.drainTimeoutMs);
    await close();
  };
  return { logger, gateway, loop, status, admin, metricsServer, metrics, firstApplied, isReady, drain, close };
}

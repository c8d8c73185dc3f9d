/**
 * Signals around a running gateway: SIGTERM/SIGINT drain (readiness 503 at once, keep accepting
 * for --drain-delay, then finish in-flight work up to --drain-timeout); a second signal stops at
 * once; SIGHUP re-reads the config. Resolves with the exit code; main.ts exits.
 */
import cluster from 'node:cluster';
import type { Options } from './flags.ts';
import { createServingGateway, isLogLevel, startPrimary, startServe, type Running } from './serve.ts';
import { runWorker } from '../control/workers.ts';
import { createAcmeRunner } from '../control/acme-runner.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { identityOf } from './io.ts';

export function waitForSignals(running: Running, onFirst?: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let signalled = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (signalled) {
        running.logger.warn({ signal }, 'second signal: stopping now');
        void running.close();
        resolve(1);
        return;
      }
      signalled = true;
      running.logger.info({ signal }, 'signal received: draining');
      running
        .drain()
        .then(() => onFirst?.())
        .then(
          () => resolve(0),
          (err: unknown) => {
            running.logger.error({ err }, 'drain failed');
            resolve(1);
          },
        );
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
    process.on('SIGHUP', () => {
      running.logger.info('SIGHUP: re-reading config');
      running.reload().catch((err: unknown) => running.logger.error({ err }, 'reload on SIGHUP failed'));
    });
  });
}

export async function serveUntilSignalled(opts: Options): Promise<number> {
  if (cluster.isWorker) {
    const logger = createLogger({ level: opts.logLevel }).child({
      worker: Number(process.env['SLUICE_WORKER_SLOT'] ?? 0),
    });
    const metrics = createMetrics({ role: 'worker' });
    // The primary orders certificates; a worker answers the challenges from the shared store.
    const acme = createAcmeRunner({ role: 'answer', certsDir: opts.certsDir, logger });
    return runWorker({
      identity: identityOf(opts),
      logger,
      metrics,
      createGateway: (countRequest, limits) =>
        createServingGateway(opts, logger, metrics, countRequest, acme.hooks, limits),
      setLogLevel: (level) => {
        if (isLogLevel(logger, level)) logger.level = level;
      },
      onApplied: (resources) => acme.update(resources),
    }).finally(() => acme.close());
  }
  const running = opts.workers > 1 ? await startPrimary(opts) : await startServe(opts);
  running.logger.info(
    {
      statusPort: running.status.port,
      adminPort: running.admin.port,
      metricsPort: running.metricsServer.port,
      workers: opts.workers,
      config: opts.config,
    },
    'sluice started',
  );
  return waitForSignals(running);
}

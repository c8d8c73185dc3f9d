/**
 * Signals around a running gateway: SIGTERM/SIGINT drain (readiness 503 at once, keep accepting
 * for --drain-delay, then finish in-flight work up to --drain-timeout); a second signal stops at
 * once. Resolves with the exit code; main.ts exits.
 */
import type { Options } from './flags.ts';
import { startServe, type RunningGateway } from './serve.ts';

export function waitForSignals(running: RunningGateway, onFirst?: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let signalled = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (signalled) {
        running.logger.warn({ signal }, 'second signal: stopping now');
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
  });
}

export async function serveUntilSignalled(opts: Options): Promise<number> {
  const running = await startServe(opts);
  running.logger.info(
    { statusPort: running.status.port, adminPort: running.admin?.port, config: opts.config },
    'sluice started; waiting for the first valid config',
  );
  return waitForSignals(running);
}

/**
 * `sluice serve` in this process on a config directory: every port 0 except the Gateway's own
 * (the config's), one worker, no repository ./certs. For tests that read the status, metrics or
 * admin ports of the real serve code; signals and --workers need serve-child.ts instead.
 */
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, type RunningGateway, type ServeDeps } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/observability/logger.ts';

/** Started and with its first config applied; `close()` it in afterEach. Later `extraArgs` win. */
export async function startServeInProcess(
  configDir: string,
  extraArgs: readonly string[] = [],
  deps: Omit<ServeDeps, 'logger'> = {},
): Promise<RunningGateway> {
  const opts = parseOptions(
    'serve',
    [
      '--config',
      configDir,
      '--bind',
      '127.0.0.1',
      '--status-port',
      '0',
      '--metrics-port',
      '0',
      '--admin-port',
      '0',
      '--workers',
      '1',
      '--certs-dir',
      `${configDir}/.no-certs`,
      ...extraArgs,
    ],
    {},
  );
  const running = await startServe(opts, { logger: silentLogger(), ...deps });
  let timer: NodeJS.Timeout | undefined;
  try {
    // A config with errors is never applied: fail here rather than at the test's timeout.
    await Promise.race([
      running.firstApplied,
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('the config was not applied within 10 s')), 10_000);
      }),
    ]);
  } catch (err) {
    await running.close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return running;
}

/**
 * `sluice egress suggest`: asks the running gateway's admin port (loopback, --admin-port) for
 * what its egress proxy refused in learning mode (MeshConfig `egressProxy.learn`) and prints the
 * ServiceEntry YAML that would allow it (admin `/egress/suggest`). With --workers the primary
 * merges every worker's record.
 */
import { SluiceError } from '../errors/sluice-error.ts';
import type { Options } from './flags.ts';
import { EXIT_OK, type CommandIO } from './io.ts';

const TIMEOUT_MS = 5000;

export async function runEgress(opts: Options, io: CommandIO): Promise<number> {
  const [sub, ...extra] = opts.positionals;
  if (sub !== 'suggest' || extra.length > 0)
    throw new SluiceError('SLUICE_CLI_USAGE', 'usage: sluice egress suggest [--admin-port N]');
  const url = `http://127.0.0.1:${opts.adminPort}/egress/suggest`;
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    throw new SluiceError(
      'SLUICE_ADMIN_UNREACHABLE',
      `cannot read ${url} (is sluice serve running with this --admin-port?): ${(err as Error).message}`,
      { cause: err },
    );
  }
  io.out(text);
  return EXIT_OK;
}

import { routeRows } from '../snapshot/dump.ts';
import type { Options } from './flags.ts';
import { EXIT_OK, type CommandIO } from './io.ts';
import { loadFromFlags } from './load.ts';
import { formatTable } from './table.ts';

/** Like `istioctl proxy-config routes`: the compiled table, in the order requests try it. */
export async function runRoutes(opts: Options, io: CommandIO): Promise<number> {
  const { snapshot, diagnostics } = await loadFromFlags(opts);
  const rows = routeRows(snapshot, opts.port ?? undefined);
  if (opts.output === 'json') {
    io.out(JSON.stringify(rows, null, 2) + '\n');
  } else {
    io.out(formatTable(rows as unknown as readonly Record<string, unknown>[]) + '\n');
    const errors = diagnostics.filter((d) => d.level === 'error').length;
    if (errors > 0)
      io.err(`${errors} config error(s): run sluice validate for details; serve would refuse this config\n`);
  }
  return EXIT_OK;
}

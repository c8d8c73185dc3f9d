import { diagnosticToJson, formatDiagnostic, hasErrors } from '../errors/diagnostic.ts';
import type { Options } from './flags.ts';
import { EXIT_FINDINGS, EXIT_OK, type CommandIO } from './io.ts';
import { loadFromFlags } from './load.ts';

/** Like `istioctl analyze`: every problem, sorted; exit 1 when any is an error. */
export async function runValidate(opts: Options, io: CommandIO): Promise<number> {
  const { diagnostics, resources } = await loadFromFlags(opts);
  const errors = diagnostics.filter((d) => d.level === 'error').length;
  const warnings = diagnostics.filter((d) => d.level === 'warning').length;
  if (opts.output === 'json') {
    io.out(
      JSON.stringify(
        {
          resources: resources.resources.length,
          errors,
          warnings,
          diagnostics: diagnostics.map(diagnosticToJson),
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    for (const d of diagnostics) io.out(formatDiagnostic(d) + '\n');
    io.out(
      `${resources.resources.length} resources, ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`,
    );
  }
  return hasErrors(diagnostics) ? EXIT_FINDINGS : EXIT_OK;
}

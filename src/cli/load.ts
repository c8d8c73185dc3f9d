import { readConfigPaths } from '../providers/file.ts';
import { buildFromInputs, type BuildResult } from '../control/build.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import { identityOf } from './io.ts';
import type { Options } from './flags.ts';

/** Reads --config paths and builds them, for the offline commands. */
export async function loadFromFlags(opts: Options): Promise<BuildResult> {
  if (opts.config.length === 0) throw new SluiceError('SLUICE_CLI_USAGE', 'no --config given (a file or directory of Istio YAML)');
  const { inputs, diagnostics } = await readConfigPaths(opts.config);
  return buildFromInputs(inputs, diagnostics, { defaultNamespace: opts.configNamespace, identity: identityOf(opts) });
}

import { readConfigPaths } from '../providers/file.ts';
import { addCertificates } from '../providers/certs-dir.ts';
import { loadResources } from '../config/index.ts';
import { buildFromResources, type BuildResult } from '../control/build.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import { identityOf } from './io.ts';
import type { Options } from './flags.ts';

/**
 * Reads --config paths (plus --certs-dir credentials and certificate files, as serve does) and
 * builds them, for the offline commands.
 */
export async function loadFromFlags(opts: Options): Promise<BuildResult> {
  if (opts.config.length === 0)
    throw new SluiceError('SLUICE_CLI_USAGE', 'no --config given (a file or directory of Istio YAML)');
  const { inputs, diagnostics } = await readConfigPaths(opts.config);
  const loaded = loadResources(inputs, { defaultNamespace: opts.configNamespace });
  const withCerts = await addCertificates(
    { resources: loaded.resources, diagnostics: [...diagnostics, ...loaded.diagnostics] },
    { certsDir: opts.certsDir, gatewayNamespace: opts.namespace },
  );
  return buildFromResources(withCerts.resources, withCerts.diagnostics, {
    ...identityOf(opts),
    nowMs: Date.now(),
  });
}

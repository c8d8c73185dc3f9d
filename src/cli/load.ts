import { readConfigSources } from '../providers/certs-dir.ts';
import { buildFromResources, type BuildResult } from '../control/build.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import { identityOf, ingressOptionsOf } from './io.ts';
import type { Options } from './flags.ts';
import type { ProviderUpdate } from '../providers/provider.ts';

/**
 * Reads --config paths (plus --certs-dir credentials and certificate files, as serve does) and
 * builds them, for the offline commands.
 */
export async function loadFromFlags(opts: Options): Promise<BuildResult> {
  if (opts.config.length === 0)
    throw new SluiceError('SLUICE_CLI_USAGE', 'no --config given (a file or directory of Istio YAML)');
  const update = await readSourcesFromFlags(opts, opts.config);
  return buildFromResources(update.resources, update.diagnostics, { ...identityOf(opts), nowMs: Date.now() });
}

/**
 * `paths` with --certs-dir, translated as the flags say (Ingress class and ports): what serve
 * reads. `writeOnly`: for convert, which serves nothing (IngressOptions.requireLimitStore).
 */
export function readSourcesFromFlags(
  opts: Options,
  paths: readonly string[],
  writeOnly = false,
): Promise<ProviderUpdate> {
  return readConfigSources({
    paths,
    defaultNamespace: opts.configNamespace,
    certsDir: opts.certsDir,
    gatewayNamespace: opts.namespace,
    ingress: { ...ingressOptionsOf(opts), ...(writeOnly ? { requireLimitStore: false } : {}) },
  });
}

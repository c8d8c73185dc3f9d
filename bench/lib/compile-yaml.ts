/**
 * A bench config compiled as `sluice serve` compiles it for the default ingress gateway
 * (istio-system, `istio: ingressgateway`): the snapshot the micro benchmarks route requests on.
 */
import { compile } from '../../src/compile/index.ts';
import { loadResources } from '../../src/config/index.ts';
import type { Snapshot } from '../../src/snapshot/types.ts';

export function compileBenchYaml(text: string): Snapshot {
  const loaded = loadResources([{ file: 'bench.yaml', text }], { defaultNamespace: 'default' });
  return compile(loaded.resources, {
    namespace: 'istio-system',
    labels: { istio: 'ingressgateway' },
    rootNamespace: 'istio-system',
    nowMs: Date.now(),
  }).snapshot;
}

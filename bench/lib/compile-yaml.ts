/**
 * What the micro benchmarks run filters on: a bench config compiled as `sluice serve` compiles it
 * for the default ingress gateway (istio-system, `istio: ingressgateway`), and a request from a
 * loopback client to port 8080 of it, before routing.
 */
import { compile } from '../../src/compile/index.ts';
import { loadResources } from '../../src/config/index.ts';
import { undecidedRequest } from '../../src/snapshot/route-request.ts';
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

export function loopbackRequest(headers: Record<string, string>) {
  return Object.assign(undecidedRequest('GET', 'http', 8080, headers), {
    peerIp: '127.0.0.1',
    remoteIp: '127.0.0.1',
    localIp: '127.0.0.1',
    sni: '',
    peerPrincipal: null,
    auth: null,
  });
}

import type { Diagnostic } from '../../../../src/errors/diagnostic.ts';
import type { Kind, Resource } from '../../../../src/model/resource.ts';
import type { GatewayIdentity } from '../../../../src/model/sluice.ts';
import { analyze } from '../../../../src/compile/analysis/index.ts';

export const IDENTITY: GatewayIdentity = {
  namespace: 'istio-system',
  labels: { istio: 'ingressgateway' },
  rootNamespace: 'istio-system',
};

let doc = 0;

/** A resource as config/ would produce it (normalised spec), in namespace `default` unless given. */
export function res<K extends Kind>(
  kind: K,
  name: string,
  spec: unknown,
  opts: { namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> } = {},
): Resource<K> {
  doc += 1;
  return {
    kind,
    apiVersion:
      kind === 'Service' || kind === 'Secret' || kind === 'Namespace' ? 'v1' : 'networking.istio.io/v1',
    namespace: opts.namespace ?? (kind === 'Namespace' ? '' : 'default'),
    name,
    labels: opts.labels ?? {},
    annotations: opts.annotations ?? {},
    origin: { kind: 'file', file: 'test.yaml', doc },
    spec,
  };
}

export function run(
  resources: readonly Resource[],
  nowMs = Date.parse('2026-01-01T00:00:00Z'),
): Diagnostic[] {
  return analyze({ resources }, IDENTITY, { nowMs });
}

/** Findings with `istioCode`, as `IST0101 Kind ns/name`. */
export function named(ds: readonly Diagnostic[], istioCode: string): string[] {
  return ds
    .filter((d) => d.istioCode === istioCode)
    .map((d) => `${d.istioCode} ${d.subject?.kind} ${d.subject?.namespace}/${d.subject?.name}`);
}

export function httpVs(
  name: string,
  host: string,
  dest: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  return res('VirtualService', name, { hosts: [host], http: [{ route: [{ destination: dest }] }], ...extra });
}

export function gateway(
  name: string,
  servers: unknown[],
  opts: { namespace?: string; selector?: Record<string, string> } = {},
) {
  return res(
    'Gateway',
    name,
    { selector: opts.selector ?? { istio: 'ingressgateway' }, servers },
    opts.namespace ? { namespace: opts.namespace } : {},
  );
}

export function httpServer(hosts: string[], port = 80, name = 'http', protocol = 'HTTP') {
  return { port: { number: port, name, protocol }, hosts };
}

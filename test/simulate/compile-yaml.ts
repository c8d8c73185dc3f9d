/** Test helper: YAML text → loadResources → compile, as `sluice validate` does, with no files. */
import { compile } from '../../src/compile/index.ts';
import { loadResources } from '../../src/config/index.ts';
import { formatDiagnostic, type Diagnostic } from '../../src/errors/diagnostic.ts';
import type { GatewayIdentity } from '../../src/model/sluice.ts';
import { findRoute, findVirtualHost } from '../../src/snapshot/lookup.ts';
import type { RequestView, Route, Snapshot } from '../../src/snapshot/types.ts';

export const DEFAULT_IDENTITY: GatewayIdentity = {
  namespace: 'istio-system',
  labels: { istio: 'ingressgateway' },
  rootNamespace: 'istio-system',
};

export interface Compiled {
  readonly snapshot: Snapshot;
  /** Config and compile diagnostics together. */
  readonly diagnostics: readonly Diagnostic[];
  /** The same, formatted, for readable assertions. */
  readonly messages: readonly string[];
}

export function compileYaml(
  text: string,
  identity: Partial<GatewayIdentity> = {},
  file = 'test.yaml',
): Compiled {
  const loaded = loadResources([{ file, text }], { defaultNamespace: 'default' });
  const result = compile(loaded.resources, { ...DEFAULT_IDENTITY, ...identity, nowMs: Date.now() });
  const diagnostics = [...loaded.diagnostics, ...result.diagnostics];
  return { snapshot: result.snapshot, diagnostics, messages: diagnostics.map(formatDiagnostic) };
}

/** A RequestView as the data plane builds it. */
export function requestView(
  p: Partial<Omit<RequestView, 'queryParams' | 'claims'>> & { claims?: RequestView['claims'] } = {},
): RequestView {
  const authority = p.authority ?? 'example.com';
  return {
    method: p.method ?? 'GET',
    scheme: p.scheme ?? 'http',
    authority,
    host: p.host ?? authority.replace(/:\d+$/, '').toLowerCase(),
    path: p.path ?? '/',
    query: p.query ?? '',
    headers: p.headers ?? {},
    port: p.port ?? 8080,
    queryParams: null,
    claims: p.claims ?? null,
  };
}

/** A Gateway selecting the default identity, in istio-system, with the given servers (YAML list items). */
export function gatewayYaml(name: string, servers: string, namespace = 'istio-system'): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: {istio: ingressgateway}
  servers:
${servers}
`;
}

/** The first vhost route a request reaches on a plaintext port (or null). */
export function routeOf(snapshot: Snapshot, port: number, host: string, path = '/'): Route | null {
  const table = snapshot.listeners.get(port)?.httpTable;
  if (!table) return null;
  const vhost = findVirtualHost(table, host);
  if (!vhost) return null;
  const q = path.indexOf('?');
  return findRoute(
    vhost,
    requestView({
      authority: host,
      path: q < 0 ? path : path.slice(0, q),
      query: q < 0 ? '' : path.slice(q + 1),
      port,
    }),
  );
}

/** A plaintext HTTP Gateway `gw` on 8080 for `hosts`, plus one VirtualService `vs` in `default` with the given http rules. */
export function vsYaml(
  http: string,
  opts: { hosts?: string; extra?: string; vsHosts?: string } = {},
): string {
  return `${gatewayYaml('gw', `  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ${opts.hosts ?? '["*"]'}`)}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: ${opts.vsHosts ?? '[a.example.com]'}
  gateways: [istio-system/gw]
  http:
${http}
${opts.extra ? `---\n${opts.extra}\n` : ''}`;
}

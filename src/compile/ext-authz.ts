/**
 * MeshConfig `extensionProviders` entries of kind `envoyExtAuthzHttp` / `envoyExtAuthzGrpc` →
 * the provider a CUSTOM AuthorizationPolicy calls (AP-1), with Istio's defaults (timeout 600 s,
 * statusOnError 403, failOpen false) and its validation (istio/istio authz/builder/extauthz.go).
 * The authorization service is reached like any destination: its host and port resolve to a
 * cluster (ServiceEntry, Service or DNS).
 */
import type { DiagnosticSubject } from '../errors/diagnostic.ts';
import type { MeshConfigSpec } from '../model/sluice.ts';
import type { Cluster } from '../snapshot/types.ts';
import type { ExtAuthzProvider, HeaderNamePattern } from '../snapshot/types.ts';
import { parseDuration } from '../util/duration.ts';
import { resolveDestination, type ClusterContext } from './clusters.ts';

/** Istio's default ext_authz timeout. */
const DEFAULT_TIMEOUT_MS = 600_000;

const HTTP_FIELDS = new Set([
  'service',
  'port',
  'timeout',
  'pathPrefix',
  'failOpen',
  'statusOnError',
  'includeRequestHeadersInCheck',
  'includeHeadersInCheck',
  'includeAdditionalHeadersInCheck',
  'includeRequestBodyInCheck',
  'headersToUpstreamOnAllow',
  'headersToDownstreamOnDeny',
  'headersToDownstreamOnAllow',
]);
const GRPC_FIELDS = new Set([
  'service',
  'port',
  'timeout',
  'failOpen',
  'statusOnError',
  'includeRequestBodyInCheck',
]);
const BODY_FIELDS = new Set(['maxRequestBytes', 'allowPartialMessage', 'packAsBytes']);

export interface ExtAuthzResolution {
  readonly provider: ExtAuthzProvider | null;
  /** Why it cannot be used (an error on every CUSTOM policy that names it). */
  readonly problems: readonly string[];
}

function headerPatterns(v: unknown, field: string, problems: string[]): HeaderNamePattern[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    problems.push(`${field} must be a list of header names`);
    return [];
  }
  const out: HeaderNamePattern[] = [];
  for (const raw of v as string[]) {
    const h = raw.toLowerCase();
    if (h === '*') {
      problems.push(
        `${field}: a single wildcard ("*") is not supported, change it to either prefix or suffix match`,
      );
      continue;
    }
    if (h.startsWith('*')) out.push({ kind: 'suffix', value: h.slice(1) });
    else if (h.endsWith('*')) out.push({ kind: 'prefix', value: h.slice(0, -1) });
    else out.push({ kind: 'exact', value: h });
  }
  return out;
}

/** Istio's statusOnError must be a code Envoy's StatusCode enum knows; sluice takes 100..599. */
function statusOf(v: unknown, problems: string[]): number {
  if (v === undefined || v === '') return 403;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(Number.isInteger(n) && n >= 100 && n <= 599)) {
    problems.push(`statusOnError "${String(v)}" is not an HTTP status code`);
    return 403;
  }
  return n;
}

function checkFields(
  o: Record<string, unknown>,
  known: ReadonlySet<string>,
  where: string,
  problems: string[],
): void {
  for (const k of Object.keys(o))
    if (!known.has(k)) problems.push(`${where}.${k} is not a field sluice knows; it would be ignored`);
}

/** Parses one extensionProviders entry; null when it is not an ext_authz provider. */
export function parseExtAuthzProvider(
  entry: Readonly<Record<string, unknown>>,
  clusters: ClusterContext,
  defaultNamespace: string,
  owner: DiagnosticSubject,
  path: string,
): ExtAuthzResolution | null {
  const name = typeof entry['name'] === 'string' ? entry['name'] : '';
  const http = entry['envoyExtAuthzHttp'];
  const grpc = entry['envoyExtAuthzGrpc'];
  if (http === undefined && grpc === undefined) return null;
  const problems: string[] = [];
  const kind = http !== undefined ? 'envoyExtAuthzHttp' : 'envoyExtAuthzGrpc';
  const raw = (http ?? grpc) as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    return { provider: null, problems: [`${kind} must be an object`] };
  const o = raw as Record<string, unknown>;
  checkFields(o, http !== undefined ? HTTP_FIELDS : GRPC_FIELDS, kind, problems);
  const service = typeof o['service'] === 'string' ? o['service'] : '';
  if (service === '') problems.push(`${kind}.service is required`);
  const port = typeof o['port'] === 'number' ? o['port'] : NaN;
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535))
    problems.push(`${kind}.port must be in the range [1, 65535], found: ${String(o['port'])}`);
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (o['timeout'] !== undefined) {
    const t = typeof o['timeout'] === 'string' ? parseDuration(o['timeout'], { bareSeconds: false }) : null;
    if (t === null || !t.ok || t.ms <= 0)
      problems.push(`${kind}.timeout "${String(o['timeout'])}" is not a duration`);
    else timeoutMs = t.ms;
  }
  let body: ExtAuthzProvider['body'] = null;
  const b = o['includeRequestBodyInCheck'];
  if (b !== undefined) {
    if (b === null || typeof b !== 'object' || Array.isArray(b))
      problems.push(`${kind}.includeRequestBodyInCheck must be an object`);
    else {
      const bo = b as Record<string, unknown>;
      checkFields(bo, BODY_FIELDS, `${kind}.includeRequestBodyInCheck`, problems);
      const max = bo['maxRequestBytes'];
      body = {
        // Envoy's BufferSettings requires max_request_bytes > 0; Istio leaves 0 to Envoy, which refuses it.
        maxRequestBytes: typeof max === 'number' && Number.isInteger(max) && max > 0 ? max : 0,
        allowPartialMessage: bo['allowPartialMessage'] === true,
        packAsBytes: bo['packAsBytes'] === true,
      };
      if (body.maxRequestBytes === 0)
        problems.push(`${kind}.includeRequestBodyInCheck.maxRequestBytes must be a positive integer`);
    }
  }
  let cluster: Cluster | null = null;
  if (service !== '' && Number.isInteger(port)) {
    // `[<namespace>/]<hostname>` (Istio): the hostname is a Service or ServiceEntry host.
    const slash = service.indexOf('/');
    const ns = slash < 0 ? defaultNamespace : service.slice(0, slash);
    const host = slash < 0 ? service : service.slice(slash + 1);
    cluster = resolveDestination(clusters, { host, port: { number: port } }, ns, port, owner, path).cluster;
    if (cluster === null) problems.push(`${kind}.service ${service}:${port} resolves to no cluster`);
  }
  const failOpen = o['failOpen'] === true;
  const statusOnError = statusOf(o['statusOnError'], problems);
  if (grpc !== undefined) {
    if (problems.length > 0 || cluster === null) return { provider: null, problems };
    return {
      provider: {
        protocol: 'grpc',
        name,
        authority: service,
        cluster,
        timeoutMs,
        failOpen,
        statusOnError,
        body,
      },
      problems,
    };
  }
  const pathPrefix = typeof o['pathPrefix'] === 'string' ? o['pathPrefix'] : '';
  if (pathPrefix !== '' && !pathPrefix.startsWith('/'))
    problems.push(`pathPrefix must begin with \`/\`, found: "${pathPrefix}"`);
  const include = headerPatterns(o['includeRequestHeadersInCheck'], 'includeRequestHeadersInCheck', problems);
  const legacy = headerPatterns(o['includeHeadersInCheck'], 'includeHeadersInCheck', problems);
  const additional: [string, string][] = [];
  const add = o['includeAdditionalHeadersInCheck'];
  if (add !== undefined) {
    if (add === null || typeof add !== 'object' || Array.isArray(add))
      problems.push('includeAdditionalHeadersInCheck must be a map of header name to value');
    else
      for (const k of Object.keys(add).sort()) {
        const v = (add as Record<string, unknown>)[k];
        if (typeof v !== 'string') problems.push(`includeAdditionalHeadersInCheck.${k} must be a string`);
        else additional.push([k.toLowerCase(), v]);
      }
  }
  const upstream = headerPatterns(o['headersToUpstreamOnAllow'], 'headersToUpstreamOnAllow', problems);
  const downstream = headerPatterns(o['headersToDownstreamOnAllow'], 'headersToDownstreamOnAllow', problems);
  const onDeny = o['headersToDownstreamOnDeny'];
  const deny = onDeny === undefined ? null : headerPatterns(onDeny, 'headersToDownstreamOnDeny', problems);
  if (problems.length > 0 || cluster === null) return { provider: null, problems };
  return {
    provider: {
      protocol: 'http',
      name,
      authority: service,
      cluster,
      timeoutMs,
      failOpen,
      statusOnError,
      body,
      pathPrefix,
      // includeHeadersInCheck is the deprecated name, used only when the new one is unset (Istio).
      includeRequestHeaders: include.length > 0 ? include : legacy,
      includeAdditionalHeaders: additional,
      headersToUpstreamOnAllow: upstream,
      headersToDownstreamOnAllow: downstream,
      headersToDownstreamOnDeny: deny,
    },
    problems,
  };
}

/** Every ext_authz provider of the mesh config by name (first wins on a duplicate name). */
export function extAuthzProviders(
  mesh: MeshConfigSpec | null,
  clusters: ClusterContext,
  defaultNamespace: string,
  owner: DiagnosticSubject | undefined,
): Map<string, ExtAuthzResolution> {
  const out = new Map<string, ExtAuthzResolution>();
  (mesh?.extensionProviders ?? []).forEach((entry, i) => {
    const name = entry['name'];
    if (typeof name !== 'string' || name === '') return;
    const path = `spec.extensionProviders[${i}]`;
    const r = parseExtAuthzProvider(
      entry,
      clusters,
      defaultNamespace,
      owner ?? { kind: 'MeshConfig', name: '(mesh)' },
      path,
    );
    if (r === null) return;
    if (out.has(name)) return;
    out.set(name, r);
  });
  return out;
}

import type {
  Destination,
  GatewaySpec,
  HTTPMatchRequest,
  StringMatch,
  VirtualServiceSpec,
  DestinationRuleSpec,
  ServiceEntrySpec,
} from '../model/networking.ts';
import type { Resource } from '../model/resource.ts';

/**
 * Canonical forms compile/ can rely on, applied after validation:
 * - hosts lowercased (Gateway server hosts incl. the `ns/` part, VirtualService hosts, sniHosts
 *   and destination hosts, DestinationRule host, ServiceEntry hosts): DNS names are
 *   case-insensitive and Istio compares them lowercased;
 * - protocol names upper-cased (done by the schema, which reads them case-insensitively);
 * - header match keys (`headers`, `withoutHeaders`) lowercased: Node lowercases request headers;
 * - an empty StringMatch (`uri: {}`) on uri/scheme/method/authority dropped: Istio treats it as
 *   no condition;
 * - namespace: a document without `metadata.namespace` was already given the default namespace
 *   (`--config-namespace`) when it was read; `creationTimestamp` is kept as written.
 * Short hosts (`reviews`) are NOT expanded here: expansion needs the namespace of the resource
 * that uses them and the rules differ per field (VS-3, VS-19), so compile/ does it.
 */
export function normaliseResource(r: Resource): Resource {
  switch (r.kind) {
    case 'Gateway':
      return { ...r, spec: normaliseGateway(r.spec as GatewaySpec) };
    case 'VirtualService':
      return { ...r, spec: normaliseVirtualService(r.spec as VirtualServiceSpec) };
    case 'DestinationRule': {
      const s = r.spec as DestinationRuleSpec;
      return { ...r, spec: { ...s, host: s.host.toLowerCase() } };
    }
    case 'ServiceEntry': {
      const s = r.spec as ServiceEntrySpec;
      return { ...r, spec: { ...s, hosts: s.hosts.map(lower) } };
    }
    default:
      return r;
  }
}

const lower = (s: string): string => s.toLowerCase();

function normaliseGateway(s: GatewaySpec): GatewaySpec {
  return { ...s, servers: s.servers.map((srv) => ({ ...srv, hosts: srv.hosts.map(lower) })) };
}

function normaliseDestination(d: Destination): Destination {
  return { ...d, host: d.host.toLowerCase() };
}

function isEmptyMatch(m: StringMatch | undefined): boolean {
  return m !== undefined && Object.keys(m).length === 0;
}

function lowerKeys<V>(m: Readonly<Record<string, V>> | undefined): Readonly<Record<string, V>> | undefined {
  if (m === undefined) return undefined;
  const out: Record<string, V> = {};
  for (const [k, v] of Object.entries(m)) out[k.toLowerCase()] = v;
  return out;
}

function normaliseMatch(m: HTTPMatchRequest): HTTPMatchRequest {
  const out: Record<string, unknown> = { ...m };
  for (const f of ['uri', 'scheme', 'method', 'authority'] as const) {
    if (isEmptyMatch(m[f])) delete out[f];
  }
  if (m.headers) out.headers = lowerKeys(m.headers);
  if (m.withoutHeaders) out.withoutHeaders = lowerKeys(m.withoutHeaders);
  return out as HTTPMatchRequest;
}

function normaliseVirtualService(s: VirtualServiceSpec): VirtualServiceSpec {
  return {
    ...s,
    hosts: s.hosts.map(lower),
    ...(s.http
      ? {
          http: s.http.map((h) => ({
            ...h,
            ...(h.match ? { match: h.match.map(normaliseMatch) } : {}),
            ...(h.route
              ? { route: h.route.map((d) => ({ ...d, destination: normaliseDestination(d.destination) })) }
              : {}),
            ...(h.mirror ? { mirror: normaliseDestination(h.mirror) } : {}),
            ...(h.mirrors
              ? {
                  mirrors: h.mirrors.map((m) => ({ ...m, destination: normaliseDestination(m.destination) })),
                }
              : {}),
          })),
        }
      : {}),
    ...(s.tls
      ? {
          tls: s.tls.map((t) => ({
            ...t,
            match: t.match.map((m) => ({ ...m, sniHosts: m.sniHosts.map(lower) })),
            ...(t.route
              ? { route: t.route.map((d) => ({ ...d, destination: normaliseDestination(d.destination) })) }
              : {}),
          })),
        }
      : {}),
    ...(s.tcp
      ? {
          tcp: s.tcp.map((t) => ({
            ...t,
            ...(t.route
              ? { route: t.route.map((d) => ({ ...d, destination: normaliseDestination(d.destination) })) }
              : {}),
          })),
        }
      : {}),
  };
}

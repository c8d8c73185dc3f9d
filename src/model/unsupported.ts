/**
 * Everything sluice parses but does not act on: the one table the warnings are made from
 * (config/unsupported-fields.ts, at every load),
 * counted in `sluice_config_unsupported_total{kind,field}`, and checked against README's
 * "What is supported" table by a test. Found by reading compile/, dataplane/ and upstream/
 * against the schemas: a field is listed when an Istio gateway would act on it and sluice does
 * not. Fields that change nothing at an Istio gateway either (mesh-only settings) are not listed.
 */

/** Which values of the field are not acted on; without one, any value set is. */
export type UnsupportedWhen =
  | { readonly equals: readonly (string | boolean)[] }
  | { readonly startsWith: readonly string[] }
  /** A comma-separated list (retryOn) naming any of these tokens. */
  | { readonly hasToken: readonly string[] };

export interface UnsupportedField {
  readonly kind: string;
  /**
   * The field under `spec`, as README writes it: `http[].fault` (`[]` is every list item).
   * `*` is the whole resource.
   */
  readonly field: string;
  /** Where the field can be written when that is not only `field` (DestinationRule policy blocks). */
  readonly at?: readonly string[];
  readonly when?: UnsupportedWhen;
  /** What happens instead, said plainly; follows "<field or value> is not implemented by sluice; ". */
  readonly effect: string;
}

/** DR-3: a policy block can sit at the top, per port, per subset, and per port of a subset. */
const POLICY_BLOCKS = [
  'trafficPolicy',
  'trafficPolicy.portLevelSettings[]',
  'subsets[].trafficPolicy',
  'subsets[].trafficPolicy.portLevelSettings[]',
];

function policyBlock(sub: string, effect: string, when?: UnsupportedWhen): UnsupportedField {
  return {
    kind: 'DestinationRule',
    field: `trafficPolicy.${sub}`,
    at: POLICY_BLOCKS.map((b) => `${b}.${sub}`),
    ...(when ? { when } : {}),
    effect,
  };
}

export const UNSUPPORTED: readonly UnsupportedField[] = [
  // Gateway
  {
    kind: 'Gateway',
    field: 'servers[].port.protocol',
    when: { equals: ['UDP'] },
    effect: 'sluice does not proxy UDP, so this server is not served',
  },
  {
    kind: 'Gateway',
    field: 'servers[].bind',
    when: { startsWith: ['unix://'] },
    effect: 'sluice listens on TCP ports only, so this server is not served',
  },
  {
    kind: 'Gateway',
    field: 'servers[].tls.mode',
    when: { equals: ['ISTIO_MUTUAL'] },
    effect: 'it needs the mesh CA, which sluice does not have, so this server cannot complete TLS handshakes',
  },
  {
    kind: 'Gateway',
    field: 'servers[].tls.mode',
    when: { equals: ['AUTO_PASSTHROUGH'] },
    effect: 'it is for east-west (multi-cluster) gateways, and this server is not served',
  },
  {
    kind: 'Gateway',
    field: 'servers[].defaultEndpoint',
    effect: 'Istio gateways do not implement it either, and it has no effect',
  },
  // VirtualService
  {
    kind: 'VirtualService',
    field: 'http[].delegate',
    effect:
      'delegate VirtualServices are not followed, so this rule is left out and requests it would take go to later rules (404 NR when none matches)',
  },
  {
    kind: 'VirtualService',
    field: 'http[].match[].statPrefix',
    effect: 'it has no effect, as sluice emits no per-route statistics',
  },
  {
    kind: 'VirtualService',
    field: 'http[].retries.retryRemoteLocalities',
    effect: 'it has no effect, as sluice knows a single locality',
  },
  {
    kind: 'VirtualService',
    field: 'http[].retries.retryOn',
    when: { hasToken: ['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'] },
    effect: 'responses with that grpc-status are not retried',
  },
  {
    kind: 'VirtualService',
    field: 'http[].retries.retryOn',
    when: { hasToken: ['envoy-ratelimited'] },
    effect: 'responses carrying x-envoy-ratelimited are not retried',
  },
  {
    kind: 'VirtualService',
    field: 'tcp[].match[].destinationSubnets',
    effect: 'the address the client dialled is not known at the gateway, so this match never applies',
  },
  {
    kind: 'VirtualService',
    field: 'tls[].match[].destinationSubnets',
    effect: 'the address the client dialled is not known at the gateway, so this match never applies',
  },
  // DestinationRule
  policyBlock(
    'loadBalancer.simple',
    'sluice does not forward to the original destination, and LEAST_REQUEST is used',
    { equals: ['PASSTHROUGH'] },
  ),
  policyBlock(
    'loadBalancer.localityLbSetting',
    'it has no effect, as sluice runs in a single locality (DR-5)',
  ),
  policyBlock(
    'connectionPool.http.http2KeepAlive.time',
    'it has no effect: HTTP/2 upstream connections are PINGed every `interval` and closed after `timeout` without an answer',
  ),
  policyBlock(
    'connectionPool.tcp.tcpKeepalive',
    "it has no effect: upstream connections use the operating system's keepalive settings",
  ),
  policyBlock(
    'tls.mode',
    'it needs the mesh CA, which sluice does not have: it connects in plain text, which a workload requiring mutual TLS refuses',
    { equals: ['ISTIO_MUTUAL'] },
  ),
  policyBlock('tunnel', 'it has no effect: requests go to the upstream directly, not through a tunnel'),
  policyBlock('proxyProtocol', 'it has no effect: no PROXY protocol header is sent upstream'),
  policyBlock('retryBudget', "it has no effect: retries are bounded only by each route's attempts"),
  {
    kind: 'DestinationRule',
    field: 'workloadSelector',
    effect: 'it is not evaluated, so this DestinationRule applies to this gateway whatever its labels',
  },
  // ServiceEntry
  {
    kind: 'ServiceEntry',
    field: 'resolution',
    when: { equals: ['NONE', 'DYNAMIC_DNS'] },
    effect:
      'requests a Gateway route sends to its hosts get 503 NC (the egress proxy does act on it: it connects to what the requested name resolves to)',
  },
  {
    kind: 'ServiceEntry',
    field: 'endpoints[].locality',
    effect: 'it has no effect: sluice runs in a single locality and balances over all endpoints alike',
  },
  {
    kind: 'ServiceEntry',
    field: 'endpoints[].network',
    effect: 'it has no effect: every endpoint is taken to be reachable directly',
  },
  {
    kind: 'ServiceEntry',
    field: 'endpoints[].serviceAccount',
    effect: 'it has no effect: sluice has no mesh identities to verify',
  },
  {
    kind: 'ServiceEntry',
    field: 'workloadSelector',
    effect: 'sluice does not know the workloads it selects, so they are not endpoints of this entry',
  },
  // sluice's own and Kubernetes kinds read but not acted on
  {
    kind: 'MeshConfig',
    field: 'outboundTrafficPolicy.mode',
    when: { equals: ['REGISTRY_ONLY'] },
    effect:
      'on Gateway routes it has no effect (a destination host that no ServiceEntry or Service names is still resolved by DNS and forwarded to); only the egress proxy enforces it',
  },
  {
    kind: 'MeshConfig',
    field: 'gatewayTopology.proxyProtocol',
    effect: 'it has no effect: a PROXY protocol header is not read, so such connections get 400',
  },
  {
    kind: 'MeshConfig',
    field: 'defaultHttpRetryPolicy',
    effect: "it has no effect: routes without retries use Istio's built-in default (VS-23)",
  },
  {
    kind: 'MeshConfig',
    field: 'rootNamespace',
    effect: 'it has no effect: the root namespace is --root-namespace',
  },
  // Istio kinds that change an Istio gateway but that sluice does not read (config/kinds/registry.ts)
  {
    kind: 'EnvoyFilter',
    field: '*',
    effect: 'it is ignored: the changes it makes to an Istio gateway do not happen here',
  },
  {
    kind: 'Telemetry',
    field: '*',
    effect: 'it is ignored: access logs, metrics and tracing follow MeshConfig only',
  },
  { kind: 'WasmPlugin', field: '*', effect: 'it is ignored: no Wasm extension runs' },
  {
    kind: 'ProxyConfig',
    field: '*',
    effect: 'it is ignored: proxy settings come from the command line',
  },
  {
    kind: 'WorkloadEntry',
    field: '*',
    effect: 'it is ignored: the workload it declares is not an endpoint of any host',
  },
  {
    kind: 'WorkloadGroup',
    field: '*',
    effect: 'it is ignored: the workloads it declares are not endpoints of any host',
  },
];

/**
 * The warning's text: "<field or value> is not implemented by sluice; <effect>". `hit` is the
 * value of `when` that was found, if the entry has one.
 */
export function describeUnsupported(entry: UnsupportedField, hit?: string | boolean): string {
  let what: string;
  if (entry.field === '*') what = entry.kind;
  else {
    const leaf = entry.field.slice(entry.field.lastIndexOf('.') + 1).replace('[]', '');
    if (hit === undefined) what = leaf;
    else if (entry.when !== undefined && 'startsWith' in entry.when) what = `${leaf} ${String(hit)}…`;
    else what = `${leaf} ${String(hit)}`;
  }
  return `${what} is not implemented by sluice; ${entry.effect}`;
}

/** The `field` label of sluice_config_unsupported_total for an entry and the value found. */
export function unsupportedLabel(entry: UnsupportedField, value?: string | boolean): string {
  return entry.when === undefined || value === undefined ? entry.field : `${entry.field}=${String(value)}`;
}

/** Every `field` label an entry can be counted under (one per value of `when`). */
export function unsupportedLabels(entry: UnsupportedField): string[] {
  const w = entry.when;
  if (w === undefined) return [entry.field];
  const values = 'equals' in w ? w.equals : 'startsWith' in w ? w.startsWith : w.hasToken;
  return values.map((v) => unsupportedLabel(entry, v));
}

export function unsupportedOfKind(kind: string): readonly UnsupportedField[] {
  return UNSUPPORTED.filter((e) => e.kind === kind);
}

/** The entry for a whole kind (`field: '*'`), if sluice parses that kind but does not act on it. */
export function unsupportedKind(kind: string): UnsupportedField | undefined {
  return UNSUPPORTED.find((e) => e.kind === kind && e.field === '*');
}

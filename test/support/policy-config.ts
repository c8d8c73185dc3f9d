/**
 * The config the traffic-policy tests (circuit breaking, consistent hashing, outlier detection)
 * route through: a Gateway on 8080 for every host, a STATIC ServiceEntry `<name>.default.svc.cluster.local`
 * over loopback upstream ports, a VirtualService sending example.com to it, and a DestinationRule
 * whose body the test writes.
 */
export interface PolicyConfig {
  readonly name: string;
  readonly ports: readonly number[];
  /** Endpoint labels (subset tests). */
  readonly labels?: string;
  /** The route's destination fields after `host` (`, subset: v1`). */
  readonly destination?: string;
  /** Fields of the http rule after `route` (`retries: { attempts: 0 }`). */
  readonly rule?: string;
  /** The DestinationRule spec after `host`, indented two spaces. */
  readonly rules: string;
  /** The service port's protocol (default HTTP). */
  readonly protocol?: string;
  /** The VirtualService's hosts (default `[example.com]`). */
  readonly routeHosts?: string;
}

export const POLICY_GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
`;

/** ServiceEntry, VirtualService and DestinationRule (no Gateway: tests under `serve` bring their own). */
export function policyServiceYaml(c: PolicyConfig): string {
  const host = `${c.name}.default.svc.cluster.local`;
  const labels = c.labels !== undefined ? `, labels: { ${c.labels} }` : '';
  const endpoints = c.ports.map((p) => `{ address: 127.0.0.1, ports: { http: ${p} }${labels} }`).join(', ');
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${c.name}, namespace: default }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: ${c.protocol ?? 'HTTP'} }]
  endpoints: [${endpoints}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${c.name}, namespace: default }
spec:
  hosts: ${c.routeHosts ?? '[example.com]'}
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: ${host}${c.destination ?? ''} } }]${c.rule !== undefined ? `, ${c.rule}` : ''} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${c.name}, namespace: default }
spec:
  host: ${host}
${c.rules}`;
}

/** The whole config for an in-process gateway. */
export function policyYaml(c: PolicyConfig): string {
  return `${POLICY_GATEWAY}---\n${policyServiceYaml(c)}`;
}

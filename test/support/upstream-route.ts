/**
 * The config most TLS and ACME tests route through: one STATIC ServiceEntry `up.internal` on a
 * loopback port and one VirtualService sending `hosts` (a YAML flow sequence, e.g. `[a.example.com]`
 * or `['*']`) from a Gateway to it. Two documents, no leading or trailing `---`.
 */
export function upstreamRouteYaml(
  upPort: number,
  hosts: string,
  opts: { gateway?: string; name?: string } = {},
): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: up, namespace: default }
spec:
  hosts: [up.internal]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${upPort} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${opts.name ?? 'vs'}, namespace: default }
spec:
  hosts: ${hosts}
  gateways: [${opts.gateway ?? 'istio-system/gw'}]
  http: [{ route: [{ destination: { host: up.internal } }] }]`;
}

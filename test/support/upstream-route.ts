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

/**
 * A plaintext Gateway `gw` on 8080 for every host; a STATIC ServiceEntry `host` whose one `port`
 * is 127.0.0.1:`upstreamPort` (`entry`: more lines of its spec); a VirtualService `all` sending
 * `hosts` (default every host) there, `rule` holding more fields of its one http rule (`match:
 * …, timeout: …, `). Three documents, no leading or trailing `---`.
 */
export function entryRouteYaml(opts: {
  readonly host: string;
  readonly upstreamPort: number;
  readonly port: { readonly number: number; readonly name: string; readonly protocol: string };
  readonly hosts?: string;
  readonly rule?: string;
  readonly entry?: string;
}): string {
  const { host, port } = opts;
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: upstream, namespace: default }
spec:
  hosts: [${host}]
  ports: [{ number: ${port.number}, name: ${port.name}, protocol: ${port.protocol} }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { ${port.name}: ${opts.upstreamPort} } }]
${opts.entry ?? ''}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: all, namespace: default }
spec:
  hosts: ${opts.hosts ?? "['*']"}
  gateways: [istio-system/gw]
  http: [{ ${opts.rule ?? ''}route: [{ destination: { host: ${host}, port: { number: ${port.number} } } }] }]`;
}

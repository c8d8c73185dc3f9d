/**
 * Config for route-feature tests (fault, mirroring, CORS): one plaintext Gateway on 8080, a STATIC
 * ServiceEntry `<name>.internal` per loopback upstream, and one VirtualService for
 * `shop.example.com` with the given `http` rules. The gateway runs in-process and records what
 * each finished request logged (status, flags, details).
 */
import { startGatewayFromYaml, type TestGateway } from './gateway.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

export interface Logged {
  readonly status: number;
  readonly flags: string;
  readonly details: string;
}

/** `upstreams`: name → port (a closed port is fine: nothing listens there). */
export function trafficYaml(
  upstreams: Readonly<Record<string, number>>,
  http: string,
  opts: { mesh?: string; extra?: string } = {},
): string {
  const entries = Object.entries(upstreams).map(
    ([name, port]) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${port}}}]
---
`,
  );
  const mesh =
    opts.mesh === undefined
      ? ''
      : `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec:
${opts.mesh}
---
`;
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
${entries.join('')}${mesh}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/gw]
  http:
${http}${opts.extra === undefined ? '' : `---\n${opts.extra}`}`;
}

export async function startTraffic(yaml: string): Promise<{ gw: TestGateway; log: Logged[] }> {
  const log: Logged[] = [];
  const gw = await startGatewayFromYaml(yaml, {
    onRequestDone: (ctx: RequestContext) =>
      log.push({ status: ctx.status, flags: ctx.responseFlags, details: ctx.responseDetails }),
  });
  return { gw, log };
}

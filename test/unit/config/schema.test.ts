import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';

function load(text: string, file = 'x.yaml') {
  return loadResources([{ file, text }], { defaultNamespace: 'default' });
}

function lines(text: string, level: 'error' | 'warning' | 'info' = 'error'): string[] {
  return load(text)
    .diagnostics.filter((d) => d.level === level)
    .map(formatDiagnostic);
}

const VS_HEAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [shop.example.com]
  gateways: [public]
`;

describe('schemas: every issue is one diagnostic with path, line, expected and found', () => {
  it('reports the path and line as written (second document)', () => {
    const text = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
${VS_HEAD}  http:
  - route:
    - destination:
        host: a
      weight: 50
    - destination:
        host: b
      weight: "ten"
`;
    expect(lines(text)).toEqual([
      'error   x.yaml#2:20 VirtualService default/shop: spec.http[0].route[1].weight: expected a number, got "ten" [SLUICE_CONFIG_SCHEMA]',
    ]);
  });

  it.each([
    [
      'unknown field (Istio rejects fields its schema lacks)',
      `${VS_HEAD}  http:\n  - rout:\n    - destination: {host: a}\n`,
      'error   x.yaml#1:9 VirtualService default/shop: spec.http[0].rout: unknown field (did you mean route?): Istio rejects fields its schema does not define [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'missing required field',
      `${VS_HEAD}  http:\n  - route:\n    - weight: 10\n`,
      'error   x.yaml#1:10 VirtualService default/shop: spec.http[0].route[0].destination: required field is missing (expected a map) [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'wrong type',
      `${VS_HEAD}  http:\n  - timeout: 10s\n    route: {destination: {host: a}}\n`,
      'error   x.yaml#1:10 VirtualService default/shop: spec.http[0].route: expected a list, got a map [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'enum value',
      `${VS_HEAD}  http:\n  - redirect:\n      uri: /x\n      derivePort: FROM_NOWHERE\n`,
      'error   x.yaml#1:11 VirtualService default/shop: spec.http[0].redirect.derivePort: must be one of FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT; got "FROM_NOWHERE" [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'bad duration',
      `${VS_HEAD}  http:\n  - timeout: soon\n    route: [{destination: {host: a}}]\n`,
      'error   x.yaml#1:9 VirtualService default/shop: spec.http[0].timeout: must be a duration such as "10s" or "500ms", got "soon" [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'StringMatch oneof',
      `${VS_HEAD}  http:\n  - match:\n    - uri: {exact: /a, prefix: /b}\n    route: [{destination: {host: a}}]\n`,
      'error   x.yaml#1:10 VirtualService default/shop: spec.http[0].match[0].uri: set only one of exact, prefix, regex; got exact and prefix [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'Gateway port protocol',
      `apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP3}\n    hosts: ["*"]\n`,
      'error   x.yaml#1:6 Gateway default/gw: spec.servers[0].port.protocol: must be one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP, MONGO, REDIS, MYSQL, UDP (any case), got "HTTP3" [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'metadata.name required',
      `apiVersion: v1\nkind: Service\nmetadata:\n  namespace: a\nspec: {}\n`,
      'error   x.yaml#1:3 Service a/(unnamed): metadata.name: required field is missing (expected a string) [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      'ServiceEntry without spec',
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\n`,
      'error   x.yaml#1:1 ServiceEntry default/se: spec: required field is missing (expected a map) [SLUICE_CONFIG_SCHEMA]',
    ],
  ])('%s', (_what, text, expected) => {
    expect(lines(text)).toEqual([expected]);
  });

  it('warns about a kind it reads in a version it does not, and skips it', () => {
    const r = load('apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: gw}\nspec: {}\n');
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'warning x.yaml#1:1 Gateway default/gw: apiVersion: networking.istio.io/v2 is not a version sluice reads for Gateway (use networking.istio.io/v1alpha3, networking.istio.io/v1beta1, networking.istio.io/v1); the document is ignored [SLUICE_CONFIG_UNSUPPORTED]',
    ]);
    expect(r.skipped).toHaveLength(1);
  });

  it('never echoes Secret values', () => {
    const text = `apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata:\n  tls.key: "not base64 HUNTER2!"\n  other: 42\n`;
    const out = lines(text);
    expect(out).toHaveLength(2);
    expect(out.join('\n')).not.toContain('HUNTER2');
    expect(out.join('\n')).not.toContain('42');
    expect(out[0]).toContain('data["tls.key"]: must be base64');
    expect(out[1]).toContain('data.other: expected a string, got an integer');
  });

  it('accepts every served version and proto field names', () => {
    for (const v of ['v1alpha3', 'v1beta1', 'v1']) {
      const text = `apiVersion: networking.istio.io/${v}\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a.example.com]\n  gateways: [gw]\n  tls:\n  - match:\n    - sni_hosts: [a.example.com]\n    route: [{destination: {host: a}}]\n`;
      const r = load(text);
      expect(r.diagnostics.filter((d) => d.level === 'error')).toEqual([]);
      const spec = r.resources.resources[0]!.spec as { tls: { match: { sniHosts: string[] }[] }[] };
      expect(spec.tls[0]!.match[0]!.sniHosts).toEqual(['a.example.com']);
    }
  });

  it('upper-cases protocols read in any case', () => {
    const r = load(
      `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: http}\n    hosts: ["*"]\n`,
    );
    expect(r.diagnostics).toEqual([]);
    expect(
      (r.resources.resources[0]!.spec as { servers: { port: { protocol: string } }[] }).servers[0]!.port
        .protocol,
    ).toBe('HTTP');
  });

  it('turns Secret data into PrivateBytes and merges stringData', () => {
    const r = load(
      `apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: Y2VydA==\nstringData:\n  tls.key: key\n`,
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.resources.resources[0]!.spec).toEqual({
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': { private: true, base64: 'Y2VydA==' },
        'tls.key': { private: true, base64: 'a2V5' },
      },
    });
  });

  it('takes the EndpointSlice service name from its label', () => {
    const r = load(
      `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: shop-abc\n  labels: {kubernetes.io/service-name: shop}\naddressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n  conditions: {ready: true}\nports:\n- {name: http, port: 8080}\n`,
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.resources.resources[0]!.spec).toMatchObject({
      serviceName: 'shop',
      endpoints: [{ addresses: ['10.0.0.1'] }],
      ports: [{ port: 8080 }],
    });
  });
});

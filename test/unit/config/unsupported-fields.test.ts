import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic, type Diagnostic } from '../../../src/errors/diagnostic.ts';
import { UNSUPPORTED, unsupportedLabels } from '../../../src/model/unsupported.ts';

const load = (text: string, file = 'c.yaml') =>
  loadResources([{ file, text }], { defaultNamespace: 'default' });

const unsupported = (ds: readonly Diagnostic[]) => ds.filter((d) => d.unsupported !== undefined);

const vs = (http: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http:
${http}`;

const dr = (spec: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop }
spec:
  host: shop
${spec}`;

describe('fields sluice parses but does not act on (model/unsupported.ts)', () => {
  it('every entry fires on a config that sets it, as a warning counted under its kind and field', () => {
    const text = readFileSync(new URL('./fixtures/unsupported-all.yaml', import.meta.url), 'utf8');
    const r = load(text, 'unsupported-all.yaml');
    expect(r.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
    const found = unsupported(r.diagnostics);
    expect(found.every((d) => d.level === 'warning' && d.code === 'SLUICE_CONFIG_UNSUPPORTED')).toBe(true);
    const expected = UNSUPPORTED.flatMap((e) => unsupportedLabels(e).map((l) => `${e.kind} ${l}`));
    expect([...new Set(found.map((d) => `${d.subject?.kind} ${d.unsupported}`))].sort()).toEqual(
      [...new Set(expected)].sort(),
    );
  });

  it('names file, document, line, resource and the field as written, and says what happens', () => {
    const r = load(
      vs(`    - delegate: { name: shop-api }
`),
    );
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'warning c.yaml#1:8 VirtualService default/shop: spec.http[0].delegate: delegate is not implemented by sluice; delegate VirtualServices are not followed, so this rule is left out and requests it would take go to later rules (404 NR when none matches) [SLUICE_CONFIG_UNSUPPORTED]',
    ]);
    expect(r.diagnostics[0]!.unsupported).toBe('http[].delegate');
    // Still served: the resource is kept.
    expect(r.resources.resources).toHaveLength(1);
  });

  it('a DestinationRule policy block is found wherever it is written, under one label', () => {
    const r = load(
      dr(`  trafficPolicy:
    loadBalancer: { localityLbSetting: { enabled: true } }
    portLevelSettings:
      - port: { number: 80 }
        loadBalancer: { localityLbSetting: { enabled: true } }
  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy:
        loadBalancer: { localityLbSetting: { enabled: true } }
        portLevelSettings:
          - port: { number: 80 }
            loadBalancer: { localityLbSetting: { enabled: true } }
`),
    );
    expect(unsupported(r.diagnostics).map((d) => `${d.path} ${d.line} ${d.unsupported}`)).toEqual([
      'spec.trafficPolicy.loadBalancer.localityLbSetting 7 trafficPolicy.loadBalancer.localityLbSetting',
      'spec.trafficPolicy.portLevelSettings[0].loadBalancer.localityLbSetting 10 trafficPolicy.loadBalancer.localityLbSetting',
      'spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting 15 trafficPolicy.loadBalancer.localityLbSetting',
      'spec.subsets[0].trafficPolicy.portLevelSettings[0].loadBalancer.localityLbSetting 18 trafficPolicy.loadBalancer.localityLbSetting',
    ]);
    expect(r.diagnostics[0]!.message).toBe(
      'localityLbSetting is not implemented by sluice; it has no effect, as sluice runs in a single locality (DR-5)',
    );
  });

  it('values sluice serves are not warned: tls DISABLE and SIMPLE, simple ROUND_ROBIN, HTTP/2 settings, retryIgnorePreviousHosts true, HTTP and gRPC ports', () => {
    const r = load(`${dr(`  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    tls: { mode: DISABLE }
    connectionPool: { http: { h2UpgradePolicy: UPGRADE, useClientProtocol: true, maxConcurrentStreams: 10 } }
    portLevelSettings: [{ port: { number: 443 }, tls: { mode: SIMPLE, sni: shop.example.com } }]
`)}---
${vs(`    - route: [{ destination: { host: shop } }]
      retries: { attempts: 2, retryOn: 5xx,connect-failure,503, retryIgnorePreviousHosts: true }
`)}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api }
spec:
  hosts: [api.example.com]
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }, { number: 81, name: grpc, protocol: GRPC }]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  ports:
    - { name: http-web, port: 80, appProtocol: http }
    - { name: grpcless, port: 81 }
    - { name: GRPC-api, port: 82 }
`);
    expect(unsupported(r.diagnostics).map((d) => `${d.path} ${d.unsupported}`)).toEqual([]);
  });

  it('each gRPC retryOn token is its own warning naming the token', () => {
    const r = load(
      vs(`    - route: [{ destination: { host: shop } }]
      retries: { attempts: 2, retryOn: "5xx,unavailable, cancelled" }
`),
    );
    expect(unsupported(r.diagnostics).map((d) => d.message)).toEqual([
      'retryOn cancelled is not implemented by sluice; responses with that grpc-status are not retried',
      'retryOn unavailable is not implemented by sluice; responses with that grpc-status are not retried',
    ]);
  });

  it('a whole kind sluice reads but does not act on is one warning on the resource', () => {
    const r = load(`apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: web, namespace: shop }
spec:
  configPatches: []
`);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'warning c.yaml#1:1 EnvoyFilter shop/web: EnvoyFilter is not implemented by sluice; it is ignored: the changes it makes to an Istio gateway do not happen here [SLUICE_CONFIG_UNSUPPORTED]',
    ]);
    expect(r.diagnostics[0]!.unsupported).toBe('*');
  });

  it('security policies are left to compile, which knows whether they apply to this gateway', () => {
    const r = load(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: istio-system }
spec: {}
`);
    expect(r.diagnostics).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { snapshotFromYaml, TEST_IDENTITY } from '../../support/gateway.ts';
import { decideEgress, decideSni } from '../../../src/snapshot/egress.ts';
import type { EgressPolicy } from '../../../src/snapshot/types.ts';
import { loadResources } from '../../../src/config/index.ts';
import { compile } from '../../../src/compile/index.ts';
import { dumpSnapshot, routeRows } from '../../../src/snapshot/dump.ts';

const YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: default }
spec:
  hosts: [api.example.com, "*.cdn.example.com"]
  resolution: DYNAMIC_DNS
  ports: [{ number: 443, name: https, protocol: HTTPS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.corp.internal]
  addresses: [10.0.0.0/24]
  resolution: STATIC
  endpoints: [{ address: 10.0.0.5 }]
  ports: [{ number: 5432, name: tcp-pg, protocol: TCP }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hidden, namespace: other }
spec:
  hosts: [hidden.example.com]
  exportTo: ["."]
  ports: [{ number: 443, name: https, protocol: HTTPS }]
`;

function policy(extra = ''): EgressPolicy {
  return snapshotFromYaml(YAML + extra, { ...TEST_IDENTITY, egressProxyPort: 3128 }).egress!;
}

describe('decideEgress', () => {
  const p = policy();

  it('exact and wildcard hosts on a listed port pass; wildcards must check what they resolve to', () => {
    expect(decideEgress(p, 'api.example.com', 443)).toMatchObject({ allowed: true, checkResolved: false });
    expect(decideEgress(p, 'a.b.cdn.example.com', 443)).toMatchObject({ allowed: true, checkResolved: true });
    expect(decideEgress(p, 'cdn.example.com', 443)).toMatchObject({
      allowed: false,
      reason: 'not_in_registry',
    });
    expect(decideEgress(p, 'api.example.com', 80)).toMatchObject({
      allowed: false,
      reason: 'port_not_allowed',
    });
  });

  it('an entry exported elsewhere is not on the allowlist (exportTo)', () => {
    expect(decideEgress(p, 'hidden.example.com', 443)).toMatchObject({
      allowed: false,
      reason: 'not_in_registry',
    });
  });

  it('IP literals: only plain spellings of named addresses and CIDRs', () => {
    expect(decideEgress(p, '10.0.0.5', 5432)).toMatchObject({ allowed: true, literal: '10.0.0.5' });
    expect(decideEgress(p, '10.0.0.77', 5432)).toMatchObject({ allowed: true, literal: '10.0.0.77' });
    expect(decideEgress(p, '10.0.1.1', 5432)).toMatchObject({ allowed: false, reason: 'ip_literal' });
    expect(decideEgress(p, '167772165', 5432)).toMatchObject({ allowed: false, reason: 'ip_literal' });
    expect(decideEgress(p, '::ffff:10.0.0.5', 5432)).toMatchObject({ allowed: false, reason: 'ip_literal' });
  });

  it('ALLOW_ANY lets unnamed names out on any port, never IP literals', () => {
    const any = policy(`---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec: { outboundTrafficPolicy: { mode: ALLOW_ANY } }
`);
    expect(any.mode).toBe('ALLOW_ANY');
    expect(decideEgress(any, 'anything.example.org', 8443)).toMatchObject({
      allowed: true,
      entry: null,
      checkResolved: true,
    });
    expect(decideEgress(any, '192.0.2.1', 80)).toMatchObject({ allowed: false, reason: 'ip_literal' });
  });
});

describe('decideSni', () => {
  const p = policy();
  it('the SNI must be allowed on the port; no SNI only for a named address', () => {
    const tunnel = decideEgress(p, 'api.example.com', 443);
    if (!tunnel.allowed) throw new Error('expected allowed');
    expect(decideSni(p, tunnel, 'x.cdn.example.com', 443).allowed).toBe(true);
    expect(decideSni(p, tunnel, 'evil.example.com', 443)).toMatchObject({
      allowed: false,
      reason: 'sni_not_allowed',
    });
    expect(decideSni(p, tunnel, '', 443)).toMatchObject({ allowed: false, reason: 'no_sni' });
    const byAddress = decideEgress(p, '10.0.0.5', 5432);
    if (!byAddress.allowed) throw new Error('expected allowed');
    expect(decideSni(p, byAddress, '', 5432).allowed).toBe(true);
  });
});

describe('compileEgress', () => {
  it('is absent unless a port is set; the command line wins over MeshConfig', () => {
    expect(snapshotFromYaml(YAML).egress).toBeUndefined();
    const mesh = `---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec: { egressProxy: { port: 3129, learn: true } }
`;
    expect(snapshotFromYaml(YAML + mesh).egress).toMatchObject({ port: 3129, learn: true });
    expect(policy(mesh)).toMatchObject({ port: 3128, learn: true });
  });

  it('a Gateway server on the proxy port is an error', () => {
    const gw = `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 3128, name: http, protocol: HTTP }, hosts: ['*'] }]
`;
    expect(() => policy(gw)).toThrow(/egress proxy port 3128 is also a Gateway server port/);
  });

  it('of the ServiceEntry fields the proxy reads, only location MESH_INTERNAL is a warning (weight, subjectAltNames are acted on)', () => {
    const loaded = loadResources(
      [
        {
          file: 'se.yaml',
          text: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: x, namespace: default }
spec:
  hosts: [x.example.com]
  location: MESH_INTERNAL
  subjectAltNames: [x.example.com]
  resolution: STATIC
  endpoints: [{ address: 192.0.2.1, weight: 3 }]
  ports: [{ number: 443, name: tls, protocol: TLS }]
`,
        },
      ],
      { defaultNamespace: 'default' },
    );
    const { diagnostics } = compile(loaded.resources, { ...TEST_IDENTITY, egressProxyPort: 3128, nowMs: 0 });
    expect(
      diagnostics
        .filter((d) => d.code === 'SLUICE_CONFIG_UNSUPPORTED' && d.subject?.name === 'x')
        .map((d) => d.path),
    ).toEqual(['spec.location']);
  });
});

describe('the allowlist in /config_dump and sluice routes', () => {
  const snapshot = snapshotFromYaml(YAML, { ...TEST_IDENTITY, egressProxyPort: 3128 });

  it('names each allowed host:port (names, wildcards, addresses, CIDRs) and its ServiceEntry', () => {
    const allow = routeRows(snapshot)
      .filter((r) => r.table === 'egress')
      .map((r) => [r.vhost, r.route, r.destinations.join(' ')]);
    expect(allow).toEqual([
      ['*.cdn.example.com:443', 'ServiceEntry default/api', 'the requested name'],
      // `addresses` are the entry's VIPs: connections to them go to its endpoints.
      ['10.0.0.0/24:5432', 'ServiceEntry default/db', '10.0.0.5:5432 weight 1'],
      ['10.0.0.5:5432', 'ServiceEntry default/db', '10.0.0.5:5432 weight 1'],
      ['api.example.com:443', 'ServiceEntry default/api', 'the requested name'],
      ['db.corp.internal:5432', 'ServiceEntry default/db', '10.0.0.5:5432 weight 1'],
    ]);
    // Only the proxy's port asks for it; other ports leave it out.
    expect(routeRows(snapshot, 3128).filter((r) => r.table === 'egress')).toHaveLength(5);
    expect(routeRows(snapshot, 80).filter((r) => r.table === 'egress')).toEqual([]);
  });

  it('is in the snapshot dump with the mode and the routes proxied HTTP takes', () => {
    const dump = dumpSnapshot(snapshot) as {
      egress: { port: number; mode: string; allow: { host: string; port: number; source: string }[] };
    };
    expect(dump.egress.port).toBe(3128);
    expect(dump.egress.mode).toBe('REGISTRY_ONLY');
    expect(dump.egress.allow).toContainEqual(
      expect.objectContaining({ host: 'db.corp.internal', port: 5432, source: 'ServiceEntry default/db' }),
    );
  });
});

describe('the reserved gateway name sluice-egress-proxy', () => {
  it('binds a VirtualService to the proxy alone, with no missing-Gateway warning', () => {
    const vs = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.com]
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: proxy-only, namespace: default }
spec:
  hosts: [web.example.com]
  gateways: [sluice-egress-proxy]
  http: [{ route: [{ destination: { host: web.example.com } }] }]
`;
    const loaded = loadResources([{ file: 'c.yaml', text: YAML + vs }], { defaultNamespace: 'default' });
    const { snapshot, diagnostics } = compile(loaded.resources, {
      ...TEST_IDENTITY,
      egressProxyPort: 3128,
      nowMs: 0,
    });
    expect(diagnostics.filter((d) => d.subject?.name === 'proxy-only')).toEqual([]);
    const vhost = snapshot.egress!.meshTables.get(80)!.exact.get('web.example.com')!;
    expect(vhost.routes.map((r) => r.name)).toEqual(['default.proxy-only.0']);
    const withoutProxy = compile(loaded.resources, { ...TEST_IDENTITY, nowMs: 0 });
    expect(withoutProxy.diagnostics.filter((d) => d.subject?.name === 'proxy-only')).toEqual([]);
  });
});

/** The not-acted-on warnings about resource `name` with the proxy on, as [code, path, message]. */
function unsupportedOn(extraYaml: string, name: string): string[][] {
  const loaded = loadResources([{ file: 'c.yaml', text: YAML + extraYaml }], { defaultNamespace: 'default' });
  const { diagnostics } = compile(loaded.resources, { ...TEST_IDENTITY, egressProxyPort: 3128, nowMs: 0 });
  return diagnostics
    .filter((d) => d.subject?.name === name && d.code === 'SLUICE_CONFIG_UNSUPPORTED')
    .map((d) => [d.code, d.path ?? '', d.message]);
}

describe('DestinationRules the proxy cannot apply', () => {
  it('a rule for a wildcard ServiceEntry host is a warning on the rule', () => {
    const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: cdn, namespace: default }
spec:
  host: "*.cdn.example.com"
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 5 } } }
`;
    expect(unsupportedOn(dr, 'cdn')).toEqual([
      [
        'SLUICE_CONFIG_UNSUPPORTED',
        'spec.trafficPolicy',
        'the egress proxy does not apply it to requests for names under *.cdn.example.com: they are forwarded straight to the address the name resolves to',
      ],
    ]);
  });

  it('a rule with pool, outlier or balancer settings for a host reached by CONNECT is a warning on the rule', () => {
    const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: pg, namespace: default }
spec:
  host: db.corp.internal
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 5 } }
    outlierDetection: { consecutive5xxErrors: 3 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api-tls-only, namespace: default }
spec:
  host: api.example.com
  trafficPolicy: { tls: { mode: SIMPLE } }
`;
    expect(unsupportedOn(dr, 'pg')).toEqual([
      [
        'SLUICE_CONFIG_UNSUPPORTED',
        'spec.trafficPolicy',
        'the egress proxy applies connectionPool, outlierDetection to proxied HTTP requests for db.corp.internal only, not to CONNECT tunnels to port 5432 (a tunnel goes to an endpoint chosen by weight)',
      ],
    ]);
    // tls alone concerns proxied HTTP only: nothing to say about tunnels.
    expect(unsupportedOn(dr, 'api-tls-only')).toEqual([]);
  });
});

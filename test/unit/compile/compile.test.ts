import { afterEach, describe, expect, it, vi } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { canonicalJson, compile, hashResources, settingsOf } from '../../../src/compile/index.ts';
import { loadResources } from '../../../src/config/index.ts';
import { rsaLeaf, tlsSecretYaml } from '../../support/certs.ts';
import type { Resource } from '../../../src/model/resource.ts';
import { dumpSnapshot } from '../../../src/snapshot/dump.ts';
import { compileYaml, DEFAULT_IDENTITY, vsYaml } from '../../simulate/compile-yaml.ts';

const YAML = vsYaml('  - route: [{destination: {host: web.example.org}}]', {
  extra: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS`,
});

describe('compile', () => {
  it('is deterministic: the same input gives the same dump and hash', () => {
    const a = compileYaml(YAML);
    const b = compileYaml(YAML);
    expect(dumpSnapshot(a.snapshot)).toEqual(dumpSnapshot(b.snapshot));
    expect(a.snapshot.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hashes a canonical JSON: key order does not matter, content does', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 2 }], c: 3 } })).toBe(
      '{"a":{"c":3,"d":[2,{"x":2,"y":1}]},"b":1}',
    );
    const r = (spec: unknown): Resource =>
      ({
        kind: 'MeshConfig',
        apiVersion: 'sluice.dev/v1alpha1',
        namespace: 'x',
        name: 'm',
        labels: {},
        annotations: {},
        origin: { kind: 'builtin', what: 't' },
        spec,
      }) as Resource;
    expect(hashResources({ resources: [r({ a: 1, b: 2 })] })).toBe(
      hashResources({ resources: [r({ b: 2, a: 1 })] }),
    );
    expect(hashResources({ resources: [r({ a: 1 })] })).not.toBe(hashResources({ resources: [r({ a: 2 })] }));
  });

  it('an empty set compiles to no listeners with default settings', () => {
    const { snapshot, diagnostics } = compile({ resources: [] }, { ...DEFAULT_IDENTITY, nowMs: 0 });
    expect(snapshot.listeners.size).toBe(0);
    expect(snapshot.clusters.size).toBe(0);
    expect(snapshot.settings).toEqual({
      pathNormalization: 'BASE',
      numTrustedProxies: 0,
      outboundTrafficPolicy: 'ALLOW_ANY',
      serverHeader: 'istio-envoy',
    });
    expect(diagnostics.filter((d) => d.level === 'error')).toEqual([]);
  });

  it('settings come from MeshConfig (DEFAULT normalisation = BASE)', () => {
    expect(settingsOf({ pathNormalization: { normalization: 'DEFAULT' } }).pathNormalization).toBe('BASE');
    expect(
      settingsOf({
        pathNormalization: { normalization: 'MERGE_SLASHES' },
        gatewayTopology: { numTrustedProxies: 2 },
        outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      }),
    ).toEqual({
      pathNormalization: 'MERGE_SLASHES',
      numTrustedProxies: 2,
      outboundTrafficPolicy: 'REGISTRY_ONLY',
      serverHeader: 'istio-envoy',
    });
    const mesh = compileYaml(`${YAML}
---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec:
  pathNormalization: {normalization: NONE}
  gatewayTopology: {numTrustedProxies: 1}
`);
    expect(mesh.snapshot.settings).toMatchObject({ pathNormalization: 'NONE', numTrustedProxies: 1 });
  });

  it('never throws on malformed resources; an unexpected fault is SLUICE_INTERNAL', () => {
    const bad = {
      kind: 'Gateway',
      apiVersion: 'networking.istio.io/v1',
      namespace: 'istio-system',
      name: 'g',
      labels: {},
      annotations: {},
      origin: { kind: 'builtin', what: 't' },
      spec: { servers: [{}] },
    } as unknown as Resource;
    const result = compile({ resources: [bad] }, { ...DEFAULT_IDENTITY, nowMs: 0 });
    expect(result.snapshot.listeners.size).toBe(0);
    expect(result.diagnostics.some((d) => d.code === 'SLUICE_INTERNAL')).toBe(true);
  });

  it('listener keys identify protocol, bind and port', () => {
    const { snapshot } = compileYaml(YAML);
    expect(snapshot.listeners.get(8080)?.key).toBe('HTTP|*|8080');
  });

  describe('the clock is an input', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    const pair = rsaLeaf(['clock.example.com'], { tag: 'clock' });
    const notAfterMs = Date.parse(new X509Certificate(pair.certPem).validTo);
    const set = loadResources(
      [
        {
          file: 'clock.yaml',
          text: `${tlsSecretYaml('clock-cert', pair)}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 8443, name: https, protocol: HTTPS}
      hosts: [clock.example.com]
      tls: {mode: SIMPLE, credentialName: clock-cert}
`,
        },
      ],
      { defaultNamespace: 'default' },
    ).resources;
    const expiry = (nowMs: number): string[] =>
      compile(set, { ...DEFAULT_IDENTITY, nowMs })
        .diagnostics.filter((d) => /expired/.test(d.message))
        .map((d) => d.message);

    it('reads no clock of its own: the same inputs give the same snapshot and diagnostics', () => {
      vi.spyOn(Date, 'now').mockImplementation(() => {
        throw new Error('compile read the clock');
      });
      const a = compile(set, { ...DEFAULT_IDENTITY, nowMs: notAfterMs - 1000 });
      const b = compile(set, { ...DEFAULT_IDENTITY, nowMs: notAfterMs - 1000 });
      expect(a.diagnostics.filter((d) => d.code === 'SLUICE_INTERNAL')).toEqual([]);
      expect(a.snapshot.listeners.get(8443)?.tlsServers[0]?.tls).not.toBeNull();
      expect(dumpSnapshot(a.snapshot)).toEqual(dumpSnapshot(b.snapshot));
      expect(a.diagnostics).toEqual(b.diagnostics);
      expect(a.snapshot.hash).toBe(b.snapshot.hash);
    });

    it('judges certificate expiry by nowMs', () => {
      expect(expiry(notAfterMs - 1000)).toEqual([]);
      expect(expiry(notAfterMs + 1000).length).toBeGreaterThan(0);
    });
  });
});

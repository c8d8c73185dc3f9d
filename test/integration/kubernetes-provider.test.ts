/**
 * The Kubernetes provider against a loopback API server speaking list + watch (test/support/
 * fake-kube-api.ts), through the real client-node code: discovery picks one version per kind,
 * kinds not served are skipped with a warning, nothing is reported before every informer listed
 * once, and changes made through the API come back in the next read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createKubernetesProvider,
  type KubernetesProviderOptions,
} from '../../src/providers/kubernetes/index.ts';
import type { Provider, ProviderUpdate } from '../../src/providers/provider.ts';
import { CORE, ISTIO_CLUSTER, startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.ts';
import { objectOf, tempDir } from '../support/kube-config.ts';
import { gatewayYaml, routeYaml } from '../support/ops-config.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

async function api(served = ISTIO_CLUSTER): Promise<FakeKubeApi> {
  const a = await startFakeKubeApi({ served });
  cleanups.push(() => a.close());
  return a;
}

async function provider(
  a: FakeKubeApi,
  namespaces: string[] = [],
  extra: Partial<KubernetesProviderOptions> = {},
): Promise<{ p: Provider; changes: () => number }> {
  const t = await tempDir();
  cleanups.push(t.remove);
  const p = createKubernetesProvider({
    kubeconfig: a.kubeconfig(t.dir),
    namespaces,
    gatewayNamespace: 'istio-system',
    rootNamespace: 'istio-system',
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });
  let n = 0;
  await p.start(() => n++);
  cleanups.push(() => p.stop());
  return { p, changes: () => n };
}

const complete = async (p: Provider): Promise<ProviderUpdate> =>
  (await until(
    async () => {
      const u = await p.read();
      return u.incomplete === undefined ? u : null;
    },
    { what: 'a complete read', timeoutMs: 15_000 },
  ))!;

const names = (u: ProviderUpdate): string[] =>
  u.resources.resources.map((r) => `${r.kind} ${r.namespace}/${r.name}`);

describe('kubernetes provider', () => {
  it('lists every kind once at the newest served version, then follows ADDED, MODIFIED and DELETED', async () => {
    const a = await api();
    a.apply(objectOf(gatewayYaml([8080])));
    const { p } = await provider(a);
    let u = await complete(p);
    expect(names(u)).toEqual(['Gateway istio-system/gw']);
    const gw = u.resources.resources[0]!;
    expect(gw.apiVersion).toBe('networking.istio.io/v1');
    expect(gw.origin).toMatchObject({
      kind: 'kube',
      namespace: 'istio-system',
      resource: 'gateways',
      name: 'gw',
    });
    // One watch per kind, at one version: never v1beta1 beside v1.
    const watched = a.requests.filter((r) => r.query.watch === 'true').map((r) => r.path);
    expect(watched.filter((x) => x.includes('/gateways'))).toEqual(['/apis/networking.istio.io/v1/gateways']);
    expect(new Set(watched).size).toBe(watched.length);

    a.apply(objectOf(routeYaml(1, 'a')));
    u = (await until(async () => ((await p.read()).resources.resources.length === 2 ? p.read() : null), {
      what: 'the VirtualService',
      timeoutMs: 15_000,
    }))!;
    expect(names(u)).toEqual(['Gateway istio-system/gw', 'VirtualService test/shop']);
    a.apply(objectOf(routeYaml(2, 'b')));
    await until(
      async () =>
        JSON.stringify(
          (await p.read()).resources.resources.find((r) => r.kind === 'VirtualService')?.spec,
        ).includes('b.test.svc'),
      { what: 'the changed VirtualService', timeoutMs: 15_000 },
    );
    a.remove('networking.istio.io/v1', 'VirtualService', 'test', 'shop');
    await until(async () => (await p.read()).resources.resources.length === 1, {
      what: 'the delete',
      timeoutMs: 15_000,
    });
  });

  it('picks an older version when that is all the server offers, and skips kinds it does not serve', async () => {
    const a = await api([
      ...ISTIO_CLUSTER.filter((k) => k.group === 'networking.istio.io').map((k) => ({
        ...k,
        versions: ['v1beta1', 'v1alpha3'],
      })),
      ...CORE(),
    ]);
    const gw = objectOf(gatewayYaml([8080]));
    a.apply({ ...gw, apiVersion: 'networking.istio.io/v1beta1' });
    const { p } = await provider(a);
    const u = await complete(p);
    expect(u.resources.resources[0]?.apiVersion).toBe('networking.istio.io/v1beta1');
    const skipped = u.diagnostics
      .filter((d) => d.code === 'SLUICE_KUBE_KIND_NOT_SERVED')
      .map((d) => d.message);
    expect(skipped).toHaveLength(4);
    expect(skipped.join('\n')).toMatch(
      /AuthorizationPolicy is not watched: the API server does not serve security\.istio\.io/,
    );
    expect(skipped.join('\n')).toMatch(/MeshConfig is not watched/);
  });

  it('is incomplete until every informer has listed, even with a slow API server', async () => {
    const a = await api();
    a.latencyMs = 150;
    a.apply(objectOf(gatewayYaml([8080])));
    const { p } = await provider(a);
    const first = await p.read();
    expect(first.incomplete).toMatch(/waiting/);
    expect(first.resources.resources).toEqual([]);
    const u = await complete(p);
    expect(names(u)).toEqual(['Gateway istio-system/gw']);
  });

  it('--watch-namespace: watches only the namespaces named', async () => {
    const a = await api();
    a.apply(objectOf(gatewayYaml([8080])));
    a.apply(objectOf(routeYaml(1, 'a')));
    a.apply({ ...objectOf(routeYaml(1, 'a')), metadata: { name: 'other', namespace: 'elsewhere' } });
    const { p } = await provider(a, ['istio-system', 'test']);
    const u = await complete(p);
    expect(names(u)).toEqual(['Gateway istio-system/gw', 'VirtualService test/shop']);
    const paths = a.requests
      .filter((r) => r.method === 'GET' && r.path.includes('virtualservices'))
      .map((r) => r.path);
    expect(paths.every((x) => /\/namespaces\/(istio-system|test)\//.test(x))).toBe(true);
  });

  it('pages large lists with limit and continue', async () => {
    const a = await api();
    a.apply(objectOf(gatewayYaml([8080])));
    for (let i = 0; i < 1203; i++)
      a.apply({ ...objectOf(routeYaml(i, 'a')), metadata: { name: `vs-${i}`, namespace: 'test' } });
    const { p } = await provider(a);
    const u = await complete(p);
    expect(u.resources.resources.filter((r) => r.kind === 'VirtualService')).toHaveLength(1203);
    const pages = a.requests.filter(
      (r) => r.path.endsWith('/virtualservices') && r.query.watch === undefined,
    );
    expect(pages.length).toBe(3);
    expect(pages[1]?.query.continue).toBeTruthy();
  });

  it("reads Istio's mesh settings from ConfigMap istio-system/istio (key mesh); sluice's MeshConfig wins field by field", async () => {
    const a = await api();
    a.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'istio', namespace: 'istio-system' },
      data: {
        mesh: [
          'accessLogFile: /dev/stdout',
          'accessLogEncoding: JSON',
          'outboundTrafficPolicy: { mode: REGISTRY_ONLY }',
          'defaultConfig:',
          '  gatewayTopology: { numTrustedProxies: 2 }',
          '  discoveryAddress: istiod.istio-system.svc:15012',
          'enableTracing: false',
        ].join('\n'),
      },
    });
    a.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'other', namespace: 'istio-system' },
      data: {},
    });
    a.apply({
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'MeshConfig',
      metadata: { name: 'sluice', namespace: 'istio-system' },
      spec: { accessLogEncoding: 'TEXT' },
    });
    const { p } = await provider(a);
    const u = await complete(p);
    const meshes = u.resources.resources.filter((r) => r.kind === 'MeshConfig');
    expect(meshes.map((r) => r.name)).toEqual(['sluice', 'istio']);
    expect(meshes[1]?.origin).toMatchObject({ kind: 'kube', resource: 'configmaps', name: 'istio' });
    expect(meshes[1]?.spec).toEqual({
      accessLogFile: '/dev/stdout',
      accessLogEncoding: 'JSON',
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      gatewayTopology: { numTrustedProxies: 2 },
    });
    expect(u.diagnostics.find((d) => d.code === 'SLUICE_CONFIG_NOT_APPLICABLE')?.message).toMatch(
      /keys sluice does not read.*enableTracing/,
    );
    // Only that one ConfigMap is ever asked for.
    for (const r of a.requests.filter((x) => x.path.includes('/configmaps'))) {
      expect(r.path).toBe('/api/v1/namespaces/istio-system/configmaps');
      expect(r.query.fieldSelector).toBe('metadata.name=istio');
    }
    const { buildFromResources } = await import('../../src/control/build.ts');
    const built = buildFromResources(u.resources, u.diagnostics, {
      namespace: 'istio-system',
      labels: { istio: 'ingressgateway' },
      rootNamespace: 'istio-system',
      nowMs: Date.now(),
    });
    expect(built.snapshot.settings).toMatchObject({
      numTrustedProxies: 2,
      outboundTrafficPolicy: 'REGISTRY_ONLY',
    });
    expect(built.snapshot.settings.accessLog).toMatchObject({ encoding: 'TEXT' });
  });

  it('watches a kind whose CRD is installed after start, from the next discovery', async () => {
    const security = ISTIO_CLUSTER.filter((k) => k.group === 'security.istio.io');
    const a = await api(ISTIO_CLUSTER.filter((k) => k.group !== 'security.istio.io'));
    a.apply(objectOf(gatewayYaml([8080])));
    const { p } = await provider(a, [], { rediscoverMs: 100 });
    const before = await complete(p);
    expect(before.diagnostics.filter((d) => d.code === 'SLUICE_KUBE_KIND_NOT_SERVED')).toHaveLength(2);
    for (const k of security) a.install(k);
    a.apply({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-all', namespace: 'istio-system' },
      spec: {},
    });
    const after = await until(
      async () => {
        const u = await p.read();
        return u.resources.resources.some((r) => r.kind === 'AuthorizationPolicy') ? u : null;
      },
      { what: 'the AuthorizationPolicy once its CRD is served', timeoutMs: 15_000 },
    );
    expect(after!.diagnostics.filter((d) => d.code === 'SLUICE_KUBE_KIND_NOT_SERVED')).toEqual([]);
  });
});

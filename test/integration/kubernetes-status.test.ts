/**
 * `serve --kubernetes --write-status`: problems reach `kubectl describe` and `kubectl get -o yaml`
 * (a core/v1 Event on the object, `status.validationMessages` with the IST code on Istio kinds),
 * with the verbs, paths and content types a real API server expects; only the replica holding
 * the Lease writes; without --write-status nothing is written at all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, statusLeaseName, type RunningGateway } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startFakeKubeApi, type FakeKubeApi, type KubeObj } from '../support/fake-kube-api.ts';
import { kubeServeArgs, objectOf, objectsOf, tempDir } from '../support/kube-config.ts';
import { freePort, routeYaml, upstreamsYaml } from '../support/ops-config.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

async function api(): Promise<{ api: FakeKubeApi; kubeconfig: string }> {
  const a = await startFakeKubeApi();
  cleanups.push(() => a.close());
  const t = await tempDir();
  cleanups.push(t.remove);
  return { api: a, kubeconfig: a.kubeconfig(t.dir) };
}

async function serve(kubeconfig: string, extra: readonly string[] = []): Promise<RunningGateway> {
  const opts = parseOptions('serve', kubeServeArgs(kubeconfig, extra), {});
  const running = await startServe(opts, {
    logger: silentLogger(),
    leaderTiming: { leaseDurationMs: 5000, renewMs: 200 },
  });
  cleanups.push(() => running.close());
  return running;
}

/** A VirtualService bound to a Gateway that does not exist: IST0101 from the analysis. */
const dangling = (): KubeObj => objectOf(routeYaml(1, 'a'));

const validationMessages = (a: FakeKubeApi): unknown =>
  (a.get('VirtualService', 'test', 'shop')?.status as { validationMessages?: unknown } | undefined)
    ?.validationMessages;

/** Binds the VirtualService to the mesh and gives its destination a ServiceEntry: nothing left to say. */
function fix(a: FakeKubeApi): void {
  for (const o of objectsOf(upstreamsYaml({ a: 9 }))) a.apply(o);
  const fixed = dangling();
  (fixed.spec as { gateways: string[] }).gateways = ['mesh'];
  a.apply(fixed);
}

const statusOf = (a: FakeKubeApi, kind = 'VirtualService', name = 'shop'): Record<string, unknown[]> =>
  (a.get(kind, 'test', name)?.status ?? {}) as Record<string, unknown[]>;

/** sluice's condition on the object, if any. */
const accepted = (a: FakeKubeApi, kind?: string, name?: string): Record<string, unknown> | undefined =>
  (statusOf(a, kind, name).conditions as Record<string, unknown>[] | undefined)?.find(
    (c) => c.type === 'sluice.dev/Accepted',
  );

/** Ingress test/NAME of class `cls`: shop.example.com → Service web. */
const ingressOf = (name: string, cls: string): KubeObj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name, namespace: 'test' },
  spec: {
    ingressClassName: cls,
    rules: [
      {
        host: `${name}.example.com`,
        http: {
          paths: [
            { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
          ],
        },
      },
    ],
  },
});

const loadBalancerOf = (a: FakeKubeApi, name: string): unknown =>
  (a.get('Ingress', 'test', name)?.status as { loadBalancer?: unknown } | undefined)?.loadBalancer;

const events = (a: FakeKubeApi): Record<string, unknown>[] =>
  a.requests
    .filter((r) => r.method === 'POST' && r.path.endsWith('/events'))
    .map((r) => r.body as Record<string, unknown>);

describe('serve --kubernetes --write-status', () => {
  it('writes status.validationMessages and an Event for a finding, and clears the status once it is fixed', async () => {
    const { api: a, kubeconfig } = await api();
    a.apply(dangling());
    const running = await serve(kubeconfig, ['--write-status']);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    await until(() => validationMessages(a) !== undefined, { what: 'the status written', timeoutMs: 15_000 });
    // Two findings (the Gateway, and the destination host) of one code: one entry as istiod writes it.
    expect(validationMessages(a)).toEqual([
      {
        level: 'WARNING',
        type: { code: 'IST0101' },
        documentationUrl: 'https://istio.io/latest/docs/reference/config/analysis/ist0101/?ref=sluice',
      },
    ]);
    expect(accepted(a)).toMatchObject({
      status: 'True',
      reason: 'AcceptedWithWarnings',
      observedGeneration: a.get('VirtualService', 'test', 'shop')?.metadata.generation,
    });
    expect(accepted(a)?.message).toMatch(/Gateway istio-system\/gw not found/);
    // Server-side apply of the status subresource, as field manager sluice, never forced.
    const patch = a.requests.find((r) => r.method === 'PATCH');
    expect(patch?.path).toBe('/apis/networking.istio.io/v1/namespaces/test/virtualservices/shop/status');
    expect(patch?.contentType).toBe('application/apply-patch+yaml');
    expect(patch?.query).toEqual({ fieldManager: 'sluice' });
    expect(patch?.body).toMatchObject({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'shop', namespace: 'test' },
    });
    await until(() => events(a).length > 0, { what: 'an Event', timeoutMs: 15_000 });
    const ev = events(a)[0]!;
    expect(ev).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      type: 'Normal',
      reason: 'SluiceConfigWarning',
      involvedObject: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        namespace: 'test',
        name: 'shop',
      },
      source: { component: 'sluice' },
    });
    expect((ev.involvedObject as { uid: string }).uid).toBe(
      a.get('VirtualService', 'test', 'shop')?.metadata.uid,
    );
    expect(String(ev.message)).toMatch(/Gateway istio-system\/gw not found/);
    expect(a.requests.find((r) => r.method === 'POST' && r.path.endsWith('/events'))?.path).toBe(
      '/api/v1/namespaces/test/events',
    );

    // Writing the status changes the object's resourceVersion: it settles, no Event storm.
    await running.loop.settled();
    await until(() => events(a).length === 2, { what: 'an Event per finding', timeoutMs: 15_000 });
    const writes = a.requests.filter((r) => r.method !== 'GET').length;
    const sent = events(a).length;
    fix(a);
    await until(() => validationMessages(a) === undefined && accepted(a) === undefined, {
      what: 'the status cleared',
      timeoutMs: 15_000,
    });
    await running.loop.settled();
    expect(events(a)).toHaveLength(sent);
    expect(a.requests.filter((r) => r.method !== 'GET').length).toBeLessThanOrEqual(writes + 3);
  });

  it('an invalid resource gets an IST0106 ERROR status and a Warning Event naming the field', async () => {
    const { api: a, kubeconfig } = await api();
    const bad = dangling();
    (bad.spec as { http: { route: { weight?: number }[] }[] }).http[0]!.route[0]!.weight = -5;
    a.apply(bad);
    const running = await serve(kubeconfig, ['--write-status']);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    await until(() => validationMessages(a) !== undefined, { what: 'the status written', timeoutMs: 15_000 });
    expect(validationMessages(a)).toMatchObject([{ level: 'ERROR', type: { code: 'IST0106' } }]);
    await until(() => events(a).some((e) => e.type === 'Warning'), {
      what: 'a Warning Event',
      timeoutMs: 15_000,
    });
    expect(String(events(a).find((e) => e.type === 'Warning')?.message)).toMatch(
      /kube:test\/virtualservices\/shop@\d+ VirtualService test\/shop: spec\.http\[0\]\.route\[0\]\.weight/,
    );
  });

  it("server-side apply: istiod's status entries and sluice's coexist, and fixing the object removes only sluice's", async () => {
    const { api: a, kubeconfig } = await api();
    a.apply(dangling());
    const istiod = {
      validationMessages: [
        {
          level: 'INFO',
          type: { code: 'IST0102' },
          documentationUrl:
            'https://istio.io/latest/docs/reference/config/analysis/ist0102/?ref=status-controller',
        },
      ],
      conditions: [
        { type: 'Reconciled', status: 'True', reason: 'Reconciled', message: 'synced to 2 proxies' },
      ],
    };
    expect(a.applyStatus('pilot-discovery', 'VirtualService', 'test', 'shop', istiod)).toBeNull();
    const running = await serve(kubeconfig, ['--write-status']);
    await until(() => accepted(a) !== undefined, { what: "sluice's condition", timeoutMs: 15_000 });
    expect(statusOf(a).validationMessages?.map((m) => (m as { type: { code: string } }).type.code)).toEqual([
      'IST0102',
      'IST0101',
    ]);
    expect(statusOf(a).conditions?.map((c) => (c as { type: string }).type)).toEqual([
      'Reconciled',
      'sluice.dev/Accepted',
    ]);
    expect(a.get('VirtualService', 'test', 'shop')?.metadata.managedFields).toEqual([
      expect.objectContaining({ manager: 'pilot-discovery', operation: 'Apply', subresource: 'status' }),
      expect.objectContaining({ manager: 'sluice', operation: 'Apply', subresource: 'status' }),
    ]);
    // An entry istiod owns cannot be changed by another manager without force: the fake says so.
    expect(
      a.applyStatus('other', 'VirtualService', 'test', 'shop', {
        conditions: [{ type: 'Reconciled', status: 'False' }],
      }),
    ).toEqual(['conflict with "pilot-discovery": .status.conditions[type=Reconciled].status']);

    fix(a);
    await until(() => accepted(a) === undefined, { what: "sluice's entries removed", timeoutMs: 15_000 });
    await running.loop.settled();
    expect(statusOf(a)).toEqual(istiod);
  });

  it('findings without an IST code have a stable place: the sluice.dev/Accepted condition, as CODE: message', async () => {
    const { api: a, kubeconfig } = await api();
    // Never valid: denied in its scope (SLUICE_KUBE_POLICY_DENY, no IST code) beside its IST0106 error.
    a.apply(
      objectOf(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: broken, namespace: test }
spec:
  action: ALOW
`),
    );
    const running = await serve(kubeconfig, ['--write-status']);
    await until(() => accepted(a, 'AuthorizationPolicy', 'broken') !== undefined, {
      what: "sluice's condition",
      timeoutMs: 15_000,
    });
    const condition = accepted(a, 'AuthorizationPolicy', 'broken')!;
    expect(condition).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(condition.message).toMatch(
      /SLUICE_KUBE_POLICY_DENY: this version is invalid and no version was good before/,
    );
    expect(statusOf(a, 'AuthorizationPolicy', 'broken').validationMessages).toEqual([
      expect.objectContaining({ level: 'ERROR', type: { code: 'IST0106' } }),
    ]);
    await running.loop.settled();
  });

  it('with several replicas only the Lease holder writes; another takes over when it stops', async () => {
    const { api: a, kubeconfig } = await api();
    a.apply(dangling());
    const first = await serve(kubeconfig, ['--write-status']);
    await until(() => events(a).length > 0, { what: 'the first replica writes', timeoutMs: 15_000 });
    const second = await serve(kubeconfig, ['--write-status']);
    await until(() => second.isReady(), { what: 'the second replica ready', timeoutMs: 15_000 });
    const lease = a.get('Lease', 'istio-system', statusLeaseName({ istio: 'ingressgateway' }));
    const holder = (lease?.spec as { holderIdentity: string }).holderIdentity;
    expect(new Set(events(a).map((e) => e.reportingInstance))).toEqual(new Set([holder]));
    // A new problem: still one writer.
    a.apply({ ...dangling(), metadata: { name: 'other', namespace: 'test' } });
    await until(() => events(a).length >= 2, { what: 'the Event for the new problem', timeoutMs: 15_000 });
    await second.loop.settled();
    expect(new Set(events(a).map((e) => e.reportingInstance))).toEqual(new Set([holder]));
    const leaseWrites = a.requests.filter((r) => r.path.includes('/leases') && r.method !== 'GET');
    expect(leaseWrites.every((r) => r.method === 'POST' || r.method === 'PUT')).toBe(true);

    await first.close();
    a.apply({ ...dangling(), metadata: { name: 'third', namespace: 'test' } });
    await until(() => new Set(events(a).map((e) => e.reportingInstance)).size === 2, {
      what: 'the second replica writes once it holds the Lease',
      timeoutMs: 8000,
    });
  });

  it('served Ingresses get the --publish-service address in status.loadBalancer, written by the Lease holder only, following the Service', async () => {
    const { api: a, kubeconfig } = await api();
    const lb = (ingress: Record<string, string>[]): KubeObj => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'sluice', namespace: 'istio-system' },
      spec: { type: 'LoadBalancer', clusterIP: '10.0.0.9', ports: [{ name: 'http', port: 80 }] },
      status: { loadBalancer: { ingress } },
    });
    a.apply(lb([{ ip: '203.0.113.7' }]));
    a.apply(ingressOf('shop', 'sluice'));
    a.apply(ingressOf('legacy', 'nginx'));
    const flags = ['--write-status', '--publish-service', 'istio-system/sluice'];
    // Each replica serves the Ingress on a port of its own.
    const first = await serve(kubeconfig, [...flags, '--ingress-http-port', String(await freePort())]);
    const second = await serve(kubeconfig, [...flags, '--ingress-http-port', String(await freePort())]);
    await until(() => first.isReady() && second.isReady(), { what: 'both ready', timeoutMs: 15_000 });
    await until(() => loadBalancerOf(a, 'shop') !== undefined, { what: 'the address', timeoutMs: 15_000 });
    expect(loadBalancerOf(a, 'shop')).toEqual({ ingress: [{ ip: '203.0.113.7' }] });
    await first.loop.settled();
    await second.loop.settled();
    const writes = (name: string) =>
      a.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/ingresses/${name}/status`));
    // Both replicas serve it; one holds the Lease and writes, once.
    expect(writes('shop')).toHaveLength(1);
    expect(writes('shop')[0]).toMatchObject({
      path: '/apis/networking.k8s.io/v1/namespaces/test/ingresses/shop/status',
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: 'sluice' },
    });
    // Another class's Ingress is not this gateway's to speak for.
    expect(writes('legacy')).toHaveLength(0);

    a.apply(lb([{ hostname: 'edge.example.com' }]));
    await until(
      () => JSON.stringify(loadBalancerOf(a, 'shop')) === '{"ingress":[{"hostname":"edge.example.com"}]}',
      {
        what: 'the new address',
        timeoutMs: 15_000,
      },
    );
    // Leaving the class removes the address sluice wrote.
    a.apply(ingressOf('shop', 'nginx'));
    await until(() => loadBalancerOf(a, 'shop') === undefined, {
      what: 'the address removed',
      timeoutMs: 15_000,
    });
  });

  it('--publish-status-address is written as given (IPs and hostnames), over --publish-service', async () => {
    const { api: a, kubeconfig } = await api();
    a.apply(ingressOf('shop', 'sluice'));
    const running = await serve(kubeconfig, [
      '--write-status',
      '--publish-service',
      'istio-system/absent',
      '--publish-status-address',
      '198.51.100.1,edge.example.com',
      '--ingress-http-port',
      String(await freePort()),
    ]);
    await until(() => loadBalancerOf(a, 'shop') !== undefined, { what: 'the address', timeoutMs: 15_000 });
    expect(loadBalancerOf(a, 'shop')).toEqual({
      ingress: [{ ip: '198.51.100.1' }, { hostname: 'edge.example.com' }],
    });
    await running.loop.settled();
    expect(
      a.requests.some(
        (r) => r.path.includes('/services') && r.query.fieldSelector === 'metadata.name=absent',
      ),
    ).toBe(false);
  });

  it('without --write-status nothing is written', async () => {
    const { api: a, kubeconfig } = await api();
    a.apply(dangling());
    const running = await serve(kubeconfig);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    await running.loop.settled();
    expect(a.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(a.requests.some((r) => r.path.includes('/leases'))).toBe(false);
  });
});

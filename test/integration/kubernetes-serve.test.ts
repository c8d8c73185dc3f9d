/**
 * `sluice serve --kubernetes` in-process against a loopback API server (test/support/
 * fake-kube-api.ts): objects created, changed and deleted through the API move real traffic to
 * real upstreams; readiness waits for the first sync; an unreachable API server is retried, never
 * an exit; an outage keeps the last snapshot serving and shows in the metrics; 410 Gone re-lists;
 * a burst of changes becomes a few reloads; the synced state is authoritative.
 */
import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, type RunningGateway } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startFakeKubeApi, type FakeKubeApi, type KubeObj } from '../support/fake-kube-api.ts';
import { kubeServeArgs, objectOf, objectsOf, tempDir } from '../support/kube-config.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';
import { runSluice } from '../support/child-process.ts';
import { startServeChild } from '../support/serve-child.ts';
import { rsaLeaf, tlsSecretYaml } from '../support/certs.ts';
import { handshake } from '../support/tls-client.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

interface Setup {
  readonly api: FakeKubeApi;
  readonly a: Upstream;
  readonly b: Upstream;
  readonly port: number;
  readonly dir: string;
}

async function setup(): Promise<Setup> {
  const api = await startFakeKubeApi();
  cleanups.push(() => api.close());
  const a = await startEcho({ name: 'a' });
  const b = await startEcho({ name: 'b' });
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const t = await tempDir();
  cleanups.push(t.remove);
  return { api, a, b, port: await freePort(), dir: t.dir };
}

async function serve(s: Setup, extraArgs: readonly string[] = []): Promise<RunningGateway> {
  const opts = parseOptions('serve', kubeServeArgs(s.api.kubeconfig(s.dir), extraArgs), {});
  const running = await startServe(opts, { logger: silentLogger() });
  cleanups.push(() => running.close());
  return running;
}

const readiness = async (r: RunningGateway): Promise<number> =>
  (await fetch(`http://127.0.0.1:${r.status.port}/healthz/ready`)).status;

const scrape = async (r: RunningGateway): Promise<string> =>
  (await fetch(`http://127.0.0.1:${r.metricsServer.port}/stats/prometheus`)).text();

async function genOf(port: number): Promise<string | undefined> {
  const res = await request(port).catch((e: NodeJS.ErrnoException) => ({
    status: e.code,
    headers: {} as Record<string, string | string[] | undefined>,
  }));
  return res.status === 200 ? (res.headers['x-gen'] as string | undefined) : `status ${res.status}`;
}

function applyAll(api: FakeKubeApi, yamlText: string): void {
  for (const o of objectsOf(yamlText)) api.apply(o);
}

/** Gateway, ServiceEntries for both upstreams, VirtualService generation 1 → a. */
function applyStandard(s: Setup): void {
  applyAll(s.api, gatewayYaml([s.port]));
  applyAll(s.api, upstreamsYaml({ a: s.a.port, b: s.b.port }));
  s.api.apply(objectOf(routeYaml(1, 'a')));
}

/** The Gateway and Service test/web (port 80 `http`), for the EndpointSlice tests. */
function applyWebService(s: Setup): void {
  applyAll(s.api, gatewayYaml([s.port]));
  s.api.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'test' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] },
  });
}

/** Services test/web (→ a) and test/api (→ b), each with an EndpointSlice on loopback, for Ingress backends. */
function applyIngressBackends(s: Setup): void {
  for (const [name, port] of [
    ['web', s.a.port],
    ['api', s.b.port],
  ] as const) {
    s.api.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'test' },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }] },
    });
    s.api.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${name}-abcde`,
        namespace: 'test',
        labels: { 'kubernetes.io/service-name': name },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
  }
}

/** Ingress test/shop (class sluice): shop.example.com → Service `service` port 80, with `tls` if given. */
function ingress(service: string, tls?: readonly unknown[]): KubeObj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'shop', namespace: 'test' },
    spec: {
      ingressClassName: 'sluice',
      ...(tls !== undefined ? { tls } : {}),
      rules: [
        {
          host: 'shop.example.com',
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: service, port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  };
}

/** Gateway istio-system/tls: HTTPS on `port` for shop.example.com with credentialName shop-cert. */
function applyTlsGateway(s: Setup, port: number): void {
  s.api.apply(
    objectOf(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: tls, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${port}, name: https, protocol: HTTPS }
      hosts: ["*/shop.example.com"]
      tls: { mode: SIMPLE, credentialName: shop-cert }
`),
  );
}

/** Waits (generously) until the TLS listener on `port` presents `certPem` for shop.example.com. */
async function presents(port: number, certPem: string, what: string): Promise<void> {
  const want = new X509Certificate(certPem).fingerprint256;
  await until(
    async () =>
      (await handshake(port, { servername: 'shop.example.com' }).catch(() => ({ fingerprint256: '' })))
        .fingerprint256 === want,
    { what, timeoutMs: 15_000 },
  );
}

/** Every Secret request went to `path` with one of `selectors`: no other Secret was listed or read. */
function expectSecretReads(api: FakeKubeApi, path: string, selectors: readonly string[]): void {
  const secretRequests = api.requests.filter((r) => r.path.includes('/secrets'));
  expect(secretRequests.length).toBeGreaterThan(0);
  for (const r of secretRequests) {
    expect(r.path).toBe(path);
    expect(selectors).toContain(r.query.fieldSelector);
  }
}

/** Waits (generously) for traffic to show generation `gen`; returns how long it took. */
async function follows(port: number, gen: string, what: string): Promise<number> {
  const start = Date.now();
  // Generous: the machine running the tests may be busy; the latency figure is bench:kube's.
  await until(async () => (await genOf(port)) === gen, { what, timeoutMs: 15_000, intervalMs: 10 });
  return Date.now() - start;
}

describe('serve --kubernetes', () => {
  it('traffic follows create, change and delete through the API within a second', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready after the first sync', timeoutMs: 15_000 });
    expect(await genOf(s.port)).toBe('1');
    expect(s.a.seen.length).toBeGreaterThan(0);

    s.api.apply(objectOf(routeYaml(2, 'b')));
    const changed = await follows(s.port, '2', 'the changed VirtualService');
    expect(changed).toBeLessThan(1000);
    expect(s.b.seen.length).toBeGreaterThan(0);

    s.api.remove('networking.istio.io/v1', 'VirtualService', 'test', 'shop');
    const deleted = await follows(s.port, 'status 404', 'the deleted VirtualService');
    expect(deleted).toBeLessThan(1000);

    s.api.apply(objectOf(routeYaml(3, 'a')));
    expect(await follows(s.port, '3', 'the re-created VirtualService')).toBeLessThan(1000);
  });

  it('readiness is 503 until every informer has synced; an unreachable API server is retried, not an exit', async () => {
    const s = await setup();
    applyStandard(s);
    s.api.down();
    const running = await serve(s);
    expect(await readiness(running)).toBe(503);
    await until(
      async () =>
        /sluice_config_source_failures_total\{source="kubernetes"\} [1-9]/.test(await scrape(running)),
      { what: 'failures counted while the API server is down', timeoutMs: 15_000 },
    );
    expect(await readiness(running)).toBe(503);
    expect(running.loop.stats.version).toBe(0);
    s.api.up();
    // Back-off is capped at a few seconds: recovery is seen well within this.
    await until(async () => (await readiness(running)) === 200, {
      what: 'ready after recovery',
      timeoutMs: 8000,
    });
    expect(await genOf(s.port)).toBe('1');
  });

  it('an outage keeps the last snapshot serving and is visible in metrics; a change made meanwhile is served after recovery', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    expect(await scrape(running)).toMatch(/sluice_config_source_up\{source="kubernetes"\} 1/);
    s.api.down();
    await until(async () => /sluice_config_source_up\{source="kubernetes"\} 0/.test(await scrape(running)), {
      what: 'the outage in metrics',
      timeoutMs: 15_000,
    });
    expect(await genOf(s.port)).toBe('1');
    expect(await readiness(running)).toBe(200);
    s.api.apply(objectOf(routeYaml(2, 'b')));
    s.api.up();
    await follows(s.port, '2', 'the change made during the outage');
    await until(async () => /sluice_config_source_up\{source="kubernetes"\} 1/.test(await scrape(running)), {
      what: 'recovery in metrics',
      timeoutMs: 15_000,
    });
  });

  it('re-lists after 410 Gone (as an ERROR event and as an HTTP status) and after dropped watches', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    let gen = 1;
    for (const mode of ['event', 'http'] as const) {
      s.api.goneAs = mode;
      s.api.down();
      s.api.apply(objectOf(routeYaml(++gen, gen % 2 === 0 ? 'b' : 'a')));
      s.api.compact();
      s.api.up();
      await follows(s.port, String(gen), `the change after 410 (${mode})`);
    }
    const lists = s.api.requests.filter(
      (r) => r.path.endsWith('/virtualservices') && r.query.watch === undefined,
    );
    expect(lists.length).toBeGreaterThanOrEqual(3);
    s.api.dropWatches();
    s.api.apply(objectOf(routeYaml(++gen, 'a')));
    await follows(s.port, String(gen), 'the change after dropped watches');
  });

  it('honours BOOKMARK events: a resumed watch starts from the bookmarked resourceVersion', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    // Changes elsewhere move the resourceVersion on; the bookmark tells the quiet watches.
    for (let i = 0; i < 5; i++)
      s.api.apply({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `s${i}`, namespace: 'test' },
        spec: { ports: [{ port: 80 }] },
      });
    await until(() => s.api.watchCount() >= 11, { what: 'every watch open', timeoutMs: 15_000 });
    s.api.bookmark();
    const head = s.api.get('Service', 'test', 's4')!.metadata.resourceVersion;
    // The stream ends cleanly after the bookmark (a server's timeoutSeconds), so it is read first.
    s.api.endWatches();
    await until(
      () =>
        s.api.requests.some(
          (r) => r.path.endsWith('/gateways') && r.query.watch === 'true' && r.query.resourceVersion === head,
        ),
      { what: 'the gateway watch resumed from the bookmark', timeoutMs: 15_000 },
    );
  });

  it('a burst of 500 changes becomes a few reloads, ending on the last', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    const before = running.loop.stats.accepted;
    for (let i = 2; i <= 501; i++) s.api.apply(objectOf(routeYaml(i, i % 2 === 0 ? 'b' : 'a')));
    await follows(s.port, '501', 'the last of the burst');
    await running.loop.settled();
    const reloads = running.loop.stats.accepted - before;
    expect(reloads).toBeGreaterThanOrEqual(1);
    expect(reloads).toBeLessThanOrEqual(5);
  });

  it('the synced state is authoritative: deleting every Gateway is applied (with a warning), not refused', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    s.api.remove('networking.istio.io/v1', 'Gateway', 'istio-system', 'gw');
    await until(async () => (await genOf(s.port)) === 'status ECONNREFUSED', {
      what: 'the listener closed',
      timeoutMs: 15_000,
    });
    expect(running.loop.stats.rejected).toBe(0);
    expect(await readiness(running)).toBe(200);
  });

  it('a resource with errors is left out and the rest keep serving', async () => {
    const s = await setup();
    applyStandard(s);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    const bad = objectOf(routeYaml(9, 'a'));
    (bad.spec as { http: { route: { weight?: number }[] }[] }).http[0]!.route[0]!.weight = -5;
    s.api.apply({ ...bad, metadata: { name: 'broken', namespace: 'test' } });
    s.api.apply(objectOf(routeYaml(2, 'b')));
    await follows(s.port, '2', 'the valid change beside an invalid resource');
    expect(running.loop.current()?.resources.resources.some((r) => r.name === 'broken')).toBe(false);
  });

  it('reads only the Secrets a credentialName references, by name; other Secrets are never fetched', async () => {
    const s = await setup();
    applyStandard(s);
    const tlsPort = await freePort();
    const v1 = rsaLeaf(['shop.example.com'], { tag: 'k8s-v1' });
    applyAll(s.api, tlsSecretYaml('shop-cert', v1));
    applyAll(s.api, tlsSecretYaml('unrelated', rsaLeaf(['x.example.com'])));
    applyAll(s.api, tlsSecretYaml('shop-cert', rsaLeaf(['y.example.com']), { namespace: 'test' }));
    applyTlsGateway(s, tlsPort);
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    await presents(tlsPort, v1.certPem, 'the TLS listener');
    // Rotation through the API is a reload like any other.
    const v2 = rsaLeaf(['shop.example.com'], { tag: 'k8s-v2' });
    applyAll(s.api, tlsSecretYaml('shop-cert', v2));
    await presents(tlsPort, v2.certPem, 'the rotated certificate');
    expectSecretReads(s.api, '/api/v1/namespaces/istio-system/secrets', [
      'metadata.name=shop-cert',
      'metadata.name=shop-cert-cacert',
    ]);
    expect(
      running.loop
        .current()
        ?.resources.resources.filter((r) => r.kind === 'Secret')
        .map((r) => `${r.namespace}/${r.name}`),
    ).toEqual(['istio-system/shop-cert']);
  });

  it('a Secret or Pod watch RBAC refuses (403) never blocks the rest: it is left out, reported, counted, and picked up once granted', async () => {
    const s = await setup();
    applyStandard(s);
    const tlsPort = await freePort();
    const cert = rsaLeaf(['shop.example.com'], { tag: 'granted-later' });
    applyAll(s.api, tlsSecretYaml('shop-cert', cert));
    applyTlsGateway(s, tlsPort);
    s.api.apply(
      objectOf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: versions, namespace: test }
spec:
  host: a.example.com
  subsets: [{ name: v1, labels: { version: v1 } }]
`),
    );
    s.api.forbid('secrets', 'istio-system');
    s.api.forbid('pods');
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready without the refused watches', timeoutMs: 15_000 });
    expect(await genOf(s.port)).toBe('1');
    const forbiddenOn = (): string[] =>
      (running.loop.current()?.diagnostics ?? [])
        .filter((d) => d.code === 'SLUICE_KUBE_WATCH_FORBIDDEN')
        .map(
          (d) =>
            `${d.subject?.kind} ${d.subject?.name}: ${d.message.replace(/\([^()]*403 [^()]*\)/, '(403)')}`,
        )
        .sort();
    expect(forbiddenOn()).toEqual([
      "DestinationRule versions: Pods cannot be read (403); it is left out (grant list and watch on pods to sluice's service account) and retried",
      "Gateway tls: Secret istio-system/shop-cert cannot be read (403); it is left out (grant list and watch on secrets to sluice's service account) and retried",
      "Gateway tls: Secret istio-system/shop-cert-cacert cannot be read (403); it is left out (grant list and watch on secrets to sluice's service account) and retried",
    ]);
    const metrics = await scrape(running);
    expect(metrics).toMatch(/sluice_config_source_forbidden_watches\{source="kubernetes"\} 3/);
    // Refused, not unreachable: the source is up.
    expect(metrics).toMatch(/sluice_config_source_up\{source="kubernetes"\} 1/);
    // Later changes apply while the watches stay refused.
    s.api.apply(objectOf(routeYaml(2, 'b')));
    await follows(s.port, '2', 'a change while the Secret and Pod watches are refused');

    s.api.allow('secrets', 'istio-system');
    s.api.allow('pods');
    await presents(tlsPort, cert.certPem, 'the Secret once RBAC grants it');
    await until(
      async () =>
        /sluice_config_source_forbidden_watches\{source="kubernetes"\} 0/.test(await scrape(running)),
      {
        what: 'no refused watch in metrics',
        timeoutMs: 15_000,
      },
    );
    await until(() => forbiddenOn().length === 0, { what: 'the warnings gone', timeoutMs: 15_000 });
  });

  it('an invalid AuthorizationPolicy keeps its last valid version in force; one never valid denies its scope', async () => {
    const s = await setup();
    applyStandard(s);
    const policy = (name: string, action: string, extra = ''): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: ${action}
  rules: [{ to: [{ operation: { paths: ["/admin"] } }] }]${extra}
`;
    s.api.apply(objectOf(policy('no-admin', 'DENY')));
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    const status = async (p: string): Promise<number> => (await request(s.port, p)).status;
    expect(await status('/admin')).toBe(403);
    expect(await status('/')).toBe(200);

    // An edit the schema refuses: the DENY stays in force, the rest keeps following changes.
    s.api.apply(objectOf(policy('no-admin', 'DENNY')));
    s.api.apply(objectOf(routeYaml(2, 'b')));
    await follows(s.port, '2', 'a change beside the invalid policy');
    expect(await status('/admin')).toBe(403);

    // A policy that was never valid: everything in its scope is denied until it is fixed.
    s.api.apply(objectOf(policy('broken', 'ALOW')));
    await until(async () => (await status('/')) === 403, {
      what: 'the scope of the broken policy denied',
      timeoutMs: 15_000,
    });
    s.api.apply(objectOf(policy('broken', 'DENY').replace('/admin', '/other')));
    await until(async () => (await status('/')) === 200, { what: 'the fixed policy', timeoutMs: 15_000 });
    expect(await status('/other')).toBe(403);
    expect(await status('/admin')).toBe(403);
  });

  it('an unenforceable AuthorizationPolicy keeps its last good version in force (the rest applies); one never good denies its scope', async () => {
    const s = await setup();
    applyStandard(s);
    // A condition on Envoy filter metadata is valid Istio that sluice cannot enforce exactly.
    const unenforceable = `
      when: [{ key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: [x] }]`;
    const policy = (name: string, path: string, when = ''): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["${path}"] } }]${when}
`;
    s.api.apply(objectOf(policy('gate', '/admin')));
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    const status = async (p: string): Promise<number> => (await request(s.port, p)).status;
    expect(await status('/admin')).toBe(403);
    expect(await status('/ops')).toBe(200);
    const said = (code: string): string[] =>
      (running.loop.current()?.diagnostics ?? []).filter((d) => d.code === code).map((d) => d.message);

    // The edit cannot be enforced: the version judged good before stays, and a change beside it applies.
    s.api.apply(objectOf(policy('gate', '/ops', unenforceable)));
    s.api.apply(objectOf(routeYaml(2, 'b')));
    await follows(s.port, '2', 'a change beside the unenforceable policy');
    await until(() => said('SLUICE_KUBE_POLICY_KEPT').length === 1, {
      what: 'the kept warning',
      timeoutMs: 15_000,
    });
    expect(said('SLUICE_KUBE_POLICY_KEPT')[0]).toMatch(
      /^this version cannot be enforced exactly \(spec\.rules\[0\]\.when\[0\]\.key: .*Envoy filter metadata.*\); the last good one \(resourceVersion \d+\) stays in force$/,
    );
    expect(await status('/admin')).toBe(403);
    expect(await status('/ops')).toBe(200);

    // Never good: its scope is denied until it is fixed.
    s.api.apply(objectOf(policy('fresh', '/other', unenforceable)));
    await until(async () => (await status('/')) === 403, { what: 'the scope denied', timeoutMs: 15_000 });
    expect(said('SLUICE_KUBE_POLICY_DENY')).toHaveLength(1);
    s.api.apply(objectOf(policy('fresh', '/other')));
    await until(async () => (await status('/')) === 200, { what: 'the fixed policy', timeoutMs: 15_000 });
    expect(await status('/other')).toBe(403);
    // Fixing the first one serves its new version.
    s.api.apply(objectOf(policy('gate', '/ops')));
    await until(async () => (await status('/ops')) === 403, { what: 'the fixed edit', timeoutMs: 15_000 });
    expect(await status('/admin')).toBe(200);
  });

  it('routes to a Service through its EndpointSlices, following endpoint changes', async () => {
    const s = await setup();
    applyWebService(s);
    const slice = (port: number): KubeObj => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abcde', namespace: 'test', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
    s.api.apply(slice(s.a.port));
    s.api.apply(
      objectOf(routeYaml(1, 'a').replace('a.test.svc.cluster.local', 'web.test.svc.cluster.local')),
    );
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    expect(await genOf(s.port)).toBe('1');
    expect(s.a.seen.length).toBe(1);
    s.api.apply(slice(s.b.port));
    await until(async () => (await genOf(s.port)) === '1' && s.b.seen.length > 0, {
      what: 'traffic on the new endpoint',
      timeoutMs: 15_000,
    });
  });

  it('serves an Ingress from the API as one from a file (translated over the whole set), following its changes', async () => {
    const s = await setup();
    const ingressPort = await freePort();
    applyIngressBackends(s);
    s.api.apply(ingress('web'));
    const running = await serve(s, ['--ingress-http-port', String(ingressPort)]);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    const upstreamOf = async (): Promise<string> => {
      const res = await request(ingressPort, '/cart', { host: 'shop.example.com' });
      return res.status === 200 ? (JSON.parse(res.body) as { name: string }).name : `status ${res.status}`;
    };
    expect(await upstreamOf()).toBe('a');
    expect(s.a.seen.at(-1)?.url).toBe('/cart');
    s.api.apply(ingress('api'));
    await until(async () => (await upstreamOf()) === 'b', {
      what: 'the changed Ingress served',
      timeoutMs: 15_000,
    });
  });

  it("an Ingress's tls secretName is watched in the Ingress's namespace: HTTPS with that Secret, following its rotation", async () => {
    const s = await setup();
    const [httpPort, httpsPort] = [await freePort(), await freePort()];
    applyIngressBackends(s);
    const v1 = rsaLeaf(['shop.example.com'], { tag: 'ingress-v1' });
    applyAll(s.api, tlsSecretYaml('shop-tls', v1, { namespace: 'test' }));
    // Same name in the gateway's namespace, and another Secret beside it: neither is read.
    applyAll(s.api, tlsSecretYaml('shop-tls', rsaLeaf(['y.example.com'])));
    applyAll(s.api, tlsSecretYaml('other', rsaLeaf(['x.example.com']), { namespace: 'test' }));
    s.api.apply(ingress('web', [{ hosts: ['shop.example.com'], secretName: 'shop-tls' }]));
    const running = await serve(s, [
      '--ingress-http-port',
      String(httpPort),
      '--ingress-https-port',
      String(httpsPort),
    ]);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    await presents(httpsPort, v1.certPem, "the Ingress's certificate");
    // Plain HTTP to a tls host redirects (ingress-nginx's ssl-redirect), so the Ingress is served whole.
    expect((await request(httpPort, '/', { host: 'shop.example.com' })).status).toBe(308);

    const v2 = rsaLeaf(['shop.example.com'], { tag: 'ingress-v2' });
    applyAll(s.api, tlsSecretYaml('shop-tls', v2, { namespace: 'test' }));
    await presents(httpsPort, v2.certPem, 'the rotated certificate');
    expectSecretReads(s.api, '/api/v1/namespaces/test/secrets', ['metadata.name=shop-tls']);
  });

  it('DestinationRule subsets select Service endpoints by the labels of their Pods (watched only once a subset needs them)', async () => {
    const s = await setup();
    applyWebService(s);
    const pod = (name: string, version: string): KubeObj => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'test', labels: { app: 'web', version } },
      spec: { containers: [{ name: 'web', image: 'web' }] },
    });
    const slice = (name: string, podName: string, port: number): KubeObj => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: 'test', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: ['127.0.0.1'],
          conditions: { ready: true },
          targetRef: { kind: 'Pod', name: podName, namespace: 'test' },
        },
      ],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
    s.api.apply(pod('web-1', 'v1'));
    s.api.apply(pod('web-2', 'v2'));
    s.api.apply(slice('web-1', 'web-1', s.a.port));
    s.api.apply(slice('web-2', 'web-2', s.b.port));
    const route = (subset: string, gen: number): KubeObj =>
      objectOf(
        routeYaml(gen, 'a').replace(
          'destination: { host: a.test.svc.cluster.local, port: { number: 80 } }',
          `destination: { host: web.test.svc.cluster.local, port: { number: 80 }, subset: ${subset} }`,
        ),
      );
    s.api.apply(route('v2', 1));
    const running = await serve(s);
    await until(() => running.isReady(), { what: 'ready', timeoutMs: 15_000 });
    // No subset selects by labels yet: Pods are not watched.
    expect(s.api.requests.some((r) => r.path.endsWith('/pods'))).toBe(false);
    s.api.apply(
      objectOf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: test }
spec:
  host: web.test.svc.cluster.local
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`),
    );
    s.api.apply(route('v2', 2));
    await until(async () => (await genOf(s.port)) === '2', { what: 'the subset route', timeoutMs: 15_000 });
    const seenA = s.a.seen.length;
    for (let i = 0; i < 6; i++) expect(await genOf(s.port)).toBe('2');
    expect(s.a.seen.length).toBe(seenA);
    s.api.apply(route('v1', 3));
    await until(async () => (await genOf(s.port)) === '3', { what: 'the other subset', timeoutMs: 15_000 });
    const seenB = s.b.seen.length;
    for (let i = 0; i < 6; i++) expect(await genOf(s.port)).toBe('3');
    expect(s.b.seen.length).toBe(seenB);
    expect(s.api.requests.filter((r) => r.path.endsWith('/pods')).length).toBeGreaterThan(0);
  });

  it('--workers 2 with --config beside --kubernetes: files and API objects served as one set; SIGTERM exits 0', async () => {
    const s = await setup();
    // ServiceEntries from a file, the Gateway and VirtualService from the API.
    const config = await makeConfigDir({ 'upstreams.yaml': upstreamsYaml({ a: s.a.port, b: s.b.port }) });
    cleanups.push(() => config.remove());
    applyAll(s.api, gatewayYaml([s.port]));
    s.api.apply(objectOf(routeYaml(1, 'a')));
    const child = await startServeChild(config.dir, [
      '--kubernetes',
      '--kubeconfig',
      s.api.kubeconfig(s.dir),
      '--workers',
      '2',
      '--drain-delay',
      '0',
    ]);
    cleanups.push(() => child.proc.stop('SIGKILL'));
    await until(async () => (await child.readiness()) === 200, { what: 'ready', timeoutMs: 20_000 });
    expect(await genOf(s.port)).toBe('1');
    s.api.apply(objectOf(routeYaml(2, 'b')));
    await follows(s.port, '2', 'the change in both workers');
    for (let i = 0; i < 6; i++) expect(await genOf(s.port)).toBe('2');
    await child.proc.stop('SIGTERM');
    expect(await child.exited()).toEqual({ code: 0, signal: null });
  });

  it('credentials that cannot be loaded are a process fault: one line, exit 3', async () => {
    const r = await runSluice(['serve', ...kubeServeArgs('/nonexistent/kubeconfig')]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--kubernetes: cannot load \/nonexistent\/kubeconfig: .*\[SLUICE_KUBE_CONFIG\]/);
  });
});

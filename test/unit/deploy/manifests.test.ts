/**
 * deploy/: every kustomize overlay rendered by the machine's `kubectl kustomize` (kustomize v5),
 * and the objects it renders checked: kinds, probes, securityContext, Services, and RBAC verbs
 * against what the Kubernetes provider calls. deploy/Dockerfile is checked statically (no
 * container engine here): stages, pinned base, non-root user, production dependencies only,
 * entrypoint.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseOptions } from '../../../src/cli/flags.ts';
import { CONFIG_KINDS } from '../../../src/providers/kubernetes/kinds.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KUBE = `${ROOT}deploy/kubernetes/`;

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

function render(dir: string): Obj[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', `${KUBE}${dir}`], { encoding: 'utf8' });
  } catch (err) {
    throw new Error(
      `kubectl kustomize ${dir} failed (needs kubectl with kustomize v5: https://kubernetes.io/docs/tasks/tools/): ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseAllDocuments(out).map((d) => d.toJSON() as Obj);
}

const one = (objs: Obj[], kind: string, name?: string): Obj => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!;
};

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
}

interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    serviceAccountName?: string;
    automountServiceAccountToken?: boolean;
    terminationGracePeriodSeconds?: number;
    securityContext?: Record<string, unknown>;
    containers: Container[];
  };
}

const template = (d: Obj): PodTemplate => (d.spec as { template: PodTemplate }).template;
const sluiceContainer = (d: Obj): Container => template(d).spec.containers.find((c) => c.name === 'sluice')!;
const env = (c: Container, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;
const seconds = (v: string | undefined): number => Number((v ?? '0').replace(/s$/, ''));

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
const rules = (objs: Obj[]): (Rule & { from: string })[] =>
  objs
    .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
    .flatMap((o) => (o.rules as Rule[]).map((r) => ({ ...r, from: `${o.kind}/${o.metadata.name}` })));

/** Every (group, resource) a rule grants `verb` on. */
const granted = (objs: Obj[], verb: string): Set<string> =>
  new Set(
    rules(objs)
      .filter((r) => r.verbs.includes(verb))
      .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`))),
  );

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** What the hardened sluice Deployment must be, whatever the overlay. */
function checkDeployment(d: Obj, labels: string): void {
  expect((d.spec as { replicas: number }).replicas).toBe(2);
  const t = template(d);
  const c = sluiceContainer(d);
  expect(t.spec.securityContext).toMatchObject({
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(t.spec.securityContext?.runAsUser).not.toBe(0);
  expect(c.securityContext).toEqual({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  const status = c.ports?.find((p) => p.name === 'status')?.containerPort;
  expect(status).toBe(15021);
  expect(c.readinessProbe?.httpGet).toEqual({ path: '/healthz/ready', port: 'status' });
  expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz/live', port: 'status' });
  expect(t.metadata.annotations).toMatchObject({
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '15090',
    'prometheus.io/path': '/stats/prometheus',
  });
  expect(c.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(15090);
  const drain = seconds(env(c, 'SLUICE_DRAIN_DELAY')) + seconds(env(c, 'SLUICE_DRAIN_TIMEOUT'));
  expect(drain).toBeGreaterThan(0);
  expect(t.spec.terminationGracePeriodSeconds).toBeGreaterThan(drain);
  // --labels is what Gateway selectors match: the pod must carry them.
  expect(env(c, 'SLUICE_LABELS')).toBe(labels);
  const [k, v] = labels.split('=') as [string, string];
  expect(t.metadata.labels[k]).toBe(v);
}

/** Namespaced objects in istio-system; every Service and PDB selects exactly one Deployment's pods. */
function checkServicesSelectPods(objs: Obj[]): void {
  for (const o of objs)
    if (!['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind))
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('istio-system');
  const pods = objs.filter((o) => o.kind === 'Deployment').map((d) => template(d).metadata.labels);
  for (const s of objs.filter((o) => o.kind === 'Service')) {
    const selector = (s.spec as { selector: Record<string, string> }).selector;
    expect(
      pods.filter((l) => matches(selector, l)),
      `Service ${s.metadata.name}`,
    ).toHaveLength(1);
  }
  for (const p of objs.filter((o) => o.kind === 'PodDisruptionBudget')) {
    const selector = (p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    expect(
      pods.filter((l) => matches(selector, l)),
      `PDB ${p.metadata.name}`,
    ).toHaveLength(1);
  }
  for (const d of objs.filter((o) => o.kind === 'Deployment' && template(o).spec.serviceAccountName))
    one(objs, 'ServiceAccount', template(d).spec.serviceAccountName);
}

/** What the provider lists and watches (src/providers/kubernetes/kinds.ts and index.ts). */
const WATCHED = [
  ...CONFIG_KINDS.map((k) => `${k.group}/${k.plural}`),
  '/pods', // while a DestinationRule subset selects by labels
  '/secrets', // by name, in the gateway's namespace (Role)
  '/configmaps', // `istio`, in the root namespace (Role)
];
const ISTIO_STATUS = CONFIG_KINDS.filter((k) => k.group.endsWith('.istio.io')).map(
  (k) => `${k.group}/${k.plural}/status`,
);

describe('deploy/kubernetes', () => {
  it('overlays/ingress: the hardened Deployment, NodePort 30080/30443 and LoadBalancer, PDB, HPA, CRDs', () => {
    const objs = render('overlays/ingress');
    expect(new Set(objs.map((o) => o.kind))).toEqual(
      new Set([
        'CustomResourceDefinition',
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'Deployment',
        'Service',
        'PodDisruptionBudget',
        'HorizontalPodAutoscaler',
      ]),
    );
    const d = one(objs, 'Deployment', 'sluice');
    checkDeployment(d, 'istio=ingressgateway');
    expect(sluiceContainer(d).args).toEqual(['serve', '--kubernetes']);
    const nodePort = one(objs, 'Service', 'sluice-nodeport').spec as {
      type: string;
      ports: { nodePort: number; targetPort: string }[];
    };
    expect(nodePort.type).toBe('NodePort');
    expect(nodePort.ports.map((p) => [p.nodePort, p.targetPort])).toEqual([
      [30080, 'http'],
      [30443, 'https'],
    ]);
    expect((one(objs, 'Service', 'sluice').spec as { type: string }).type).toBe('LoadBalancer');
    const ports = sluiceContainer(d).ports!.map((p) => [p.name, p.containerPort]);
    expect(ports).toEqual(
      expect.arrayContaining([
        ['http', 8080],
        ['https', 8443],
      ]),
    );
    expect(one(objs, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 });
    expect(one(objs, 'HorizontalPodAutoscaler').spec).toMatchObject({
      scaleTargetRef: { kind: 'Deployment', name: 'sluice' },
      metrics: [{ type: 'Resource', resource: { name: 'cpu' } }],
    });
    expect(
      objs
        .filter((o) => o.kind === 'CustomResourceDefinition')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['meshconfigs.sluice.dev', 'ratelimitpolicies.sluice.dev']);
    checkServicesSelectPods(objs);
  });

  it('RBAC is read-only and exactly what the provider lists and watches; writes only with overlays/write-status', () => {
    const objs = render('overlays/ingress');
    for (const r of rules(objs)) expect(r.verbs.sort(), r.from).toEqual(['list', 'watch']);
    expect([...granted(objs, 'watch')].sort()).toEqual([...WATCHED].sort());
    // Secrets and the mesh ConfigMap: only in the gateway's namespace, never cluster-wide.
    const clusterWide = rules(objs.filter((o) => o.kind === 'ClusterRole')).flatMap((r) => r.resources);
    expect(clusterWide).not.toContain('secrets');
    expect(clusterWide).not.toContain('configmaps');

    const writing = render('overlays/write-status');
    const d = one(writing, 'Deployment', 'sluice');
    expect(env(sluiceContainer(d), 'SLUICE_WRITE_STATUS')).toBe('true');
    // status.ts: PATCH <plural>/status, POST events; leader.ts: GET, POST, PUT the Lease.
    // status.ts and ingress-status.ts: server-side apply (PATCH) of Istio kinds' and Ingresses' status.
    expect([...granted(writing, 'patch')].sort()).toEqual(
      [...ISTIO_STATUS, 'networking.k8s.io/ingresses/status'].sort(),
    );
    // --publish-service names the overlay's LoadBalancer Service, which the provider may watch.
    const published = parseOptions('serve', ['--kubernetes'], {
      SLUICE_PUBLISH_SERVICE: env(sluiceContainer(d), 'SLUICE_PUBLISH_SERVICE'),
      SLUICE_WRITE_STATUS: 'true',
    }).publishService;
    expect(published).toEqual({ namespace: 'istio-system', name: 'sluice' });
    expect((one(writing, 'Service', published!.name).spec as { type: string }).type).toBe('LoadBalancer');
    expect(granted(writing, 'watch')).toContain('/services');
    expect([...granted(writing, 'create')].sort()).toEqual(['/events', 'coordination.k8s.io/leases']);
    expect([...granted(writing, 'update')]).toEqual(['coordination.k8s.io/leases']);
    expect([...granted(writing, 'get')]).toEqual(['coordination.k8s.io/leases']);
    for (const verb of ['delete', 'deletecollection', '*']) expect(granted(writing, verb).size).toBe(0);
    const leaseRole = one(writing, 'Role', 'sluice-leader');
    expect(leaseRole.metadata.namespace).toBe('istio-system');
    checkServicesSelectPods(writing);
  });

  it('overlays/egress: its own labels, names, RBAC and a ClusterIP Service', () => {
    const objs = render('overlays/egress');
    const d = one(objs, 'Deployment', 'sluice-egress');
    checkDeployment(d, 'istio=egressgateway');
    const svc = one(objs, 'Service', 'sluice-egress').spec as {
      type: string;
      ports: { name: string; port: number; targetPort: string }[];
    };
    expect(svc.type).toBe('ClusterIP');
    // The forward proxy: the port sluice is told to open (as serve parses it), the container's, the Service's.
    const c = sluiceContainer(d);
    const proxyPort = parseOptions('serve', ['--kubernetes'], {
      SLUICE_EGRESS_PROXY_PORT: env(c, 'SLUICE_EGRESS_PROXY_PORT'),
    }).egressProxyPort;
    expect(proxyPort).toBe(3128);
    expect(c.ports?.find((p) => p.name === 'proxy')?.containerPort).toBe(proxyPort);
    expect(svc.ports.find((p) => p.targetPort === 'proxy')?.port).toBe(proxyPort);
    expect(
      objs.filter((o) => o.kind.startsWith('ClusterRole')).every((o) => o.metadata.name.endsWith('-egress')),
    ).toBe(true);
    checkServicesSelectPods(objs);
  });

  it('overlays/redis: a non-root Redis and the MeshConfig that points at it', () => {
    const objs = render('overlays/redis');
    checkDeployment(one(objs, 'Deployment', 'sluice'), 'istio=ingressgateway');
    const redis = one(objs, 'Deployment', 'sluice-redis');
    expect(template(redis).spec.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(template(redis).spec.containers[0]!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    const mesh = one(objs, 'MeshConfig');
    const svc = one(objs, 'Service', 'sluice-redis');
    expect((mesh.spec as { redis: { url: string } }).redis.url).toBe(
      `redis://${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:6379`,
    );
    checkServicesSelectPods(objs);
  });

  it('overlays/files: reads a ConfigMap, without --kubernetes and without API access', () => {
    const objs = render('overlays/files');
    const d = one(objs, 'Deployment', 'sluice');
    checkDeployment(d, 'istio=ingressgateway');
    expect(sluiceContainer(d).args).toEqual(['serve', '--config', '/etc/sluice/config']);
    expect(template(d).spec.automountServiceAccountToken).toBe(false);
    expect(rules(objs)).toEqual([]);
    const config = one(objs, 'ConfigMap', 'sluice-config');
    expect(Object.keys(config.data as object)).toContain('gateway.yaml');
  });

  it('istio-crds: the six Istio kinds in every version sluice reads, one storage version each', () => {
    const objs = render('istio-crds');
    const istio = CONFIG_KINDS.filter((k) => k.group.endsWith('.istio.io'));
    expect(objs.map((o) => o.metadata.name).sort()).toEqual(
      istio.map((k) => `${k.plural}.${k.group}`).sort(),
    );
    for (const k of istio) {
      const crd = one(objs, 'CustomResourceDefinition', `${k.plural}.${k.group}`);
      const versions = (crd.spec as { versions: { name: string; served: boolean; storage: boolean }[] })
        .versions;
      expect(versions.filter((v) => v.storage)).toHaveLength(1);
      expect(versions.map((v) => v.name).sort()).toEqual([...k.versions].sort());
    }
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(`${ROOT}deploy/Dockerfile`, 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));
  const finalStage = lines.slice(lines.lastIndexOf(froms.at(-1)!));

  it('is multi-stage on a node:26 slim base pinned by its full tag (the Node version development pins)', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const pinned = JSON.parse(readFileSync(`${ROOT}node_modules/node/package.json`, 'utf8')) as {
      version: string;
    };
    for (const f of froms)
      expect(f).toMatch(new RegExp(`^FROM node:${pinned.version.replace(/\./g, '\\.')}-[a-z]+-slim\\b`));
  });

  it('ships compiled JavaScript and production dependencies only, as a non-root user, with the sluice entrypoint', () => {
    // The final stage copies only the packed package from the build stage: no sources, no dev deps.
    const copies = finalStage.filter((l) => l.startsWith('COPY'));
    expect(copies).toEqual(['COPY --from=pack /tmp/sluice-*.tgz /tmp/']);
    expect(finalStage.join('\n')).toMatch(/npm install --global --omit=dev/);
    expect(finalStage.join('\n')).not.toMatch(/npm ci|npm run build|tsc/);
    const user = finalStage.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(finalStage).toContain('ENTRYPOINT ["sluice"]');
    // The packed package is what `npm pack` includes: the compiled dist/, not src/.
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
      files: string[];
      bin: Record<string, string>;
    };
    expect(pkg.files).toContain('dist/');
    expect(pkg.files).not.toContain('src/');
    for (const dir of pkg.files.filter((f) => f !== 'dist/'))
      expect(
        lines.some((l) => l.startsWith(`COPY ${dir.replace(/\/$/, '')} `)),
        dir,
      ).toBe(true);
  });
});

/**
 * Config watched from the Kubernetes API (`serve --kubernetes`). One informer per kind and
 * watched namespace (all namespaces when none is given), at the version discovery picked; Secrets
 * only by the names Gateways and DestinationRules reference (`credentialName`, and their
 * `-cacert` companions) in the gateway's namespace and the ones served Ingresses name (tls
 * secretName, auth-secret) in theirs, each a watch with a `metadata.name` field selector, so no
 * other Secret is ever listed or read (one RBAC refuses is left out and reported, never waited
 * for); Istio's `istio` ConfigMap (root namespace, key `mesh`) as a MeshConfig; Pods (for their
 * labels) only while a DestinationRule subset selects by labels. A read is the whole picture the
 * caches hold; until every informer has listed once it is `incomplete` (the reload loop does not judge
 * it, so no half-synced state is ever compiled), and after that the caches are authoritative: an
 * outage leaves them as they were last seen, so the last snapshot keeps serving.
 */
import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { GatewaySpec, DestinationRuleSpec, TrafficPolicy } from '../../model/networking.ts';
import { subjectOfResource, type Resource } from '../../model/resource.ts';
import { ingressesOfClass, ingressSecretRefs } from '../../config/ingress/index.ts';
import type { Provider, ProviderHealth, ProviderUpdate } from '../provider.ts';
import { createKubeClient, type KubeClient } from './client.ts';
import { startInformer, type Backoff, type Informer } from './informer.ts';
import {
  apiVersionOf,
  collectionPath,
  CONFIG_KINDS,
  CONFIGMAP_KIND,
  discoverVersions,
  POD_KIND,
  SECRET_KIND,
  SERVICE_KIND,
  type Served,
  type WatchedKind,
} from './kinds.ts';
import {
  createIngressStatusWriter,
  entryOf,
  serviceAddresses,
  type IngressStatusWriter,
  type PublishedIngress,
  type PublishOptions,
} from './ingress-status.ts';
import { startLeaderElection, type LeaderElection, type LeaderTiming } from './leader.ts';
import { createObjectLoader, isIstioMesh } from './objects.ts';
import { createStatusWriter, type ReportedObject, type StatusWriter } from './status.ts';

export interface KubernetesProviderOptions {
  /** --kubeconfig; null: KUBECONFIG, ~/.kube/config, else in-cluster. */
  readonly kubeconfig: string | null;
  /** --watch-namespace; empty: every namespace. */
  readonly namespaces: readonly string[];
  /** --namespace: where credentialName Secrets live (GW-15). */
  readonly gatewayNamespace: string;
  /** --root-namespace: the namespace of objects without one (cluster-scoped kinds). */
  readonly rootNamespace: string;
  /** --ingress-class: the Ingresses whose tls and auth Secrets are watched (default `sluice`). */
  readonly ingressClass?: string;
  readonly backoff?: Backoff;
  /** How often discovery runs again for kinds not served before (default 60 s). */
  readonly rediscoverMs?: number;
  /**
   * --write-status: Events, Istio kinds' status and served Ingresses' status.loadBalancer, written
   * by the Lease holder.
   */
  readonly writeStatus?: {
    /** The Lease (in gatewayNamespace) replicas of this gateway share. */
    readonly leaseName: string;
    /** This replica (the pod name, with something unique). */
    readonly identity: string;
    readonly timing?: LeaderTiming;
    /** --publish-status-address / --publish-service: the address written to served Ingresses. */
    readonly publish?: PublishOptions;
  };
}

/** Istio keeps its meshConfig in this ConfigMap of the root namespace, key `mesh`. */
const ISTIO_CONFIGMAP = 'istio';

/** A few seconds at most between tries, so a recovered API server is seen soon. */
const DEFAULT_BACKOFF: Backoff = { initialMs: 200, maxMs: 3000 };

interface Watching {
  readonly kind: WatchedKind;
  readonly apiVersion: string;
  readonly informer: Informer;
  /** Its key in `failing`. */
  readonly key: string;
}

/**
 * The Secrets a set references, as `namespace/name` → the resources that name them:
 * credentialName(s) of Gateway servers and DestinationRule tls (with their `-cacert` companions)
 * in the gateway's namespace (GW-15), and what the Ingresses of the served class name (tls
 * secretName, auth-secret) in their own.
 */
export function referencedSecrets(
  resources: readonly Resource[],
  gatewayNamespace: string,
  ingressClass: string,
): Map<string, Resource[]> {
  const refs = ingressSecretRefs({ resources }, ingressClass);
  const add = (by: Resource, name: string | undefined): void => {
    if (name === undefined || name === '') return;
    for (const ref of [`${gatewayNamespace}/${name}`, `${gatewayNamespace}/${name}-cacert`]) {
      const list = refs.get(ref);
      if (list === undefined) refs.set(ref, [by]);
      else if (!list.includes(by)) list.push(by);
    }
  };
  const fromPolicy = (by: Resource, tp: TrafficPolicy | undefined): void => {
    add(by, tp?.tls?.credentialName);
    for (const pl of tp?.portLevelSettings ?? []) add(by, pl.tls?.credentialName);
  };
  for (const r of resources) {
    if (r.kind === 'Gateway')
      for (const s of (r.spec as GatewaySpec).servers) {
        add(r, s.tls?.credentialName);
        for (const n of s.tls?.credentialNames ?? []) add(r, n);
      }
    else if (r.kind === 'DestinationRule') {
      const spec = r.spec as DestinationRuleSpec;
      fromPolicy(r, spec.trafficPolicy);
      for (const s of spec.subsets ?? []) fromPolicy(r, s.trafficPolicy);
    }
  }
  return refs;
}

/** The DestinationRules with a subset that selects endpoints by labels (pod labels, for a Service). */
export function podSelectingRules(resources: readonly Resource[]): Resource[] {
  return resources.filter(
    (r) =>
      r.kind === 'DestinationRule' &&
      ((r.spec as DestinationRuleSpec).subsets ?? []).some((s) => Object.keys(s.labels ?? {}).length > 0),
  );
}

const KIND_ORDER = new Map([...CONFIG_KINDS, SECRET_KIND, POD_KIND].map((k, i) => [k.kind, i]));

function byKindNamespaceName(a: Resource, b: Resource): number {
  return (
    Number(isIstioMesh(a)) - Number(isIstioMesh(b)) ||
    (KIND_ORDER.get(a.kind) ?? 99) - (KIND_ORDER.get(b.kind) ?? 99) ||
    (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
}

export function createKubernetesProvider(opts: KubernetesProviderOptions): Provider {
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  const rediscoverMs = opts.rediscoverMs ?? 60_000;
  const namespaces: (string | null)[] = opts.namespaces.length > 0 ? [...new Set(opts.namespaces)] : [null];
  const loader = createObjectLoader({ rootNamespace: opts.rootNamespace });
  let client: KubeClient | null = null;
  let changed: (() => void) | null = null;
  let healthListener: ((h: ProviderHealth) => void) | null = null;
  let stopped = false;
  let discovered: Map<WatchedKind, Served> | null = null;
  let discoveryTimer: NodeJS.Timeout | null = null;
  const watching: Watching[] = [];
  /** `namespace/name` of a referenced Secret → its watch. */
  const secrets = new Map<string, Watching>();
  /** Pod watches (one per watched namespace), while subsets need pod labels. */
  const pods: Watching[] = [];
  const failing = new Map<string, Error>();
  let failures = 0;
  let leader: LeaderElection | null = null;
  let lastJudged: readonly Diagnostic[] | null = null;
  let statusFailures = 0;
  let lastStatusError: string | null = null;
  let writer: StatusWriter | null = null;
  let ingressWriter: IngressStatusWriter | null = null;
  /** The --publish-service Service, watched by name (status only: readiness never waits for it). */
  let publishWatch: Informer | null = null;
  /** The served Ingresses from the API in the last whole read. */
  let servedIngresses: PublishedIngress[] = [];

  let reported = '';
  /** Tells the listener when something it shows changed. */
  const report = (): void => {
    const first = failing.values().next();
    const health: ProviderHealth = {
      source: 'kubernetes',
      connected: failing.size === 0 && discovered !== null,
      synced: allSynced(),
      failures,
      forbidden: [...secrets.values(), ...pods].filter((w) => w.informer.forbidden() !== null).length,
      ...(first.done ? {} : { error: first.value.message }),
      ...(opts.writeStatus !== undefined ? { statusWriteFailures: statusFailures } : {}),
      ...(lastStatusError !== null ? { statusError: lastStatusError } : {}),
    };
    const text = JSON.stringify(health);
    if (text === reported) return;
    reported = text;
    healthListener?.(health);
  };

  const informerHealth = (path: string) => (err: Error | null) => {
    if (err === null) failing.delete(path);
    else {
      failing.set(path, err);
      failures++;
    }
    report();
  };

  /** A Secret or Pod watch refused by RBAC counts as listed (empty), so it never blocks the rest. */
  const listedOrRefused = (w: Watching): boolean => w.informer.synced() || w.informer.forbidden() !== null;
  const allSynced = (): boolean =>
    discovered !== null &&
    watching.every((w) => w.informer.synced()) &&
    pods.every(listedOrRefused) &&
    [...secrets.values()].every(listedOrRefused);

  const onChange = (): void => {
    changed?.();
  };

  const watch = (
    kind: WatchedKind,
    version: string,
    namespace: string | null,
    fieldSelector?: string,
  ): Watching => {
    const path = collectionPath(kind, version, namespace);
    const key = fieldSelector === undefined ? path : `${path}?${fieldSelector}`;
    const informer = startInformer(client!, {
      path,
      ...(fieldSelector !== undefined ? { fieldSelector } : {}),
      changed: () => {
        report();
        onChange();
      },
      health: (err) => {
        if (err === null || informer.forbidden() === null) {
          informerHealth(key)(err);
          return;
        }
        // Refused by RBAC: not an outage (the `forbidden` count says it), and the picture no
        // longer waits for it (allSynced), so read it again.
        failures++;
        report();
        onChange();
      },
      backoff,
    });
    return { kind, apiVersion: apiVersionOf(kind, version), informer, key };
  };

  /** A watch no longer wanted: its failures no longer count against the source's health. */
  const unwatch = (w: Watching): void => {
    void w.informer.stop();
    if (failing.delete(w.key)) report();
  };

  /**
   * Discovery, retried with capped back-off until the API server answers; then again every
   * `rediscoverMs`, so a CRD installed later (Istio after sluice) is watched from then on. A kind
   * keeps the version it was first watched at.
   */
  const discover = async (delayMs: number): Promise<void> => {
    if (stopped || client === null) return;
    try {
      const found = await discoverVersions(client, CONFIG_KINDS);
      if (stopped) return;
      const first = discovered === null;
      const before = discovered ?? new Map<WatchedKind, Served>();
      const next = new Map(found);
      let added = false;
      for (const [kind, served] of found) {
        const had = before.get(kind);
        if (had !== undefined && 'version' in had) {
          next.set(kind, had);
          continue;
        }
        if (!('version' in served)) continue;
        for (const ns of kind.namespaced ? namespaces : [null])
          watching.push(watch(kind, served.version, ns));
        added = true;
      }
      // Istio's mesh settings: one ConfigMap, watched by name.
      if (first)
        watching.push(watch(CONFIGMAP_KIND, 'v1', opts.rootNamespace, `metadata.name=${ISTIO_CONFIGMAP}`));
      discovered = next;
      failing.delete('discovery');
      report();
      if (first || added) onChange();
      discoveryTimer = setTimeout(() => void discover(backoff.initialMs), rediscoverMs);
    } catch (err) {
      if (stopped) return;
      if (discovered !== null) {
        // The watches carry on with what was found; try again at the usual interval.
        discoveryTimer = setTimeout(() => void discover(backoff.initialMs), rediscoverMs);
        return;
      }
      if (!failing.has('discovery')) failures++;
      failing.set('discovery', err instanceof Error ? err : new Error(String(err)));
      report();
      discoveryTimer = setTimeout(() => void discover(Math.min(delayMs * 2, backoff.maxMs)), delayMs);
    }
  };

  /** Watches exactly the referenced Secrets: new ones start a watch, ones no longer used stop theirs. */
  const aimSecrets = (refs: readonly string[]): void => {
    const wanted = new Set(refs);
    for (const [ref, w] of secrets)
      if (!wanted.has(ref)) {
        secrets.delete(ref);
        unwatch(w);
      }
    for (const ref of refs) {
      if (secrets.has(ref)) continue;
      const slash = ref.indexOf('/');
      const ns = ref.slice(0, slash);
      secrets.set(ref, watch(SECRET_KIND, 'v1', ns, `metadata.name=${ref.slice(slash + 1)}`));
    }
  };

  /** What the watch caches hold for an origin, for Events and status. */
  const cachedObject = (o: Extract<Resource['origin'], { kind: 'kube' }>): ReportedObject | undefined => {
    const w = [...watching, ...pods, ...secrets.values()].find((x) => x.kind.plural === o.resource);
    const obj = w?.informer.get(o.namespace, o.name);
    if (w === undefined || obj === undefined || obj.metadata.uid === undefined) return undefined;
    const generation = obj.metadata.generation;
    return {
      apiVersion: w.apiVersion,
      kind: w.kind.kind,
      uid: obj.metadata.uid,
      ...(typeof generation === 'number' ? { generation } : {}),
    };
  };

  /** Pods are watched while some DestinationRule subset selects by labels, and only then. */
  const aimPods = (needed: boolean): void => {
    if (needed && pods.length === 0) for (const ns of namespaces) pods.push(watch(POD_KIND, 'v1', ns));
    if (!needed && pods.length > 0) for (const w of pods.splice(0)) unwatch(w);
  };

  const collect = (w: Watching, resources: Resource[], diagnostics: Diagnostic[]): void => {
    for (const obj of w.informer.objects()) {
      const loaded = loader.load(obj, w.apiVersion, w.kind.kind, w.kind.plural);
      diagnostics.push(...loaded.diagnostics);
      if (loaded.resource !== undefined) resources.push(loaded.resource);
    }
  };

  /**
   * A Secret or Pod watch that cannot list (RBAC refuses it) does not hold the rest back: what it
   * would have read is left out, and each resource that needed it says so.
   */
  const collectOrReport = (
    w: Watching,
    what: string,
    users: readonly Resource[],
    resources: Resource[],
    diagnostics: Diagnostic[],
  ): void => {
    const refused = w.informer.forbidden();
    if (refused === null) {
      collect(w, resources, diagnostics);
      return;
    }
    for (const r of users)
      diagnostics.push({
        level: 'warning',
        code: 'SLUICE_KUBE_WATCH_FORBIDDEN',
        subject: subjectOfResource(r),
        message: `${what} cannot be read (${refused.message}); it is left out (grant list and watch on ${w.kind.plural} to sluice's service account) and retried`,
      });
  };

  /** Served Ingresses get the published address (--write-status, by the Lease holder). */
  const publishIngresses = async (): Promise<void> => {
    const publish = opts.writeStatus?.publish;
    if (ingressWriter === null || publish === undefined) return;
    const svc = publish.service;
    const addresses =
      publish.addresses !== undefined && publish.addresses.length > 0
        ? publish.addresses.map(entryOf)
        : svc !== undefined && publishWatch !== null && publishWatch.synced()
          ? serviceAddresses(publishWatch.get(svc.namespace, svc.name))
          : null;
    // The Service not listed yet: nothing is known, so nothing is written (not an empty address).
    if (addresses === null) return;
    await ingressWriter.publish(servedIngresses, addresses);
  };

  return {
    async start(onChanged) {
      changed = onChanged;
      client = await createKubeClient(opts.kubeconfig);
      void discover(backoff.initialMs);
      const ws = opts.writeStatus;
      if (ws !== undefined) {
        const election = startLeaderElection(client, {
          namespace: opts.gatewayNamespace,
          name: ws.leaseName,
          identity: ws.identity,
          ...(ws.timing !== undefined ? { timing: ws.timing } : {}),
          // A new leader writes what the last judged set says.
          onChange: (lead) => {
            if (lead && lastJudged !== null) void writer?.report(lastJudged, cachedObject);
            if (lead) void publishIngresses();
          },
        });
        leader = election;
        const warn = (message: string): void => {
          statusFailures++;
          lastStatusError = message;
          report();
        };
        ingressWriter = createIngressStatusWriter(client, { isLeader: () => election.isLeader(), warn });
        const svc = ws.publish?.service;
        if (svc !== undefined && !(ws.publish?.addresses?.length ?? 0))
          publishWatch = startInformer(client, {
            path: collectionPath(SERVICE_KIND, 'v1', svc.namespace),
            fieldSelector: `metadata.name=${svc.name}`,
            changed: () => void publishIngresses(),
            health: (err) => {
              if (err !== null) warn(`--publish-service ${svc.namespace}/${svc.name}: ${err.message}`);
            },
            backoff,
          });
        writer = createStatusWriter(client, {
          isLeader: () => election.isLeader(),
          instance: ws.identity,
          warn,
        });
      }
    },
    async report(diagnostics) {
      lastJudged = diagnostics;
      // A policy the compile cannot enforce refused this set: the next read stands in for it.
      if (loader.judged(diagnostics)) onChange();
      await Promise.all([writer?.report(diagnostics, cachedObject), publishIngresses()]);
    },
    onHealth(listener) {
      healthListener = listener;
    },
    read(): Promise<ProviderUpdate> {
      if (!allSynced())
        return Promise.resolve({
          resources: { resources: [] },
          diagnostics: [],
          incomplete:
            discovered === null
              ? `waiting for the Kubernetes API server${client !== null ? ` at ${client.server}` : ''}`
              : 'waiting for every Kubernetes watch to list once',
          authoritative: true,
        });
      const resources: Resource[] = [];
      const diagnostics: Diagnostic[] = [];
      for (const [kind, served] of discovered!)
        if ('skipped' in served)
          diagnostics.push({
            level: 'warning',
            code: 'SLUICE_KUBE_KIND_NOT_SERVED',
            message: `${kind.kind} is not watched: ${served.skipped}`,
          });
      for (const w of watching) collect(w, resources, diagnostics);
      const secretUsers = referencedSecrets(resources, opts.gatewayNamespace, opts.ingressClass ?? 'sluice');
      const podUsers = podSelectingRules(resources);
      aimSecrets([...secretUsers.keys()]);
      aimPods(podUsers.length > 0);
      // A Secret or Pod watch just started has not listed yet: this picture waits for it.
      if (!allSynced()) {
        loader.sweep();
        return Promise.resolve({
          resources: { resources: [] },
          diagnostics: [],
          incomplete: 'waiting for the referenced Secrets and the Pods subsets select to list once',
          authoritative: true,
        });
      }
      for (const [ref, w] of secrets)
        collectOrReport(w, `Secret ${ref}`, secretUsers.get(ref) ?? [], resources, diagnostics);
      for (const w of pods)
        collectOrReport(
          w,
          `Pods${w.key.includes('/namespaces/') ? ` in ${w.key.split('/')[4]}` : ''}`,
          podUsers,
          resources,
          diagnostics,
        );
      loader.sweep();
      const ingressWatch = watching.find((w) => w.kind.kind === 'Ingress');
      servedIngresses =
        ingressWatch === undefined
          ? []
          : ingressesOfClass({ resources }, opts.ingressClass ?? 'sluice')
              .filter((r) => r.origin.kind === 'kube')
              .map((r) => ({ namespace: r.namespace, name: r.name, apiVersion: ingressWatch.apiVersion }));
      resources.sort(byKindNamespaceName);
      return Promise.resolve({ resources: { resources }, diagnostics, authoritative: true });
    },
    async stop() {
      stopped = true;
      changed = null;
      if (discoveryTimer !== null) clearTimeout(discoveryTimer);
      await leader?.stop();
      await publishWatch?.stop();
      await Promise.all([...watching, ...pods, ...secrets.values()].map((w) => w.informer.stop()));
      watching.length = 0;
      pods.length = 0;
      secrets.clear();
    },
  };
}

/**
 * A Kubernetes API server on loopback, faithful in what a list + watch client depends on:
 * - discovery: `/api`, `/apis` (groups, versions, preferred version), `/api/v1` and
 *   `/apis/<group>/<version>` resource lists; a kind can be served in several versions (one object
 *   store, as a CRD's versions are) or not at all (CRD not installed: 404s, absent from discovery);
 * - lists with `limit`/`continue` pages read from one snapshot, `metadata.resourceVersion`, field
 *   selectors `metadata.name=` / `metadata.namespace=` (and `!=`), list items without kind;
 * - watches (`?watch=true&resourceVersion=N`): a chunked stream of JSON lines, ADDED / MODIFIED /
 *   DELETED from history after N, then live; BOOKMARK events when asked (allowWatchBookmarks);
 *   a resourceVersion older than the compacted history is answered as kube-apiserver does, with
 *   200 and an ERROR event carrying a 410 Status (or, `goneAs: 'http'`, a 410 response);
 *   `timeoutSeconds` ends the stream;
 * - writes: POST create, PUT replace, PATCH (merge patch, apply patch) of an object or its
 *   `status`, DELETE; each bumps the one resourceVersion counter, and `metadata.generation` only
 *   when more than metadata and status changed; server-side apply of `status`
 *   (`application/apply-patch+yaml`, `fieldManager`, `force`) with field ownership per manager
 *   (test/support/fake-kube-apply.ts), listed in `metadata.managedFields`;
 * - RBAC refusals: `forbid(plural, namespace)` answers that collection's lists and watches with 403
 *   Forbidden (as a missing Role does) until `allow`;
 * - faults: `dropWatches()` cuts every watch stream, `down()` refuses and cuts every connection
 *   until `up()`, `latencyMs` slows every answer.
 * Every request is recorded (`requests`) so a test can say what was, and was not, asked for.
 * HTTPS with a certificate from the test CA (the kubeconfig carries the CA, as a real one does);
 * bearer token auth: anything but the kubeconfig's token is 401.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { rsaLeaf, testCa } from './certs.ts';
import { serverSideApply, type Managed } from './fake-kube-apply.ts';

export interface ServedKind {
  readonly group: string;
  /** Served versions, preferred first. */
  readonly versions: readonly string[];
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

export interface KubeObj {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly contentType?: string;
}

const TOKEN = 'sluice-test-token';

const istio = (kind: string, plural: string, group = 'networking.istio.io'): ServedKind => ({
  group,
  versions: group === 'security.istio.io' ? ['v1', 'v1beta1'] : ['v1', 'v1beta1', 'v1alpha3'],
  kind,
  plural,
  namespaced: true,
});

/** What a cluster with Istio's CRDs and sluice's installed serves. */
export const ISTIO_CLUSTER: readonly ServedKind[] = [
  istio('Gateway', 'gateways'),
  istio('VirtualService', 'virtualservices'),
  istio('DestinationRule', 'destinationrules'),
  istio('ServiceEntry', 'serviceentries'),
  istio('RequestAuthentication', 'requestauthentications', 'security.istio.io'),
  istio('AuthorizationPolicy', 'authorizationpolicies', 'security.istio.io'),
  {
    group: 'sluice.dev',
    versions: ['v1alpha1'],
    kind: 'MeshConfig',
    plural: 'meshconfigs',
    namespaced: true,
  },
  {
    group: 'sluice.dev',
    versions: ['v1alpha1'],
    kind: 'RateLimitPolicy',
    plural: 'ratelimitpolicies',
    namespaced: true,
  },
  ...CORE(),
];

/** Kinds every cluster serves. */
export function CORE(): ServedKind[] {
  return [
    { group: '', versions: ['v1'], kind: 'Secret', plural: 'secrets', namespaced: true },
    { group: '', versions: ['v1'], kind: 'Service', plural: 'services', namespaced: true },
    { group: '', versions: ['v1'], kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
    { group: '', versions: ['v1'], kind: 'Event', plural: 'events', namespaced: true },
    { group: '', versions: ['v1'], kind: 'Pod', plural: 'pods', namespaced: true },
    { group: '', versions: ['v1'], kind: 'Namespace', plural: 'namespaces', namespaced: false },
    {
      group: 'discovery.k8s.io',
      versions: ['v1'],
      kind: 'EndpointSlice',
      plural: 'endpointslices',
      namespaced: true,
    },
    { group: 'networking.k8s.io', versions: ['v1'], kind: 'Ingress', plural: 'ingresses', namespaced: true },
    {
      group: 'networking.k8s.io',
      versions: ['v1'],
      kind: 'IngressClass',
      plural: 'ingressclasses',
      namespaced: false,
    },
    { group: 'coordination.k8s.io', versions: ['v1'], kind: 'Lease', plural: 'leases', namespaced: true },
  ];
}

interface Stored {
  readonly served: ServedKind;
  obj: KubeObj;
  /** Server-side apply: each field manager's fields of `status`. */
  readonly managed: Managed;
}

interface HistoryEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly served: ServedKind;
  readonly obj: KubeObj;
}

interface Watcher {
  readonly served: ServedKind;
  readonly version: string;
  readonly namespace: string | null;
  readonly selector: FieldSelector;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
}

type FieldSelector = (obj: KubeObj) => boolean;

function parseFieldSelector(text: string | undefined): FieldSelector | string {
  if (text === undefined || text === '') return () => true;
  const tests: FieldSelector[] = [];
  for (const part of text.split(',')) {
    const m = /^(metadata\.name|metadata\.namespace)(!=|==|=)(.*)$/.exec(part);
    if (m === null) return `field label not supported: ${part}`;
    const field = m[1] === 'metadata.name' ? 'name' : 'namespace';
    const want = m[3];
    const neg = m[2] === '!=';
    tests.push((o) => ((o.metadata[field] ?? '') === want) !== neg);
  }
  return (o) => tests.every((t) => t(o));
}

const clone = <T>(v: T): T => structuredClone(v);

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface FakeKubeApi {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Writes a kubeconfig for this server into `dir`; returns its path. */
  kubeconfig(dir: string): string;
  /**
   * Creates or replaces an object (as `kubectl apply` would, keeping the status it has unless `obj`
   * sets one, as a controller would): ADDED or MODIFIED.
   */
  apply(obj: KubeObj): KubeObj;
  /**
   * Server-side apply of `status` by another field manager (istiod, say), as PATCH
   * application/apply-patch+yaml on the status subresource would: null when applied, else the conflicts.
   */
  applyStatus(
    manager: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    status: Record<string, unknown>,
  ): string[] | null;
  /** Deletes an object: DELETED. */
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): void;
  get(kind: string, namespace: string | undefined, name: string): KubeObj | undefined;
  /** Forgets history: watches resuming from an earlier resourceVersion get 410 Gone. */
  compact(): void;
  /** Sends a BOOKMARK to every watch that asked for them. */
  bookmark(): void;
  /** Cuts every open watch stream (the socket, mid-stream). */
  dropWatches(): void;
  /** Ends every open watch stream cleanly, as a server does when `timeoutSeconds` runs out. */
  endWatches(): void;
  /** Cuts every connection and refuses new ones until up(). */
  down(): void;
  up(): void;
  /** Lists and watches of `plural` (in `namespace`, else anywhere) get 403 Forbidden until allow(). */
  forbid(plural: string, namespace?: string): void;
  allow(plural: string, namespace?: string): void;
  /** Starts serving a kind (a CRD installed now). */
  install(kind: ServedKind): void;
  /** Open watch streams now. */
  watchCount(): number;
  latencyMs: number;
  goneAs: 'event' | 'http';
  close(): Promise<void>;
}

export async function startFakeKubeApi(opts: { served?: readonly ServedKind[] } = {}): Promise<FakeKubeApi> {
  const served = [...(opts.served ?? ISTIO_CLUSTER)];
  const store = new Map<string, Stored>();
  let history: HistoryEvent[] = [];
  let rv = 1000;
  /** Watches may resume from this resourceVersion or later. */
  let oldestRv = rv;
  const watchers = new Set<Watcher>();
  const sockets = new Set<Socket>();
  const pages = new Map<string, { rv: number; items: KubeObj[] }>();
  let isDown = false;
  /** `plural/namespace` ('' for every namespace) refused to lists and watches. */
  const forbidden = new Set<string>();
  const requests: RecordedRequest[] = [];

  const byKind = (kind: string): ServedKind => {
    const s = served.find((k) => k.kind === kind);
    if (s === undefined) throw new Error(`the fake API server does not serve ${kind}`);
    return s;
  };
  const keyOf = (s: ServedKind, ns: string | undefined, name: string): string =>
    `${s.group}/${s.plural}/${s.namespaced ? (ns ?? 'default') : ''}/${name}`;
  const apiVersionOf = (s: ServedKind, v: string): string => (s.group === '' ? v : `${s.group}/${v}`);

  const render = (obj: KubeObj, s: ServedKind, version: string): KubeObj => ({
    ...clone(obj),
    apiVersion: apiVersionOf(s, version),
    kind: s.kind,
  });

  const emit = (type: HistoryEvent['type'], s: ServedKind, obj: KubeObj): void => {
    const ev: HistoryEvent = { rv: Number(obj.metadata.resourceVersion), type, served: s, obj: clone(obj) };
    history.push(ev);
    for (const w of watchers) send(w, ev);
  };

  const send = (w: Watcher, ev: HistoryEvent): void => {
    if (w.served !== ev.served) return;
    if (w.namespace !== null && ev.obj.metadata.namespace !== w.namespace) return;
    if (!w.selector(ev.obj)) return;
    w.res.write(`${JSON.stringify({ type: ev.type, object: render(ev.obj, w.served, w.version) })}\n`);
  };

  const write = (s: ServedKind, obj: KubeObj): { obj: KubeObj; created: boolean } => {
    const key = keyOf(s, obj.metadata.namespace, obj.metadata.name);
    const before = store.get(key);
    const next: KubeObj = clone(obj);
    delete next.apiVersion;
    delete next.kind;
    if (s.namespaced) next.metadata.namespace = obj.metadata.namespace ?? 'default';
    next.metadata.uid = before?.obj.metadata.uid ?? randomUUID();
    next.metadata.creationTimestamp =
      before?.obj.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    // As for a CRD with a status subresource: metadata and status changes keep the generation.
    const content = (o: KubeObj | undefined): string =>
      JSON.stringify(o === undefined ? null : { ...o, metadata: undefined, status: undefined });
    const generation = (before?.obj.metadata.generation as number | undefined) ?? 0;
    next.metadata.generation = content(before?.obj) === content(next) ? generation : generation + 1;
    next.metadata.resourceVersion = String(++rv);
    const managed = before?.managed ?? new Map<string, Set<string>>();
    if (managed.size > 0)
      next.metadata.managedFields = [...managed.keys()].sort().map((manager) => ({
        manager,
        operation: 'Apply',
        subresource: 'status',
        fieldsType: 'FieldsV1',
      }));
    store.set(key, { served: s, obj: next, managed });
    emit(before === undefined ? 'ADDED' : 'MODIFIED', s, next);
    return { obj: next, created: before === undefined };
  };

  const del = (s: ServedKind, ns: string | undefined, name: string): KubeObj | undefined => {
    const key = keyOf(s, ns, name);
    const before = store.get(key);
    if (before === undefined) return undefined;
    store.delete(key);
    const gone = {
      ...clone(before.obj),
      metadata: { ...before.obj.metadata, resourceVersion: String(++rv) },
    };
    emit('DELETED', s, gone);
    return gone;
  };

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const status = (res: ServerResponse, code: number, reason: string, message: string): void =>
    json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });

  const discovery = (parts: string[], res: ServerResponse): boolean => {
    if (parts.length === 1 && parts[0] === 'api') {
      json(res, 200, { kind: 'APIVersions', versions: ['v1'] });
      return true;
    }
    if (parts.length === 1 && parts[0] === 'apis') {
      const groups = new Map<string, string[]>();
      for (const s of served) {
        if (s.group === '') continue;
        const vs = groups.get(s.group) ?? [];
        for (const v of s.versions) if (!vs.includes(v)) vs.push(v);
        groups.set(s.group, vs);
      }
      json(res, 200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...groups].map(([name, vs]) => ({
          name,
          versions: vs.map((version) => ({ groupVersion: `${name}/${version}`, version })),
          preferredVersion: { groupVersion: `${name}/${vs[0]}`, version: vs[0] },
        })),
      });
      return true;
    }
    const gv =
      parts.length === 2 && parts[0] === 'api'
        ? { group: '', version: parts[1] }
        : parts.length === 3 && parts[0] === 'apis'
          ? { group: parts[1], version: parts[2] }
          : null;
    if (gv === null) return false;
    const kinds = served.filter((s) => s.group === gv.group && s.versions.includes(gv.version!));
    if (kinds.length === 0) {
      status(res, 404, 'NotFound', 'the server could not find the requested resource');
      return true;
    }
    json(res, 200, {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: apiVersionOf(kinds[0]!, gv.version!),
      resources: kinds.flatMap((s) => [
        {
          name: s.plural,
          singularName: s.kind.toLowerCase(),
          namespaced: s.namespaced,
          kind: s.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        },
        {
          name: `${s.plural}/status`,
          singularName: '',
          namespaced: s.namespaced,
          kind: s.kind,
          verbs: ['get', 'patch', 'update'],
        },
      ]),
    });
    return true;
  };

  const list = (w: Omit<Watcher, 'res' | 'bookmarks'>, query: URLSearchParams, res: ServerResponse): void => {
    const limit = Number(query.get('limit') ?? '0');
    const cont = query.get('continue');
    let page: { rv: number; items: KubeObj[] };
    if (cont !== null && cont !== '') {
      const held = pages.get(cont);
      if (held === undefined || held.rv < oldestRv) {
        status(res, 410, 'Expired', 'The provided continue parameter is too old');
        return;
      }
      pages.delete(cont);
      page = held;
    } else {
      const items = [...store.values()]
        .filter((x) => x.served === w.served)
        .map((x) => x.obj)
        .filter((o) => w.namespace === null || o.metadata.namespace === w.namespace)
        .filter(w.selector)
        .sort((a, b) =>
          `${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}`
            ? -1
            : 1,
        );
      page = { rv, items };
    }
    const take = limit > 0 ? page.items.slice(0, limit) : page.items;
    const rest = limit > 0 ? page.items.slice(limit) : [];
    const metadata: Record<string, unknown> = { resourceVersion: String(page.rv) };
    if (rest.length > 0) {
      const token = randomUUID();
      pages.set(token, { rv: page.rv, items: rest });
      metadata.continue = token;
      metadata.remainingItemCount = rest.length;
    }
    // List items carry no kind or apiVersion: the list's own do.
    json(res, 200, {
      kind: `${w.served.kind}List`,
      apiVersion: apiVersionOf(w.served, w.version),
      metadata,
      items: take.map((o) => clone(o)),
    });
  };

  const watch = (
    w: Omit<Watcher, 'res'>,
    query: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
  ): void => {
    const from = query.get('resourceVersion') ?? '';
    if (from !== '' && from !== '0' && Number(from) < oldestRv) {
      if (goneAs() === 'http') {
        status(res, 410, 'Expired', `too old resource version: ${from} (${oldestRv})`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end(
        `${JSON.stringify({
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            message: `too old resource version: ${from} (${oldestRv})`,
            reason: 'Expired',
            code: 410,
          },
        })}\n`,
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const watcher: Watcher = { ...w, res };
    if (from === '' || from === '0') {
      for (const x of store.values())
        if (x.served === w.served)
          send(watcher, {
            rv: Number(x.obj.metadata.resourceVersion),
            type: 'ADDED',
            served: x.served,
            obj: x.obj,
          });
    } else for (const ev of history) if (ev.rv > Number(from)) send(watcher, ev);
    watchers.add(watcher);
    const timeout = Number(query.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const forget = (): void => {
      clearTimeout(timer);
      watchers.delete(watcher);
    };
    req.on('close', forget);
    res.on('close', forget);
  };

  let goneMode: 'event' | 'http' = 'event';
  const goneAs = (): 'event' | 'http' => goneMode;

  const readBody = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return undefined;
    // An apply patch is YAML (JSON is YAML too).
    return String(req.headers['content-type']).startsWith('application/apply-patch+yaml')
      ? (parseYaml(text) as unknown)
      : (JSON.parse(text) as unknown);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const body = method === 'GET' || method === 'DELETE' ? undefined : await readBody(req);
    requests.push({
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      ...(body !== undefined ? { body } : {}),
      ...(req.headers['content-type'] !== undefined ? { contentType: req.headers['content-type'] } : {}),
    });
    if (api.latencyMs > 0) await new Promise((r) => setTimeout(r, api.latencyMs));
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      status(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    const parts = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    if (discovery(parts, res)) return;
    // /api/v1/... or /apis/g/v/...
    const [group, version, rest] =
      parts[0] === 'api' ? ['', parts[1], parts.slice(2)] : [parts[1] ?? '', parts[2], parts.slice(3)];
    let namespace: string | null = null;
    let tail = rest;
    if (tail[0] === 'namespaces' && tail.length >= 3) {
      namespace = tail[1]!;
      tail = tail.slice(2);
    }
    const s = served.find(
      (k) => k.group === group && k.plural === tail[0] && k.versions.includes(version ?? ''),
    );
    if (s === undefined || version === undefined || tail.length > 3) {
      status(res, 404, 'NotFound', 'the server could not find the requested resource');
      return;
    }
    const name = tail[1];
    const sub = tail[2];
    const selector = parseFieldSelector(url.searchParams.get('fieldSelector') ?? undefined);
    if (typeof selector === 'string') {
      status(res, 400, 'BadRequest', selector);
      return;
    }
    if (name === undefined) {
      if (
        method === 'GET' &&
        (forbidden.has(`${s.plural}/`) || forbidden.has(`${s.plural}/${namespace ?? ''}`))
      ) {
        const verb = url.searchParams.get('watch') === 'true' ? 'watch' : 'list';
        status(
          res,
          403,
          'Forbidden',
          `${s.plural} is forbidden: User "system:serviceaccount:istio-system:sluice" cannot ${verb} resource "${s.plural}" in API group "${s.group}"${namespace !== null ? ` in the namespace "${namespace}"` : ' at the cluster scope'}`,
        );
        return;
      }
      if (method === 'GET') {
        const w = { served: s, version, namespace, selector };
        const watching = url.searchParams.get('watch');
        if (watching === 'true' || watching === '1')
          watch(
            { ...w, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' },
            url.searchParams,
            req,
            res,
          );
        else list(w, url.searchParams, res);
        return;
      }
      if (method === 'POST') {
        const obj = body as KubeObj;
        if (namespace !== null) obj.metadata.namespace = namespace;
        if (obj.metadata.name === undefined && typeof obj.metadata.generateName === 'string')
          obj.metadata.name = `${obj.metadata.generateName}${randomUUID().slice(0, 5)}`;
        if (store.has(keyOf(s, obj.metadata.namespace, obj.metadata.name))) {
          status(res, 409, 'AlreadyExists', `${s.plural} "${obj.metadata.name}" already exists`);
          return;
        }
        json(res, 201, render(write(s, obj).obj, s, version));
        return;
      }
      status(res, 405, 'MethodNotAllowed', method);
      return;
    }
    const key = keyOf(s, namespace ?? undefined, name);
    const held = store.get(key);
    if (method === 'GET') {
      if (held === undefined) status(res, 404, 'NotFound', `${s.plural} "${name}" not found`);
      else json(res, 200, render(held.obj, s, version));
      return;
    }
    if (method === 'DELETE') {
      const gone = del(s, namespace ?? undefined, name);
      if (gone === undefined) status(res, 404, 'NotFound', `${s.plural} "${name}" not found`);
      else json(res, 200, render(gone, s, version));
      return;
    }
    if (method === 'PUT' || method === 'PATCH') {
      const incoming = body as Record<string, unknown>;
      const ct = String(req.headers['content-type'] ?? '');
      if (method === 'PATCH' && held === undefined && !ct.startsWith('application/apply-patch')) {
        status(res, 404, 'NotFound', `${s.plural} "${name}" not found`);
        return;
      }
      // Optimistic concurrency: a write naming a resourceVersion applies only to that version.
      const expected = (incoming.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
      if (expected !== undefined && held !== undefined && expected !== held.obj.metadata.resourceVersion) {
        status(
          res,
          409,
          'Conflict',
          `the object has been modified; please apply your changes to the latest version`,
        );
        return;
      }
      const base: KubeObj = held?.obj ?? { metadata: { name, ...(namespace !== null ? { namespace } : {}) } };
      let next: KubeObj;
      if (sub === 'status' && ct.startsWith('application/apply-patch')) {
        const manager = url.searchParams.get('fieldManager');
        if (
          manager === null ||
          manager === '' ||
          incoming.apiVersion === undefined ||
          incoming.kind === undefined
        ) {
          status(res, 400, 'BadRequest', 'an apply patch needs fieldManager, apiVersion and kind');
          return;
        }
        if (held === undefined) {
          status(res, 404, 'NotFound', `${s.plural} "${name}" not found`);
          return;
        }
        const applied = serverSideApply(base, incoming, held.managed, {
          manager,
          force: url.searchParams.get('force') === 'true',
          scope: 'status',
        });
        if (!applied.ok) {
          status(
            res,
            409,
            'Conflict',
            `Apply failed with ${applied.conflicts.length} conflict(s): ${applied.conflicts.join('; ')}`,
          );
          return;
        }
        next = { ...clone(base), status: applied.obj.status };
      } else if (sub === 'status') {
        // The status subresource changes status only.
        const patched = method === 'PUT' ? incoming : (mergePatch(base, incoming) as KubeObj);
        next = { ...clone(base), status: (patched as KubeObj).status };
      } else if (method === 'PUT') {
        next = { ...(incoming as KubeObj), status: base.status };
      } else {
        next = mergePatch(base, incoming) as KubeObj;
        if (base.status !== undefined) next.status = base.status;
      }
      next.metadata = { ...next.metadata, name, ...(namespace !== null ? { namespace } : {}) };
      json(res, 200, render(write(s, next).obj, s, version));
      return;
    }
    status(res, 405, 'MethodNotAllowed', method);
  };

  const leaf = rsaLeaf(['127.0.0.1']);
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) status(res, 500, 'InternalError', String(err));
      else res.destroy();
    });
  });
  // Raw TCP connections, before TLS: down() refuses them here.
  server.on('connection', (socket: Socket) => {
    if (isDown) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  const api: FakeKubeApi = {
    url,
    requests,
    latencyMs: 0,
    get goneAs() {
      return goneMode;
    },
    set goneAs(v) {
      goneMode = v;
    },
    kubeconfig(dir) {
      const file = path.join(dir, 'kubeconfig');
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            {
              name: 'fake',
              cluster: {
                server: url,
                'certificate-authority-data': Buffer.from(testCa().certPem).toString('base64'),
              },
            },
          ],
          users: [{ name: 'sluice', user: { token: TOKEN } }],
          contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'sluice', namespace: 'default' } }],
          'current-context': 'fake',
        }),
      );
      return file;
    },
    apply(obj) {
      const s = byKind(obj.kind ?? '');
      // As kubectl apply: the status subresource is not the object's to change.
      const held = store.get(keyOf(s, obj.metadata.namespace, obj.metadata.name));
      const next =
        obj.status === undefined && held?.obj.status !== undefined
          ? { ...obj, status: held.obj.status }
          : obj;
      return render(write(s, next).obj, s, s.versions[0]!);
    },
    applyStatus(manager, kind, namespace, name, applied) {
      const s = byKind(kind);
      const held = store.get(keyOf(s, namespace, name));
      if (held === undefined) throw new Error(`no ${kind} ${namespace}/${name}`);
      const r = serverSideApply(held.obj, { status: applied }, held.managed, {
        manager,
        force: false,
        scope: 'status',
      });
      if (!r.ok) return r.conflicts;
      write(s, { ...clone(held.obj), status: r.obj.status });
      return null;
    },
    remove(_apiVersion, kind, namespace, name) {
      del(byKind(kind), namespace, name);
    },
    get(kind, namespace, name) {
      const s = byKind(kind);
      const held = store.get(keyOf(s, namespace, name));
      return held === undefined ? undefined : render(held.obj, s, s.versions[0]!);
    },
    compact() {
      oldestRv = rv + 1;
      history = [];
    },
    bookmark() {
      for (const w of watchers)
        if (w.bookmarks)
          w.res.write(
            `${JSON.stringify({
              type: 'BOOKMARK',
              object: {
                kind: w.served.kind,
                apiVersion: apiVersionOf(w.served, w.version),
                metadata: {
                  resourceVersion: String(rv),
                  annotations: { 'k8s.io/initial-events-end': 'true' },
                },
              },
            })}\n`,
          );
    },
    dropWatches() {
      for (const w of watchers) w.res.socket?.destroy();
      watchers.clear();
    },
    endWatches() {
      for (const w of watchers) w.res.end();
      watchers.clear();
    },
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
      watchers.clear();
    },
    up() {
      isDown = false;
    },
    watchCount: () => watchers.size,
    forbid(plural, namespace) {
      forbidden.add(`${plural}/${namespace ?? ''}`);
    },
    allow(plural, namespace) {
      forbidden.delete(`${plural}/${namespace ?? ''}`);
    },
    install(kind) {
      served.push(kind);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

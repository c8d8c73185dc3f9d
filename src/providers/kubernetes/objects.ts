/**
 * API objects → resources, through the same load (schema, validation, normalisation) as files,
 * with a `kube:` origin. An object is loaded once per resourceVersion. Security policy is never
 * opened by a bad edit: a RequestAuthentication or AuthorizationPolicy that is invalid, or valid
 * but judged unenforceable by the compile (SLUICE_POLICY_UNENFORCEABLE, told through `judged`),
 * keeps its last good version (the last one judged without errors) in force, and one that never
 * had a good version is replaced by a policy that denies every request in its scope until it is
 * fixed. An unenforceable version is recognised by its spec, so a status write (a new
 * resourceVersion, the same spec) does not bring it back.
 */
import { parse as parseYaml } from 'yaml';
import { loadObject } from '../../config/index.ts';
import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { Origin, Resource } from '../../model/resource.ts';
import type { KubeObject } from './client.ts';

interface Loaded {
  readonly resourceVersion: string;
  readonly resource: Resource | undefined;
  readonly diagnostics: readonly Diagnostic[];
}

const SECURITY_KINDS = new Set(['RequestAuthentication', 'AuthorizationPolicy']);

export interface ObjectLoader {
  /** One object of `apiVersion`/`kind` (list items carry neither, so the watch supplies them). */
  load(obj: KubeObject, apiVersion: string, kind: string, plural: string): Loaded;
  /** Forgets objects not loaded since the last call (deleted ones), keeping memory bounded. */
  sweep(): void;
  /**
   * What the compile said about the last swept read: its security policies without errors become
   * their last good versions; one it cannot enforce is stood in for from the next read on. True
   * when a policy was newly found unenforceable (the caller reads again).
   */
  judged(diagnostics: readonly Diagnostic[]): boolean;
}

export function originOf(obj: KubeObject, plural: string): Origin {
  return {
    kind: 'kube',
    namespace: obj.metadata.namespace ?? '',
    resource: plural,
    name: obj.metadata.name ?? '',
    resourceVersion: obj.metadata.resourceVersion ?? '',
  };
}

/** Labels of a workload selector, when the invalid object still has a usable one. */
function selectorOf(obj: KubeObject): Record<string, string> | null {
  const spec = obj.spec as { selector?: { matchLabels?: unknown } } | undefined;
  const labels = spec?.selector?.matchLabels;
  if (typeof labels !== 'object' || labels === null) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string') return null;
    out[k] = v;
  }
  return out;
}

const specText = (obj: KubeObject): string => JSON.stringify(obj.spec ?? null);

export function createObjectLoader(opts: { readonly rootNamespace: string }): ObjectLoader {
  let cache = new Map<string, Loaded>();
  let seen = new Map<string, Loaded>();
  /** The last version of each security policy judged without errors. */
  const lastGood = new Map<string, Resource>();
  let goodSeen = new Map<string, Resource>();
  /** Security policies the compile cannot enforce: the spec it judged, and why. */
  const unenforceable = new Map<string, { readonly spec: string; readonly why: string }>();
  /** This read's security policies as loaded from their own objects (not stand-ins), and the last swept read's. */
  let candidates = new Map<string, { readonly resource: Resource; readonly spec: string }>();
  let judging = candidates;

  const deny = (obj: KubeObject, kind: string, origin: Origin): Resource | undefined => {
    const selector = selectorOf(obj);
    // Without a readable selector the whole namespace is denied: stricter, never more open.
    const value = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: {
        name:
          kind === 'AuthorizationPolicy'
            ? obj.metadata.name
            : `${obj.metadata.name}-invalid-requestauthentication`,
        namespace: obj.metadata.namespace,
      },
      spec: {
        ...(selector !== null ? { selector: { matchLabels: selector } } : {}),
        action: 'DENY',
        rules: [{}],
      },
    };
    return loadObject(value, origin, { defaultNamespace: opts.rootNamespace }).resource;
  };

  /** The last good version of a policy this version cannot be (`why`), else a deny of its scope. */
  const standIn = (
    obj: KubeObject,
    kind: string,
    origin: Origin,
    why: string,
    diagnostics: readonly Diagnostic[],
  ): Omit<Loaded, 'resourceVersion'> => {
    const key = `${kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
    const good = lastGood.get(key);
    const subject = diagnostics.find((d) => d.subject !== undefined)?.subject ?? {
      origin,
      kind,
      namespace: obj.metadata.namespace ?? '',
      name: obj.metadata.name ?? '',
    };
    if (good !== undefined)
      return {
        resource: good,
        diagnostics: [
          ...diagnostics,
          {
            level: 'warning',
            code: 'SLUICE_KUBE_POLICY_KEPT',
            subject,
            message: `this version ${why}; the last good one (${good.origin.kind === 'kube' ? `resourceVersion ${good.origin.resourceVersion}` : 'earlier'}) stays in force`,
          },
        ],
      };
    return {
      resource: deny(obj, kind, origin),
      diagnostics: [
        ...diagnostics,
        {
          level: 'warning',
          code: 'SLUICE_KUBE_POLICY_DENY',
          subject,
          message: `this version ${why} and no version was good before: every request in its scope is denied (403) until it is fixed`,
        },
      ],
    };
  };

  const loadFresh = (obj: KubeObject, apiVersion: string, kind: string, plural: string): Loaded => {
    const origin = originOf(obj, plural);
    if (kind === 'ConfigMap') {
      const mesh = meshConfigFromConfigMap(obj, parseYaml);
      const loaded =
        mesh.value === null
          ? { resource: undefined, diagnostics: [] }
          : loadObject(mesh.value, origin, { defaultNamespace: opts.rootNamespace });
      return {
        resourceVersion: obj.metadata.resourceVersion ?? '',
        resource: loaded.resource,
        diagnostics: [...mesh.diagnostics, ...loaded.diagnostics],
      };
    }
    const loaded = loadObject({ ...obj, apiVersion, kind }, origin, { defaultNamespace: opts.rootNamespace });
    const resourceVersion = obj.metadata.resourceVersion ?? '';
    if (!SECURITY_KINDS.has(kind) || loaded.resource !== undefined) return { resourceVersion, ...loaded };
    return { resourceVersion, ...standIn(obj, kind, origin, 'is invalid', loaded.diagnostics) };
  };

  return {
    load(obj, apiVersion, kind, plural) {
      const id = `${kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
      const rv = obj.metadata.resourceVersion ?? '';
      let loaded = cache.get(id);
      if (loaded === undefined || loaded.resourceVersion !== rv)
        loaded = loadFresh(obj, apiVersion, kind, plural);
      seen.set(id, loaded);
      if (!SECURITY_KINDS.has(kind)) return loaded;
      const good = lastGood.get(id);
      if (good !== undefined) goodSeen.set(id, good);
      if (loaded.resource === undefined || loaded.diagnostics.some((d) => d.level === 'error')) return loaded;
      const spec = specText(obj);
      const refused = unenforceable.get(id);
      if (refused !== undefined && refused.spec === spec)
        return {
          resourceVersion: rv,
          ...standIn(obj, kind, originOf(obj, plural), `cannot be enforced exactly (${refused.why})`, []),
        };
      candidates.set(id, { resource: loaded.resource, spec });
      return loaded;
    },
    sweep() {
      cache = seen;
      seen = new Map();
      lastGood.clear();
      for (const [k, v] of goodSeen) lastGood.set(k, v);
      goodSeen = new Map();
      for (const id of unenforceable.keys()) if (!cache.has(id)) unenforceable.delete(id);
      judging = candidates;
      candidates = new Map();
    },
    judged(diagnostics) {
      const errors = new Map<string, Diagnostic[]>();
      for (const d of diagnostics) {
        const s = d.subject;
        if (d.level !== 'error' || s?.origin?.kind !== 'kube' || !SECURITY_KINDS.has(s.kind)) continue;
        const id = `${s.kind}/${s.namespace ?? ''}/${s.name}`;
        errors.set(id, [...(errors.get(id) ?? []), d]);
      }
      let found = false;
      for (const [id, c] of judging) {
        const own = (errors.get(id) ?? []).filter(
          (d) =>
            d.subject?.origin?.kind === 'kube' &&
            d.subject.origin.resourceVersion ===
              (c.resource.origin as { resourceVersion?: string }).resourceVersion,
        );
        const refusals = own.filter((d) => d.code === 'SLUICE_POLICY_UNENFORCEABLE');
        if (refusals.length > 0) {
          const why = refusals
            .map(
              (d) =>
                `${d.path ?? 'spec'}: ${d.message.replace(/; the policy cannot be enforced exactly, so the change is refused$/, '')}`,
            )
            .join('; ');
          if (unenforceable.get(id)?.spec !== c.spec) found = true;
          unenforceable.set(id, { spec: c.spec, why });
        } else if (own.length === 0) {
          lastGood.set(id, c.resource);
          unenforceable.delete(id);
        }
      }
      judging = new Map();
      return found;
    },
  };
}

/** Istio meshConfig keys sluice reads from the `istio` ConfigMap (its MeshConfig fields). */
const MESH_KEYS = [
  'extensionProviders',
  'outboundTrafficPolicy',
  'accessLogFile',
  'accessLogEncoding',
  'accessLogFormat',
  'pathNormalization',
] as const;

/**
 * Istio's mesh settings as a MeshConfig object: the `mesh` key of ConfigMap `istio` (YAML), its
 * extension providers, outbound policy, access log and path normalisation, and
 * `defaultConfig.gatewayTopology` (where Istio keeps a gateway's proxy settings). Keys sluice does
 * not read are named in one info, since most of a mesh config is about sidecars.
 */
export function meshConfigFromConfigMap(
  obj: KubeObject,
  parse: (text: string) => unknown,
): { value: unknown | null; diagnostics: Diagnostic[] } {
  const origin = originOf(obj, 'configmaps');
  const subject = {
    origin,
    kind: 'ConfigMap',
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
  };
  const text = (obj.data as Record<string, unknown> | undefined)?.mesh;
  if (typeof text !== 'string') return { value: null, diagnostics: [] };
  let mesh: unknown;
  try {
    mesh = parse(text);
  } catch (err) {
    return {
      value: null,
      diagnostics: [
        {
          level: 'error',
          code: 'SLUICE_CONFIG_PARSE',
          subject,
          path: 'data.mesh',
          message: `not valid YAML: ${(err as Error).message.split('\n')[0]}`,
        },
      ],
    };
  }
  if (mesh === null || mesh === undefined) mesh = {};
  if (typeof mesh !== 'object' || Array.isArray(mesh))
    return {
      value: null,
      diagnostics: [
        {
          level: 'error',
          code: 'SLUICE_CONFIG_SCHEMA',
          subject,
          path: 'data.mesh',
          message: 'expected a mapping of meshConfig fields',
        },
      ],
    };
  const m = mesh as Record<string, unknown>;
  const spec: Record<string, unknown> = {};
  for (const k of MESH_KEYS) if (m[k] !== undefined) spec[k] = m[k];
  const defaults = m.defaultConfig as Record<string, unknown> | undefined;
  if (defaults?.gatewayTopology !== undefined) spec.gatewayTopology = defaults.gatewayTopology;
  const unread = Object.keys(m).filter(
    (k) => !(MESH_KEYS as readonly string[]).includes(k) && k !== 'defaultConfig',
  );
  const diagnostics: Diagnostic[] =
    unread.length === 0
      ? []
      : [
          {
            level: 'info',
            code: 'SLUICE_CONFIG_NOT_APPLICABLE',
            subject,
            path: 'data.mesh',
            message: `meshConfig keys sluice does not read (sidecar and control-plane settings): ${unread.sort().join(', ')}`,
          },
        ];
  return {
    value: {
      apiVersion: 'sluice.dev/v1alpha1',
      kind: 'MeshConfig',
      metadata: {
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        resourceVersion: obj.metadata.resourceVersion,
        annotations: { [MESH_SOURCE_ANNOTATION]: MESH_SOURCE },
      },
      spec,
    },
    diagnostics,
  };
}

export const MESH_SOURCE_ANNOTATION = 'sluice.dev/source';
/** Marks the MeshConfig made from Istio's ConfigMap: sluice's own MeshConfig objects win over it. */
export const MESH_SOURCE = 'istio-configmap';

/**
 * Whether a resource is the MeshConfig made from Istio's ConfigMap. MeshConfigs merge first wins
 * per field (compile/indexes.ts), so it goes last: sluice's own MeshConfigs override it field by
 * field.
 */
export const isIstioMesh = (r: Resource): boolean =>
  r.kind === 'MeshConfig' && r.annotations[MESH_SOURCE_ANNOTATION] === MESH_SOURCE;

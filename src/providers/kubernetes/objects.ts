/**
 * API objects → resources, through the same load (schema, validation, normalisation) as files,
 * with a `kube:` origin. An object is loaded once per resourceVersion. Security policy is never
 * opened by a bad edit: an invalid RequestAuthentication or AuthorizationPolicy keeps its last
 * good version in force, and one that never had a good version is replaced by a policy that
 * denies every request in its scope until it is fixed.
 */
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

export function createObjectLoader(opts: { readonly rootNamespace: string }): ObjectLoader {
  let cache = new Map<string, Loaded>();
  let seen = new Map<string, Loaded>();
  /** The last version of each security policy that loaded without errors. */
  const lastGood = new Map<string, Resource>();
  let goodSeen = new Map<string, Resource>();

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

  const loadFresh = (obj: KubeObject, apiVersion: string, kind: string, plural: string): Loaded => {
    const origin = originOf(obj, plural);
    const loaded = loadObject({ ...obj, apiVersion, kind }, origin, { defaultNamespace: opts.rootNamespace });
    const resourceVersion = obj.metadata.resourceVersion ?? '';
    if (!SECURITY_KINDS.has(kind)) return { resourceVersion, ...loaded };
    const key = `${kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
    if (loaded.resource !== undefined) return { resourceVersion, ...loaded };
    const good = lastGood.get(key);
    const subject = loaded.diagnostics.find((d) => d.subject !== undefined)?.subject ?? {
      origin,
      kind,
      namespace: obj.metadata.namespace ?? '',
      name: obj.metadata.name ?? '',
    };
    if (good !== undefined)
      return {
        resourceVersion,
        resource: good,
        diagnostics: [
          ...loaded.diagnostics,
          {
            level: 'warning',
            code: 'SLUICE_KUBE_POLICY_KEPT',
            subject,
            message: `this version is invalid; the last valid one (${good.origin.kind === 'kube' ? `resourceVersion ${good.origin.resourceVersion}` : 'earlier'}) stays in force`,
          },
        ],
      };
    return {
      resourceVersion,
      resource: deny(obj, kind, origin),
      diagnostics: [
        ...loaded.diagnostics,
        {
          level: 'warning',
          code: 'SLUICE_KUBE_POLICY_DENY',
          subject,
          message: `invalid and never valid before: every request in its scope is denied (403) until it is fixed`,
        },
      ],
    };
  };

  return {
    load(obj, apiVersion, kind, plural) {
      const id = `${kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
      const rv = obj.metadata.resourceVersion ?? '';
      let loaded = cache.get(id);
      if (loaded === undefined || loaded.resourceVersion !== rv)
        loaded = loadFresh(obj, apiVersion, kind, plural);
      seen.set(id, loaded);
      if (
        SECURITY_KINDS.has(kind) &&
        loaded.resource !== undefined &&
        loaded.diagnostics.every((d) => d.level !== 'error')
      )
        goodSeen.set(id, loaded.resource);
      else if (SECURITY_KINDS.has(kind)) {
        const good = lastGood.get(id);
        if (good !== undefined) goodSeen.set(id, good);
      }
      return loaded;
    },
    sweep() {
      cache = seen;
      seen = new Map();
      lastGood.clear();
      for (const [k, v] of goodSeen) lastGood.set(k, v);
      goodSeen = new Map();
    },
  };
}

/**
 * What a document of a kind sluice does not read is: a kind sluice knows it ignores, one that
 * never applies to a gateway, a kind it reads in a version it does not, a likely misspelling in a
 * group it reads, or something of another project (only a debug line).
 */
import { groupOf, KINDS, type KindDef } from './registry.ts';
import { nearest } from './schema-common.ts';

/** The API groups sluice reads: an unknown kind in one of them is a warning (DESIGN §4). */
export const READ_GROUPS: readonly string[] = [
  'networking.istio.io',
  'security.istio.io',
  'sluice.dev',
  'networking.k8s.io',
];

interface OtherKind {
  /** The version to suggest; any version of its group is recognised. */
  readonly apiVersion: string;
  readonly kind: string;
  /** ignored: would change an Istio gateway (model/unsupported.ts says how); never: does not. */
  readonly applies: 'ignored' | 'never';
  readonly why?: string;
  readonly namespaced?: false;
}

const OTHER_KINDS: readonly OtherKind[] = [
  { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', applies: 'ignored' },
  { apiVersion: 'networking.istio.io/v1beta1', kind: 'ProxyConfig', applies: 'ignored' },
  { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', applies: 'ignored' },
  { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadGroup', applies: 'ignored' },
  { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', applies: 'ignored' },
  { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', applies: 'ignored' },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Sidecar',
    applies: 'never',
    why: 'it configures sidecar proxies, never a gateway',
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    applies: 'never',
    why: "it sets mutual TLS for the traffic sidecars receive, never for a gateway's",
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    applies: 'never',
    why: "it is enforced by the cluster's network, not by a gateway",
  },
];

export type UnreadKind =
  /** A kind sluice reads, in a version it does not (networking.istio.io/v1beta2). */
  | { readonly verdict: 'other-version'; readonly def: KindDef }
  /** A kind that would change an Istio gateway and that sluice does not read (a warning). */
  | { readonly verdict: 'ignored'; readonly namespaced: boolean }
  /** A kind that never applies to a gateway (an info). */
  | { readonly verdict: 'never-applies'; readonly why: string; readonly namespaced: boolean }
  /** Likely a mistake in a kind or apiVersion sluice reads (a warning). */
  | { readonly verdict: 'unknown'; readonly path: 'kind' | 'apiVersion'; readonly message: string }
  /** Another project's kind. */
  | { readonly verdict: 'foreign' };

interface KnownKind {
  readonly kind: string;
  readonly group: string;
  /** The apiVersion to suggest. */
  readonly apiVersion: string;
}

const KNOWN: readonly KnownKind[] = [
  ...KINDS.map((d) => ({
    kind: d.kind,
    group: groupOf(d.apiVersions[0]!),
    apiVersion: d.apiVersions.at(-1)!,
  })),
  ...OTHER_KINDS.map((o) => ({ kind: o.kind, group: groupOf(o.apiVersion), apiVersion: o.apiVersion })),
];

function describeNew(apiVersion: string, kind: string, group: string): UnreadKind {
  const elsewhere = KNOWN.find((k) => k.kind === kind);
  if (elsewhere !== undefined) {
    return {
      verdict: 'unknown',
      path: 'apiVersion',
      message: `${kind} is not a ${group} kind: it is apiVersion ${elsewhere.apiVersion}, not ${apiVersion}; the document is ignored`,
    };
  }
  const inGroup = KNOWN.filter((k) => k.group === group);
  const near = nearest(kind, new Set(inGroup.map((k) => k.kind)));
  if (near !== undefined) {
    return {
      verdict: 'unknown',
      path: 'kind',
      message: `${group} has no kind "${kind}" (did you mean ${near}?); the document is ignored`,
    };
  }
  return {
    verdict: 'unknown',
    path: 'kind',
    message: `${group} has no kind "${kind}" (it has ${inGroup.map((k) => k.kind).join(', ')}); the document is ignored`,
  };
}

/** A kind sluice knows written with an apiVersion whose group is misspelt or missing (v1). */
function describeWrongGroup(apiVersion: string, kind: string, group: string): UnreadKind | undefined {
  const known = KNOWN.find((k) => k.kind === kind && k.group !== '');
  if (known === undefined) return undefined;
  if (group !== '' && nearest(group, new Set([known.group])) === undefined) return undefined;
  return {
    verdict: 'unknown',
    path: 'apiVersion',
    message: `${apiVersion} is not an API version of ${kind} (did you mean ${known.apiVersion}?); the document is ignored`,
  };
}

/** Classifies a document whose apiVersion and kind sluice does not read. */
export function classifyUnreadKind(apiVersion: string, kind: string): UnreadKind {
  const group = groupOf(apiVersion);
  const other = OTHER_KINDS.find((o) => groupOf(o.apiVersion) === group && o.kind === kind);
  if (other !== undefined) {
    const namespaced = other.namespaced ?? true;
    return other.applies === 'ignored'
      ? { verdict: 'ignored', namespaced }
      : { verdict: 'never-applies', why: other.why ?? '', namespaced };
  }
  const def = KINDS.find((d) => d.kind === kind && d.apiVersions.some((v) => groupOf(v) === group));
  if (def !== undefined) return { verdict: 'other-version', def };
  if (READ_GROUPS.includes(group)) return describeNew(apiVersion, kind, group);
  return describeWrongGroup(apiVersion, kind, group) ?? { verdict: 'foreign' };
}

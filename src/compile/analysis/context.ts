import type { Diagnostic, DiagnosticSubject, Level } from '../../errors/diagnostic.ts';
import type { Code } from '../../errors/codes.ts';
import type { Kind, Resource, ResourceSet } from '../../model/resource.ts';
import type { GatewayIdentity } from '../../model/sluice.ts';
import type {
  DestinationRuleSpec,
  GatewaySpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
} from '../../model/networking.ts';
import type { AuthorizationPolicySpec, RequestAuthenticationSpec } from '../../model/security.ts';
import type { SecretSpec, ServiceSpec } from '../../model/kube.ts';

/** Everything one analysis pass reads, indexed once so analyzers ask maps instead of scanning. */
export interface AnalysisContext {
  readonly identity: GatewayIdentity;
  /** Wall clock used for certificate validity; fixed per pass so findings agree with each other. */
  readonly nowMs: number;
  readonly gateways: readonly Resource<'Gateway', GatewaySpec>[];
  readonly virtualServices: readonly Resource<'VirtualService', VirtualServiceSpec>[];
  readonly destinationRules: readonly Resource<'DestinationRule', DestinationRuleSpec>[];
  readonly serviceEntries: readonly Resource<'ServiceEntry', ServiceEntrySpec>[];
  readonly services: readonly Resource<'Service', ServiceSpec>[];
  readonly secrets: readonly Resource<'Secret', SecretSpec>[];
  readonly requestAuthentications: readonly Resource<'RequestAuthentication', RequestAuthenticationSpec>[];
  readonly authorizationPolicies: readonly Resource<'AuthorizationPolicy', AuthorizationPolicySpec>[];
  readonly namespaces: readonly Resource<'Namespace'>[];
  /** `Kind\0namespace/name` → resource, first definition wins. */
  readonly byKey: ReadonlyMap<string, Resource>;
}

function ofKind<K extends Kind, S>(set: ResourceSet, kind: K): Resource<K, S>[] {
  return set.resources.filter((r) => r.kind === kind) as unknown as Resource<K, S>[];
}

export function lookupKey(kind: Kind, namespace: string, name: string): string {
  return `${kind}\u0000${namespace}/${name}`;
}

export function buildAnalysisContext(
  set: ResourceSet,
  identity: GatewayIdentity,
  nowMs: number,
): AnalysisContext {
  const byKey = new Map<string, Resource>();
  for (const r of set.resources) {
    const key = lookupKey(r.kind, r.namespace, r.name);
    if (!byKey.has(key)) byKey.set(key, r);
  }
  return {
    identity,
    nowMs,
    gateways: ofKind(set, 'Gateway'),
    virtualServices: ofKind(set, 'VirtualService'),
    destinationRules: ofKind(set, 'DestinationRule'),
    serviceEntries: ofKind(set, 'ServiceEntry'),
    services: ofKind(set, 'Service'),
    secrets: ofKind(set, 'Secret'),
    requestAuthentications: ofKind(set, 'RequestAuthentication'),
    authorizationPolicies: ofKind(set, 'AuthorizationPolicy'),
    namespaces: ofKind(set, 'Namespace'),
    byKey,
  };
}

export function findResource<K extends Kind, S>(
  ctx: AnalysisContext,
  kind: K,
  namespace: string,
  name: string,
): Resource<K, S> | undefined {
  return ctx.byKey.get(lookupKey(kind, namespace, name)) as Resource<K, S> | undefined;
}

export function subjectOf(r: Resource): DiagnosticSubject {
  return r.namespace === ''
    ? { origin: r.origin, kind: r.kind, name: r.name }
    : { origin: r.origin, kind: r.kind, namespace: r.namespace, name: r.name };
}

/** `Kind namespace/name`, as istioctl and the corpus name resources. */
export function nameOf(r: {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}): string {
  return `${r.kind} ${r.namespace}/${r.name}`;
}

export interface FindingInput {
  readonly level: Level;
  readonly code: Code;
  readonly istioCode: string;
  readonly resource: Resource;
  readonly path?: string;
  readonly message: string;
  readonly related?: DiagnosticSubject | Resource;
}

export function finding(f: FindingInput): Diagnostic {
  const related =
    f.related === undefined ? undefined : 'spec' in f.related ? subjectOf(f.related) : f.related;
  return {
    level: f.level,
    code: f.code,
    istioCode: f.istioCode,
    subject: subjectOf(f.resource),
    ...(f.path === undefined ? {} : { path: f.path }),
    message: f.message,
    ...(related === undefined ? {} : { related }),
  };
}

/** IST0101 ReferencedResourceNotFound: a warning, as the resource may be applied separately. */
export function refNotFound(f: Omit<FindingInput, 'level' | 'code' | 'istioCode'>): Diagnostic {
  return finding({ level: 'warning', code: 'SLUICE_REF_NOT_FOUND', istioCode: 'IST0101', ...f });
}

/** Kubernetes equality-based selector: every selector label present with the same value; empty selects all. */
export function selectorMatches(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** `k=v,k2=v2`, sorted, as Kubernetes prints a selector. */
export function formatSelector(selector: Readonly<Record<string, string>> | undefined): string {
  if (!selector) return '';
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

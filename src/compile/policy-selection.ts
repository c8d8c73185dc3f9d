/**
 * Which RequestAuthentication and AuthorizationPolicy resources apply to this gateway workload,
 * as istiod selects them for a proxy (RA-1, AP-1): policies in the root namespace and in the
 * gateway's own namespace; without a selector they cover every workload there, with
 * `selector.matchLabels` only workloads carrying those labels (a root-namespace selector matches
 * workloads of every namespace). `targetRef`/`targetRefs` name a Gateway API Gateway in the
 * policy's own namespace: it applies to the gateway deployment Istio made for that Gateway,
 * which carries the label `gateway.networking.k8s.io/gateway-name: <name>`.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import type { PolicyTargetReference, WorkloadSelector } from '../model/security.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import { selectorMatches, subjectOf } from './indexes.ts';

type PolicyKind = 'RequestAuthentication' | 'AuthorizationPolicy';

interface Targeting {
  readonly selector?: WorkloadSelector;
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
}

export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The policies of `kind` that apply to this gateway, root namespace first, each group by name.
 * A targetRef sluice cannot relate to a gateway workload (Service, ServiceEntry, GatewayClass)
 * is a warning on the policy; one naming another Gateway is not.
 */
export function selectPolicies<S extends Targeting>(
  set: ResourceSet,
  kind: PolicyKind,
  identity: GatewayIdentity,
  diagnostics: Diagnostic[],
): Resource<PolicyKind, S>[] {
  const out: Resource<PolicyKind, S>[] = [];
  for (const r of set.resources) {
    if (r.kind !== kind) continue;
    const policy = r as Resource<PolicyKind, S>;
    const inRoot = r.namespace === identity.rootNamespace;
    const inOwn = r.namespace === identity.namespace;
    if (!inRoot && !inOwn) continue;
    const spec = policy.spec;
    const refs = spec.targetRefs?.length ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
    if (refs.length > 0) {
      let applies = false;
      refs.forEach((ref, i) => {
        const path = spec.targetRefs?.length ? `spec.targetRefs[${i}]` : 'spec.targetRef';
        const isGateway = (ref.group ?? '') === GATEWAY_API_GROUP && ref.kind === 'Gateway';
        if (!isGateway) {
          diagnostics.push({
            level: 'warning',
            code: 'SLUICE_CONFIG_UNSUPPORTED',
            subject: subjectOf(r),
            path,
            message: `a targetRef to ${ref.group ? `${ref.group}/` : ''}${ref.kind ?? '?'} ${ref.name ?? ''} is not a gateway sluice can be; the policy does not apply to this gateway through it`,
          });
          return;
        }
        if (inOwn && identity.labels[GATEWAY_NAME_LABEL] === ref.name) applies = true;
      });
      if (applies) out.push(policy);
      continue;
    }
    const labels = spec.selector?.matchLabels;
    if (labels !== undefined && Object.keys(labels).length > 0 && !selectorMatches(labels, identity.labels))
      continue;
    out.push(policy);
  }
  return out.sort(
    (a, b) =>
      Number(b.namespace === identity.rootNamespace) - Number(a.namespace === identity.rootNamespace) ||
      cmp(a.name, b.name),
  );
}

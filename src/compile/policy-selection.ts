/**
 * Which RequestAuthentication and AuthorizationPolicy resources apply to this gateway, decided as
 * Istio decides it for a gateway workload (RA-1, AP-1; istio pilot/pkg/model/policyattachment.go
 * WorkloadPolicyMatcher.ShouldAttachPolicy, over the policies of the root namespace and the
 * workload's own): the one place that choice is made, for warnings now and enforcement later.
 */
import type { PolicyTargetReference, WorkloadSelector } from '../model/security.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import { selectorMatches } from './indexes.ts';

/** The label Gateway API puts on the pods of a Gateway: this gateway is that Gateway's instance. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

export interface SelectablePolicy {
  readonly namespace: string;
  readonly spec: {
    readonly selector?: WorkloadSelector;
    readonly targetRef?: PolicyTargetReference;
    readonly targetRefs?: readonly PolicyTargetReference[];
  };
}

export type PolicySelection =
  /** The policy applies to this gateway; `why` says by which rule. */
  | { readonly verdict: 'selected'; readonly why: string }
  /**
   * A targetRef names a Gateway API Gateway in this gateway's namespace, but this gateway has no
   * gateway-name label to say whether it is that Gateway. As in Istio, the policy does not apply.
   */
  | { readonly verdict: 'unresolved'; readonly path: string; readonly why: string }
  | { readonly verdict: 'not-selected'; readonly why: string };

function describeLabels(labels: Readonly<Record<string, string>>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
  return text === '' ? '(none)' : text;
}

/** targetRefs, or the older single targetRef (Istio GetTargetRefs). */
function targetRefsOf(spec: SelectablePolicy['spec']): readonly PolicyTargetReference[] {
  if (spec.targetRefs !== undefined && spec.targetRefs.length > 0) return spec.targetRefs;
  return spec.targetRef !== undefined ? [spec.targetRef] : [];
}

function refPath(spec: SelectablePolicy['spec'], i: number): string {
  return spec.targetRefs !== undefined && spec.targetRefs.length > 0
    ? `spec.targetRefs[${i}]`
    : 'spec.targetRef';
}

function isGatewayApiGateway(ref: PolicyTargetReference): boolean {
  return (ref.group ?? '') === GATEWAY_API_GROUP && ref.kind === 'Gateway';
}

/**
 * Whether `policy` applies to the gateway `identity` describes. Only policies in the root
 * namespace (mesh-wide) or in the gateway's own namespace can. Without targetRefs, the selector's
 * matchLabels must all be among the gateway's labels (none: every workload). With targetRefs,
 * only a Gateway API Gateway in the gateway's own namespace whose name is the gateway's
 * `gateway.networking.k8s.io/gateway-name` label selects it; Service, ServiceEntry and
 * GatewayClass targets are for waypoints and never select a gateway.
 */
export function selectPolicy(policy: SelectablePolicy, identity: GatewayIdentity): PolicySelection {
  const ns = policy.namespace;
  const root = ns === identity.rootNamespace;
  if (!root && ns !== identity.namespace) {
    return {
      verdict: 'not-selected',
      why: `it is in namespace ${ns}; only policies in the root namespace ${identity.rootNamespace} or this gateway's namespace ${identity.namespace} apply to it`,
    };
  }
  const scope = root
    ? `it is in the root namespace ${ns}, which applies mesh-wide`
    : `it is in this gateway's namespace ${ns}`;
  const refs = targetRefsOf(policy.spec);
  if (refs.length === 0) {
    const selector = policy.spec.selector?.matchLabels;
    if (!selectorMatches(selector, identity.labels)) {
      return {
        verdict: 'not-selected',
        why: `its selector ${describeLabels(selector ?? {})} does not match this gateway's labels ${describeLabels(identity.labels)}`,
      };
    }
    return {
      verdict: 'selected',
      why:
        selector === undefined || Object.keys(selector).length === 0
          ? `${scope} and has no selector`
          : `${scope} and its selector ${describeLabels(selector)} matches this gateway's labels`,
    };
  }
  if (ns !== identity.namespace) {
    return {
      verdict: 'not-selected',
      why: `it selects by targetRef, which applies only within its own namespace ${ns}, not this gateway's ${identity.namespace}`,
    };
  }
  const own = identity.labels[GATEWAY_NAME_LABEL];
  let unresolved: { path: string; name: string } | undefined;
  let gatewayClass: { path: string; name: string } | undefined;
  for (const [i, ref] of refs.entries()) {
    if ((ref.group ?? '') === GATEWAY_API_GROUP && ref.kind === 'GatewayClass')
      gatewayClass ??= { path: refPath(policy.spec, i), name: ref.name ?? '' };
    if (!isGatewayApiGateway(ref)) continue;
    if ((ref.namespace ?? '') !== '' && ref.namespace !== ns) continue;
    if (own !== undefined && ref.name === own) {
      return {
        verdict: 'selected',
        why: `${scope} and its targetRef names Gateway ${ref.name}, which this gateway is (${GATEWAY_NAME_LABEL}=${own})`,
      };
    }
    if (own === undefined) unresolved ??= { path: refPath(policy.spec, i), name: ref.name ?? '' };
  }
  if (gatewayClass !== undefined && root) {
    return {
      verdict: 'unresolved',
      path: gatewayClass.path,
      why: `it targets GatewayClass ${gatewayClass.name}, and sluice cannot tell which GatewayClass this gateway belongs to, so the policy does not apply; target the Gateway (${GATEWAY_NAME_LABEL}) or use a selector`,
    };
  }
  if (unresolved !== undefined) {
    return {
      verdict: 'unresolved',
      path: unresolved.path,
      why: `it targets Gateway API Gateway ${unresolved.name}, and this gateway's labels have no ${GATEWAY_NAME_LABEL} to say whether it is that Gateway, so (as in Istio) the policy does not apply; add ${GATEWAY_NAME_LABEL}=${unresolved.name} to --labels if it is`,
    };
  }
  return {
    verdict: 'not-selected',
    why:
      own === undefined
        ? 'its targetRefs name no Gateway API Gateway, and only those can select a gateway'
        : `its targetRefs do not name Gateway ${own}, which this gateway is (${GATEWAY_NAME_LABEL}=${own})`,
  };
}

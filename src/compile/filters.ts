/**
 * The filter list of each route table, in Istio's one order (istio/istio listener_builder.go):
 * ext_authz (CUSTOM) → jwt_authn → rbac AUDIT → rbac DENY → rbac ALLOW. The security policies
 * selecting this gateway are planned once per compile and placed per table, since what a rule can
 * see depends on the server (a client certificate only on MUTUAL servers). A gateway no policy
 * selects gets no list at all.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import type {
  CompiledPolicy,
  ExtAuthzFilter,
  ExtAuthzProvider,
  HttpFilter,
  JwtAuthnFilter,
  RbacFilter,
} from '../snapshot/types.ts';
import { compileJwtAuthn, type RequestAuthenticationResource } from './authn.ts';
import {
  placePolicy,
  planPolicies,
  rbacFiltersAt,
  type AuthorizationPolicyResource,
  type AuthzSite,
  type PolicyPlan,
} from './authz.ts';
import type { ClusterContext } from './clusters.ts';
import { extAuthzProviders } from './ext-authz.ts';
import { subjectOf, type Indexes } from './indexes.ts';
import { selectPolicy, type SelectablePolicy } from './policy-selection.ts';

export interface SecurityPlan {
  readonly jwt: JwtAuthnFilter | null;
  /** ALLOW, DENY and AUDIT policies. */
  readonly plans: readonly PolicyPlan[];
  readonly custom: { readonly provider: ExtAuthzProvider; readonly plans: readonly PolicyPlan[] } | null;
  /** Errors already reported (a policy placed at several tables reports once). */
  readonly reported: Set<string>;
}

/**
 * The RequestAuthentications and AuthorizationPolicies that apply to this gateway (AP-1, RA-1),
 * root namespace first, each group by name. One that does not apply is an info saying why; one
 * whose targetRef cannot be resolved to this gateway a warning.
 */
function selectedPolicies(
  set: ResourceSet,
  identity: GatewayIdentity,
  diagnostics: Diagnostic[],
): { ras: RequestAuthenticationResource[]; aps: AuthorizationPolicyResource[] } {
  const ras: RequestAuthenticationResource[] = [];
  const aps: AuthorizationPolicyResource[] = [];
  for (const r of set.resources) {
    if (r.kind !== 'RequestAuthentication' && r.kind !== 'AuthorizationPolicy') continue;
    const selection = selectPolicy(r as unknown as SelectablePolicy, identity);
    if (selection.verdict === 'selected') {
      if (r.kind === 'RequestAuthentication') ras.push(r as RequestAuthenticationResource);
      else aps.push(r as AuthorizationPolicyResource);
      continue;
    }
    diagnostics.push({
      level: selection.verdict === 'unresolved' ? 'warning' : 'info',
      code: 'SLUICE_CONFIG_NOT_APPLICABLE',
      subject: subjectOf(r),
      ...(selection.verdict === 'unresolved' ? { path: selection.path } : {}),
      message: `does not apply to this gateway: ${selection.why}`,
    });
  }
  const order = <T extends { namespace: string; name: string }>(a: T, b: T): number =>
    Number(b.namespace === identity.rootNamespace) - Number(a.namespace === identity.rootNamespace) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return { ras: ras.sort(order), aps: aps.sort(order) };
}

/** Plans the policies selecting this gateway; null when none does (then no table gets filters). */
export function planSecurity(
  set: ResourceSet,
  indexes: Indexes,
  clusters: ClusterContext,
  diagnostics: Diagnostic[],
): SecurityPlan | null {
  const { ras, aps } = selectedPolicies(set, indexes.identity, diagnostics);
  if (ras.length === 0 && aps.length === 0) return null;
  const identity = indexes.identity;
  const reported = new Set<string>();
  const jwt = compileJwtAuthn(ras, diagnostics);
  const plans = planPolicies(aps, diagnostics, reported);
  const custom = plans.filter((p) => p.action === 'CUSTOM');
  let customPlan: SecurityPlan['custom'] = null;
  if (custom.length > 0) {
    const mesh = set.resources.find((r) => r.kind === 'MeshConfig');
    const providers = extAuthzProviders(
      indexes.meshConfig,
      clusters,
      identity.rootNamespace,
      mesh === undefined ? undefined : subjectOf(mesh),
    );
    const names = [...new Set(custom.map((p) => p.resource.spec.provider?.name ?? ''))];
    const refuse = (p: PolicyPlan, message: string): void => {
      diagnostics.push({
        level: 'error',
        code: 'SLUICE_POLICY_UNENFORCEABLE',
        subject: subjectOf(p.resource),
        path: 'spec.provider.name',
        message: `${message}; the policy cannot be enforced exactly, so the change is refused`,
      });
    };
    if (names.length > 1) {
      // Istio allows one CUSTOM provider per workload unless a feature flag says otherwise.
      for (const p of custom)
        refuse(
          p,
          `CUSTOM policies for this gateway name ${names.length} providers (${names.join(', ')}); one is supported`,
        );
    } else {
      const name = names[0]!;
      const r = providers.get(name);
      if (r === undefined)
        for (const p of custom)
          refuse(
            p,
            `no extensionProviders entry named "${name}" with envoyExtAuthzHttp or envoyExtAuthzGrpc in MeshConfig (known: ${[...providers.keys()].join(', ') || 'none'})`,
          );
      else if (r.provider === null)
        for (const p of custom)
          refuse(p, `extension provider "${name}" is unusable: ${r.problems.join('; ')}`);
      else customPlan = { provider: r.provider, plans: custom };
    }
  }
  return { jwt, plans: plans.filter((p) => p.action !== 'CUSTOM'), custom: customPlan, reported };
}

/** The filters of the table at `site`, in the fixed order; undefined when none apply. */
export function filtersAt(
  plan: SecurityPlan | null,
  site: AuthzSite,
  diagnostics: Diagnostic[],
): readonly HttpFilter[] | undefined {
  if (plan === null) return undefined;
  const out: HttpFilter[] = [];
  if (plan.custom !== null) {
    const policies: CompiledPolicy[] = [];
    const shadow: CompiledPolicy[] = [];
    for (const p of plan.custom.plans)
      (p.dryRun ? shadow : policies).push(placePolicy(p, site, diagnostics, plan.reported));
    const f: ExtAuthzFilter = { kind: 'ext-authz', provider: plan.custom.provider, policies, shadow };
    out.push(f);
  }
  if (plan.jwt !== null) out.push(plan.jwt);
  out.push(...rbacFiltersAt(plan.plans, site, diagnostics, plan.reported));
  return out.length > 0 ? out : undefined;
}

/**
 * The RBAC filters a TCP site enforces per connection (plain TCP, TLS passthrough, TLS terminated
 * into a tcp route), with AP-8's TCP reading; undefined when none apply. JWT never applies to
 * TCP; a CUSTOM policy that could match here is refused (sluice has no ext_authz for TCP).
 */
export function tcpFiltersAt(
  plan: SecurityPlan | null,
  site: AuthzSite,
  diagnostics: Diagnostic[],
): readonly RbacFilter[] | undefined {
  if (plan === null) return undefined;
  if (plan.custom !== null) {
    for (const p of plan.custom.plans) {
      if (p.dryRun || placePolicy(p, site, diagnostics, plan.reported).rules.length === 0) continue;
      const key = `${p.resource.namespace}/${p.resource.name}|tcp|${site.port}`;
      if (plan.reported.has(key)) continue;
      plan.reported.add(key);
      diagnostics.push({
        level: 'error',
        code: 'SLUICE_POLICY_UNENFORCEABLE',
        subject: subjectOf(p.resource),
        path: 'spec.rules',
        message: `CUSTOM authorization would apply to TCP connections on ${site.where}, which sluice cannot send to an external authorizer; restrict the rules with to.operation.ports; the policy cannot be enforced exactly, so the change is refused`,
      });
    }
  }
  const out = rbacFiltersAt(plan.plans, site, diagnostics, plan.reported);
  return out.length > 0 ? out : undefined;
}

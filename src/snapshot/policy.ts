/**
 * The request pipeline's decisions that need no I/O, shared by the data plane
 * (dataplane/pipeline.ts) and `sluice explain`: which policy and rule match, what an RBAC filter
 * decides (AP-2), and the policy id Envoy logs.
 */
import type { CompiledPolicy, PolicyMatch, PolicyRequest, RbacFilter } from './types.ts';

// ---------------------------------------------------------------- evaluation (shared by the data plane and explain)

/** The first policy (in order) one of whose rules matches, or null. */
export function firstMatch(policies: readonly CompiledPolicy[], req: PolicyRequest): PolicyMatch | null {
  for (let p = 0; p < policies.length; p++) {
    const policy = policies[p]!;
    const rules = policy.rules;
    for (let r = 0; r < rules.length; r++) {
      if (rules[r]!.test(req)) return { policy, rule: rules[r]!.index };
    }
  }
  return null;
}

/** Envoy's RBAC policy id, as in `rbac_access_denied_matched_policy[…]` (AP-2). */
export function policyId(m: PolicyMatch | null): string {
  return m === null ? 'none' : `ns[${m.policy.namespace}]-policy[${m.policy.name}]-rule[${m.rule}]`;
}

/** What an RBAC filter decides: deny carries the matched policy (DENY) or null (ALLOW, none matched). */
export type RbacVerdict =
  | { readonly kind: 'allow'; readonly match: PolicyMatch | null }
  | { readonly kind: 'deny'; readonly match: PolicyMatch | null }
  | { readonly kind: 'audit'; readonly match: PolicyMatch | null };

/** AP-2 for one RBAC filter. */
export function decideRbac(filter: RbacFilter, req: PolicyRequest): RbacVerdict {
  const m = filter.policies.length === 0 ? null : firstMatch(filter.policies, req);
  switch (filter.action) {
    case 'AUDIT':
      return { kind: 'audit', match: m };
    case 'DENY':
      return m === null ? { kind: 'allow', match: null } : { kind: 'deny', match: m };
    case 'ALLOW':
      // Dry-run ALLOW policies alone make no enforced ALLOW filter (policies empty): allow.
      if (filter.policies.length === 0) return { kind: 'allow', match: null };
      return m === null ? { kind: 'deny', match: null } : { kind: 'allow', match: m };
  }
}

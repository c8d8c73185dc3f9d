/**
 * RequestAuthentication and AuthorizationPolicy are validated but not enforced yet. Every one that
 * applies to this gateway is a warning that says so in words, since traffic it would refuse is
 * served; one that does not apply is an info, and one whose targetRef cannot be resolved a warning.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import type { AuthorizationPolicySpec, RequestAuthenticationSpec } from '../model/security.ts';
import { describeUnsupported, unsupportedKind } from '../model/unsupported.ts';
import { subjectOf } from './indexes.ts';
import { selectPolicy, type SelectablePolicy } from './policy-selection.ts';

const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

type Policy =
  | Resource<'RequestAuthentication', RequestAuthenticationSpec>
  | Resource<'AuthorizationPolicy', AuthorizationPolicySpec>;

/** What Istio itself would do with the policy, when that is not "enforce it" (AP-1, AP-8). */
function istioOnlyObserves(p: Policy): string | null {
  if (p.kind !== 'AuthorizationPolicy') return null;
  if (p.annotations[DRY_RUN_ANNOTATION] === 'true')
    return 'it is a dry run, which Istio only logs and sluice does not log either';
  if (p.spec.action === 'AUDIT')
    return 'AUDIT only marks requests for audit logging, which sluice does not do';
  return null;
}

function detailOf(p: Policy): string {
  if (p.kind === 'AuthorizationPolicy' && p.spec.action === 'CUSTOM')
    return `the external authorizer ${p.spec.provider?.name ?? ''} is never asked; `;
  return '';
}

export function reportUnenforcedPolicies(
  set: ResourceSet,
  identity: GatewayIdentity,
  diagnostics: Diagnostic[],
): void {
  for (const r of set.resources) {
    if (r.kind !== 'RequestAuthentication' && r.kind !== 'AuthorizationPolicy') continue;
    const p = r as Policy;
    const selection = selectPolicy(p as SelectablePolicy, identity);
    const subject = subjectOf(p);
    if (selection.verdict === 'not-selected') {
      diagnostics.push({
        level: 'info',
        code: 'SLUICE_CONFIG_NOT_APPLICABLE',
        subject,
        message: `does not apply to this gateway: ${selection.why}`,
      });
      continue;
    }
    if (selection.verdict === 'unresolved') {
      diagnostics.push({
        level: 'warning',
        code: 'SLUICE_CONFIG_NOT_APPLICABLE',
        subject,
        path: selection.path,
        message: `does not apply to this gateway: ${selection.why}`,
      });
      continue;
    }
    const entry = unsupportedKind(p.kind);
    const observes = istioOnlyObserves(p);
    diagnostics.push({
      level: observes === null ? 'warning' : 'info',
      code: 'SLUICE_POLICY_NOT_ENFORCED',
      subject,
      message: `${entry ? describeUnsupported(entry) : `${p.kind} is not enforced by sluice`} (${observes === null ? detailOf(p) : `${observes}; `}it applies to this gateway: ${selection.why})`,
      unsupported: '*',
    });
  }
}

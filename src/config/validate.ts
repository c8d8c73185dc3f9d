import type { EndpointSliceSpec, SecretSpec } from '../model/kube.ts';
import type {
  DestinationRuleSpec,
  GatewaySpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
} from '../model/networking.ts';
import type { Resource } from '../model/resource.ts';
import type { RateLimitPolicySpec } from '../model/sluice.ts';
import type { AuthorizationPolicySpec, RequestAuthenticationSpec } from '../model/security.ts';
import { validateAuthorizationPolicy } from './kinds/authorization-policy/validate.ts';
import { validateDestinationRule } from './kinds/destination-rule/validate.ts';
import { validateEndpointSlice } from './kinds/endpoint-slice/validate.ts';
import { validateGateway } from './kinds/gateway/validate.ts';
import { validateRateLimitPolicy } from './kinds/rate-limit-policy/validate.ts';
import { validateRequestAuthentication } from './kinds/request-authentication/validate.ts';
import { type Finding, Findings } from './kinds/rules-common.ts';
import { validateSecret } from './kinds/secret/validate.ts';
import { validateServiceEntry } from './kinds/service-entry/validate.ts';
import { validateVirtualService } from './kinds/virtual-service/validate.ts';
import { findUnsupportedFields } from './unsupported-fields.ts';

export type { Finding } from './kinds/rules-common.ts';

/**
 * One resource's per-resource rules (each kind's live beside its schema in kinds/<kind>/), and a
 * warning for each thing it sets that sluice does not act on.
 */
export function validateResource(r: Resource): Finding[] {
  const f = new Findings();
  switch (r.kind) {
    case 'Gateway':
      validateGateway(r.name, r.spec as GatewaySpec, f);
      break;
    case 'VirtualService':
      validateVirtualService(r.namespace, r.spec as VirtualServiceSpec, f);
      break;
    case 'DestinationRule':
      validateDestinationRule(r.namespace, r.spec as DestinationRuleSpec, f);
      break;
    case 'ServiceEntry':
      validateServiceEntry(r.namespace, r.spec as ServiceEntrySpec, f);
      break;
    case 'RequestAuthentication':
      validateRequestAuthentication(r.namespace, r.spec as RequestAuthenticationSpec, f);
      break;
    case 'AuthorizationPolicy':
      validateAuthorizationPolicy(r.namespace, r.spec as AuthorizationPolicySpec, f);
      break;
    case 'RateLimitPolicy':
      validateRateLimitPolicy(r.spec as RateLimitPolicySpec, f);
      break;
    case 'Secret':
      validateSecret(r.spec as SecretSpec, f);
      break;
    case 'EndpointSlice':
      validateEndpointSlice(r.spec as EndpointSliceSpec, f);
      break;
    default:
      break;
  }
  return [...f.list, ...findUnsupportedFields(r)];
}

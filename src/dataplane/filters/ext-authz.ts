/**
 * CUSTOM authorization (AP-1): an external authorizer decides a request a CUSTOM policy's rules
 * match (Envoy's ext_authz behind Istio's shadow RBAC). Envoy's outcomes:
 *  - allowed (HTTP 200, gRPC OK): the request goes on with the headers the authorizer adds;
 *  - denied (any other answer from a working authorizer): its status, body and headers go back
 *    to the client, flag UAEX, details `ext_authz_denied`;
 *  - error (5xx, timeout, refused connection, a gRPC error): not a denial the authorizer wrote;
 *    `statusOnError` (default 403) unless `failOpen`, details `ext_authz_error`.
 */
import type { ExtAuthzFilter, PolicyMatch, PolicyRequest } from '../../snapshot/types.ts';
import { firstMatch } from '../../snapshot/policy.ts';
import { checkOverHttp } from './ext-authz-http.ts';
import type { CheckAnswer, CheckInput } from './ext-authz-check.ts';

export type ExtAuthzDecision =
  | { readonly kind: 'skip' }
  | { readonly kind: 'check'; readonly match: PolicyMatch; readonly dryRun: boolean };

/**
 * Whether the provider is called: a CUSTOM policy's rule matches (enforced), or only a dry-run
 * one does (Istio calls the authorizer for dry-run CUSTOM policies too; sluice logs the match
 * and does not call, so a dry run never denies).
 */
export function decideExtAuthz(filter: ExtAuthzFilter, req: PolicyRequest): ExtAuthzDecision {
  const m = firstMatch(filter.policies, req);
  if (m !== null) return { kind: 'check', match: m, dryRun: false };
  const s = filter.shadow.length === 0 ? null : firstMatch(filter.shadow, req);
  return s === null ? { kind: 'skip' } : { kind: 'check', match: s, dryRun: true };
}

/** Calls the provider; never rejects. */
export function callAuthorizer(filter: ExtAuthzFilter, input: CheckInput): Promise<CheckAnswer> {
  const p = filter.provider;
  const call =
    p.protocol === 'http'
      ? checkOverHttp(p, input)
      : import('./ext-authz-grpc.ts').then((m) => m.checkOverGrpc(p, input));
  return call.catch((err: unknown) => ({
    kind: 'error',
    reason: err instanceof Error ? err.message : String(err),
  }));
}

import type {
  PolicyTargetReference,
  RequestAuthenticationSpec,
  WorkloadSelector,
} from '../../../model/security.ts';
import type { FieldPath } from '../../field-path.ts';
import {
  type Findings,
  isHeaderName,
  SPEC,
  validateDurationValue,
  validateSelectorLabels,
} from '../rules-common.ts';

/**
 * RequestAuthentication rules Istio's validation enforces, and the selector/targetRef rules it
 * shares with AuthorizationPolicy.
 */

const GROUP = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const SUPPORTED_TARGETS = new Set([
  '/Service',
  'networking.istio.io/ServiceEntry',
  'gateway.networking.k8s.io/Gateway',
  'gateway.networking.k8s.io/GatewayClass',
]);

export function validateTargeting(
  namespace: string,
  spec: {
    selector?: WorkloadSelector;
    targetRef?: PolicyTargetReference;
    targetRefs?: readonly PolicyTargetReference[];
  },
  f: Findings,
): void {
  const set = [
    spec.selector ? 'selector' : '',
    spec.targetRef ? 'targetRef' : '',
    spec.targetRefs?.length ? 'targetRefs' : '',
  ].filter(Boolean);
  if (set.length > 1)
    f.error(
      [SPEC, set[1]!],
      `only one of targetRef, targetRefs or selector can be set; got ${set.join(' and ')}`,
    );
  validateSelectorLabels(spec.selector?.matchLabels, [SPEC, 'selector', 'matchLabels'], f);
  const check = (ref: PolicyTargetReference, p: FieldPath): void => {
    if (!ref.name) f.error([...p, 'name'], 'targetRef name is required');
    if (ref.kind === undefined || ref.kind === '') f.error([...p, 'kind'], 'targetRef kind is required');
    else if (!KIND.test(ref.kind))
      f.error([...p, 'kind'], `targetRef kind "${ref.kind}" is not a valid kind name`);
    if (ref.group !== undefined && !GROUP.test(ref.group))
      f.error([...p, 'group'], `targetRef group "${ref.group}" is not a valid API group`);
    if (ref.namespace !== undefined && ref.namespace !== '' && ref.namespace !== namespace) {
      f.error(
        [...p, 'namespace'],
        `cross namespace referencing is not currently supported: targetRef namespace "${ref.namespace}" is not the policy's namespace "${namespace}"`,
      );
    }
    if (
      ref.kind &&
      KIND.test(ref.kind) &&
      GROUP.test(ref.group ?? '') &&
      !SUPPORTED_TARGETS.has(`${ref.group ?? ''}/${ref.kind}`)
    ) {
      f.error(
        [...p, 'kind'],
        `targetRef must be a core Service, a networking.istio.io ServiceEntry or a gateway.networking.k8s.io Gateway/GatewayClass, got ${ref.group ?? ''}/${ref.kind}`,
      );
    }
  };
  if (spec.targetRef) check(spec.targetRef, [SPEC, 'targetRef']);
  spec.targetRefs?.forEach((r, i) => check(r, [SPEC, 'targetRefs', i]));
}

const CLAIM_HEADER = /^[-_A-Za-z0-9]+$/;

export function validateRequestAuthentication(
  namespace: string,
  spec: RequestAuthenticationSpec,
  f: Findings,
): void {
  validateTargeting(namespace, spec, f);
  spec.jwtRules?.forEach((rule, i) => {
    const p: FieldPath = [SPEC, 'jwtRules', i];
    if (rule.issuer === '' && !rule.jwksUri)
      f.error([...p, 'issuer'], 'issuer or jwksUri must be a non-empty string');
    rule.audiences?.forEach((a, j) => {
      if (a === '') f.error([...p, 'audiences', j], 'audience must be a non-empty string');
    });
    if (rule.jwksUri !== undefined) {
      let ok: boolean;
      try {
        const u = new URL(rule.jwksUri);
        ok = u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        ok = false;
      }
      if (!ok)
        f.error(
          [...p, 'jwksUri'],
          `jwksUri must be an http or https URL with a scheme, got ${JSON.stringify(rule.jwksUri)}`,
        );
    }
    if (rule.jwks !== undefined) {
      let keys: unknown;
      try {
        const parsed = JSON.parse(rule.jwks) as { keys?: unknown; kty?: unknown };
        // A JWK Set, or a single JWK (jwk.Parse takes both).
        keys = typeof parsed.kty === 'string' ? [parsed] : parsed.keys;
      } catch {
        keys = undefined;
      }
      if (!Array.isArray(keys))
        f.error([...p, 'jwks'], 'jwks is not a JSON Web Key Set (a JSON object with a "keys" list)');
    }
    rule.fromHeaders?.forEach((h, j) => {
      if (h.name === '') f.error([...p, 'fromHeaders', j, 'name'], 'header name is required');
      else if (!isHeaderName(h.name))
        f.error([...p, 'fromHeaders', j, 'name'], `invalid header name "${h.name}"`);
    });
    rule.fromParams?.forEach((q, j) => {
      if (q === '') f.error([...p, 'fromParams', j], 'parameter name must not be empty');
    });
    rule.fromCookies?.forEach((c, j) => {
      if (c === '') f.error([...p, 'fromCookies', j], 'cookie name must not be empty');
    });
    rule.outputClaimToHeaders?.forEach((o, j) => {
      if (!CLAIM_HEADER.test(o.header))
        f.error(
          [...p, 'outputClaimToHeaders', j, 'header'],
          `header must match ^[-_A-Za-z0-9]+$, got "${o.header}"`,
        );
      if (o.claim === '') f.error([...p, 'outputClaimToHeaders', j, 'claim'], 'claim must not be empty');
    });
    if (rule.outputPayloadToHeader !== undefined && !isHeaderName(rule.outputPayloadToHeader))
      f.error([...p, 'outputPayloadToHeader'], `invalid header name "${rule.outputPayloadToHeader}"`);
    validateDurationValue(rule.timeout, [...p, 'timeout'], f);
  });
}

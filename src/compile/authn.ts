/**
 * RequestAuthentication → the jwt_authn filter (RA-1..RA-7), as Istio's policy applier builds
 * it: every applicable policy's `jwtRules` joined and sorted by issuer (no de-duplication), each
 * rule one provider. Token locations default to `Authorization: Bearer` and `?access_token=`;
 * inline `jwks` is parsed here, `jwksUri` is fetched by the data plane.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Resource } from '../model/resource.ts';
import type { JWTRule, RequestAuthenticationSpec } from '../model/security.ts';
import type { JwtAuthnFilter, JwtProvider, TokenLocations } from '../snapshot/types.ts';
import { parseDuration } from '../util/duration.ts';
import { parseJwks } from '../util/jwks.ts';
import { subjectOf } from './indexes.ts';

export type RequestAuthenticationResource = Resource<'RequestAuthentication', RequestAuthenticationSpec>;

/** Istio's default JWKS fetch timeout (RA-6). */
const DEFAULT_JWKS_TIMEOUT_MS = 5_000;

/** Envoy's defaults when a provider names no location (RA-2). */
const DEFAULT_LOCATIONS: TokenLocations = {
  headers: [{ name: 'authorization', prefix: 'Bearer ' }],
  params: ['access_token'],
  cookies: [],
};

/** Claims Envoy always splits on spaces for matching (Istio adds them to every provider). */
const ALWAYS_SPACE_DELIMITED = ['permission', 'scope'];

function locationsOf(rule: JWTRule): TokenLocations {
  const headers = rule.fromHeaders ?? [];
  const params = rule.fromParams ?? [];
  const cookies = rule.fromCookies ?? [];
  if (headers.length === 0 && params.length === 0 && cookies.length === 0) return DEFAULT_LOCATIONS;
  return {
    headers: headers.map((h) => ({ name: h.name.toLowerCase(), prefix: h.prefix ?? '' })),
    params: [...params],
    cookies: [...cookies],
  };
}

function providerOf(
  r: RequestAuthenticationResource,
  rule: JWTRule,
  i: number,
  diagnostics: Diagnostic[],
): JwtProvider | null {
  const path = `spec.jwtRules[${i}]`;
  const error = (field: string, message: string): null => {
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_POLICY_UNENFORCEABLE',
      subject: subjectOf(r),
      path: `${path}.${field}`,
      message: `${message}; the policy cannot be enforced exactly, so the change is refused`,
    });
    return null;
  };
  let jwks: JwtProvider['jwks'];
  if (rule.jwks !== undefined && rule.jwks !== '') {
    const keys = parseJwks(rule.jwks);
    if (keys === null) return error('jwks', 'not a JSON Web Key Set');
    jwks = { kind: 'inline', keys };
  } else if (rule.jwksUri !== undefined && rule.jwksUri !== '') {
    let timeoutMs = DEFAULT_JWKS_TIMEOUT_MS;
    if (rule.timeout !== undefined) {
      const t = parseDuration(rule.timeout, { bareSeconds: false });
      if (!t.ok || t.ms <= 0) return error('timeout', `"${rule.timeout}" is not a positive duration`);
      timeoutMs = t.ms;
    }
    jwks = { kind: 'remote', uri: rule.jwksUri, timeoutMs };
  } else {
    // istiod would discover the JWKS through the issuer's OpenID configuration; sluice does not.
    return error(
      'jwksUri',
      'neither jwks nor jwksUri is set (OpenID discovery from the issuer is not supported); tokens of this issuer could not be verified',
    );
  }
  const claims = new Set(ALWAYS_SPACE_DELIMITED);
  for (const c of rule.spaceDelimitedClaims ?? []) claims.add(c);
  return {
    issuer: rule.issuer,
    audiences: [...(rule.audiences ?? [])],
    jwks,
    locations: locationsOf(rule),
    forwardOriginalToken: rule.forwardOriginalToken === true,
    outputPayloadToHeader:
      rule.outputPayloadToHeader === undefined || rule.outputPayloadToHeader === ''
        ? null
        : rule.outputPayloadToHeader.toLowerCase(),
    outputClaimToHeaders: (rule.outputClaimToHeaders ?? []).map((o) => ({
      header: o.header.toLowerCase(),
      claim: o.claim,
    })),
    spaceDelimitedClaims: [...claims].sort(),
    requireToken: rule.presence === 'REQUIRED',
    source: `RequestAuthentication ${r.namespace}/${r.name} ${path}`,
  };
}

/** The jwt_authn filter for the policies selecting this gateway; null when they have no rules. */
export function compileJwtAuthn(
  policies: readonly RequestAuthenticationResource[],
  diagnostics: Diagnostic[],
): JwtAuthnFilter | null {
  const providers: JwtProvider[] = [];
  for (const r of policies) {
    (r.spec.jwtRules ?? []).forEach((rule, i) => {
      const p = providerOf(r, rule, i, diagnostics);
      if (p !== null) providers.push(p);
    });
  }
  if (providers.length === 0) return null;
  // Istio sorts by issuer so the filter config is deterministic; stable for equal issuers.
  providers.sort((a, b) => (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0));
  const sanitize = new Set<string>();
  for (const p of providers) {
    if (p.outputPayloadToHeader !== null) sanitize.add(p.outputPayloadToHeader);
    for (const o of p.outputClaimToHeaders) sanitize.add(o.header);
  }
  return { kind: 'jwt-authn', providers, sanitizeHeaders: [...sanitize].sort() };
}

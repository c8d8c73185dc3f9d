/**
 * ingress-nginx's limit-rps / limit-rpm / limit-connections as rate-limit rules on the routes of
 * one Ingress. ingress-nginx (annotations/ratelimit, template buildRateLimit) gives each Ingress
 * its own zones keyed by `$binary_remote_addr` (empty, so never counted, for limit-whitelist
 * clients) and writes `limit_req zone=… burst=limit×multiplier nodelay` and `limit_conn zone limit`
 * into every location of the Ingress; over the limit nginx answers limit-req-status-code /
 * limit-conn-status-code, 503 by default.
 * The translation sized the token buckets; the rules' ids name the Ingress, so every route of it
 * counts in the same buckets, and they are Local: ingress-nginx counts per replica.
 */
import type { IngressNginxRoute } from '../model/networking.ts';
import type { CompiledRateLimitRule, RateLimitFilter, RateLimitSpec } from '../snapshot/types.ts';
import { cidrTest } from './authz-values.ts';
import type { MatchBuildProblem } from './match.ts';
import { keyPart } from './ratelimit.ts';

const PER_CLIENT = [keyPart({ remoteAddress: {} })];

export function compileIngressLimits(
  limits: NonNullable<IngressNginxRoute['rateLimit']>,
  path: string,
  problems: MatchBuildProblem[],
): RateLimitFilter {
  let exempt: CompiledRateLimitRule['exempt'] = null;
  if (limits.exempt.length > 0) {
    const t = cidrTest(limits.exempt);
    if (typeof t === 'string')
      problems.push({ path: `${path}.ingressNginx.rateLimit.exempt`, message: t, level: 'error' });
    else exempt = t;
  }
  const policy = `Ingress ${limits.ingress}`;
  const rule = (name: string, limit: RateLimitSpec): CompiledRateLimitRule => ({
    id: `${policy}/${name}`,
    policy,
    name,
    storage: 'Local',
    service: null,
    failureMode: 'Open',
    responseHeaders: 'None',
    limit,
    bucket: `ingress/${limits.ingress}/${name}|${limit.algorithm[0]}${limit.requests}/${limit.windowMs}/${limit.burst}`,
    shadow: false,
    applies: null,
    exempt,
    key: PER_CLIENT,
    rejectStatus: 503,
  });
  const bucket = (b: { requests: number; burst: number }, windowMs: number): RateLimitSpec => ({
    algorithm: 'TokenBucket',
    requests: b.requests,
    windowMs,
    burst: b.burst,
  });
  const rules: CompiledRateLimitRule[] = [];
  // buildRateLimit's order: limit_conn, then the rps zone, then the rpm zone.
  if (limits.connections > 0)
    rules.push(
      rule('limit-connections', {
        algorithm: 'InFlight',
        requests: limits.connections,
        windowMs: 0,
        burst: limits.connections,
      }),
    );
  if (limits.perSecond !== null) rules.push(rule('limit-rps', bucket(limits.perSecond, 1000)));
  if (limits.perMinute !== null) rules.push(rule('limit-rpm', bucket(limits.perMinute, 60_000)));
  // Local buckets: nothing to hand on to a later Redis call.
  return { kind: 'rate-limit', rules, defer: false };
}

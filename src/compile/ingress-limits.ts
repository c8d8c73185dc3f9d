/**
 * ingress-nginx's limit-rps / limit-rpm / limit-connections as rate-limit rules on the routes of
 * one Ingress. ingress-nginx (annotations/ratelimit, template buildRateLimit) gives each Ingress
 * its own zones keyed by `$binary_remote_addr` (empty, so never counted, for limit-whitelist
 * clients) and writes `limit_req zone=… burst=limit×multiplier nodelay` and `limit_conn zone limit`
 * into every location of the Ingress; over the limit nginx answers limit-req-status-code /
 * limit-conn-status-code, 503 by default.
 * The translation sized the token buckets; the rules' ids name the Ingress, so every route of it
 * counts in the same buckets. They are Local, as ingress-nginx counts per replica, unless
 * sluice.dev/limit-storage says Global: then the rate buckets count in Redis, shared by every
 * replica (failureMode Open: counted in the process while Redis does not answer); requests in
 * flight are always counted in the process.
 */
import type { IngressNginxRoute } from '../model/networking.ts';
import type { CompiledRateLimitRule, RateLimitFilter, RateLimitSpec } from '../snapshot/types.ts';
import { cidrTest } from './authz-values.ts';
import type { Indexes } from './indexes.ts';
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
  const rule = (
    name: string,
    limit: RateLimitSpec,
    storage: CompiledRateLimitRule['storage'] = limits.storage,
  ): CompiledRateLimitRule => ({
    id: `${policy}/${name}`,
    policy,
    name,
    storage,
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
      rule(
        'limit-connections',
        { algorithm: 'InFlight', requests: limits.connections, windowMs: 0, burst: limits.connections },
        'Local',
      ),
    );
  if (limits.perSecond !== null) rules.push(rule('limit-rps', bucket(limits.perSecond, 1000)));
  if (limits.perMinute !== null) rules.push(rule('limit-rpm', bucket(limits.perMinute, 60_000)));
  // A route's filter: no later rate-limit filter to hand a Redis call on to.
  return { kind: 'rate-limit', rules, defer: false };
}

/** Whether a route this gateway serves counts Ingress limits in Redis (the snapshot then needs MeshConfig redis). */
export function ingressLimitsGlobal(indexes: Indexes): boolean {
  for (const list of indexes.vsByGateway.values())
    for (const vs of list)
      if (vs.spec.http?.some((h) => h.ingressNginx?.rateLimit?.storage === 'Global') === true) return true;
  return false;
}

import type { RateLimitPolicySpec } from '../../../model/sluice.ts';
import type { FieldPath } from '../../field-path.ts';
import { checkIpOrCidr } from '../../validate-hosts.ts';
import { validateConditions, validateOperations } from '../authorization-policy/validate.ts';
import { type Findings, SPEC } from '../rules-common.ts';

/**
 * A sliding window keeps one timestamp per admitted request and key (that is what makes it
 * exact in every interval); above this many, TokenBucket or FixedWindow are the choice.
 */
export const SLIDING_WINDOW_MAX_REQUESTS = 10_000;

const KEY_FIELDS = [
  'remoteAddress',
  'requestHeader',
  'requestAuthClaim',
  'host',
  'path',
  'routeName',
  'constant',
];
/** `when` keys that read a verified client certificate: sluice has no mesh identity to key limits on. */
const PEER_KEYS = new Set([
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
]);
const GROUP = 'networking.istio.io';

export function validateRateLimitPolicy(spec: RateLimitPolicySpec, f: Findings): void {
  const refs = spec.targetRefs;
  if (refs.length === 0) f.error([SPEC, 'targetRefs'], 'at least one targetRef is required');
  let gatewayTarget = false;
  refs.forEach((ref, i) => {
    const p: FieldPath = [SPEC, 'targetRefs', i];
    if (ref.group !== undefined && ref.group !== GROUP)
      f.error([...p, 'group'], `must be ${GROUP} (Gateway or VirtualService), got "${ref.group}"`);
    if (ref.kind === 'Gateway') {
      gatewayTarget = true;
      if (ref.sectionName !== undefined)
        f.error(
          [...p, 'sectionName'],
          'sectionName names an http route of a VirtualService; a Gateway has none',
        );
    } else if (ref.kind !== 'VirtualService')
      f.error([...p, 'kind'], `must be Gateway or VirtualService, got "${ref.kind}"`);
  });
  if (spec.phase === 'BeforeAuth' && refs.some((r) => r.kind !== 'Gateway'))
    f.error(
      [SPEC, 'phase'],
      'BeforeAuth needs Gateway targetRefs only: a VirtualService route is chosen after authorization',
    );
  const storage = spec.storage ?? 'Local';
  if (storage === 'Service' && spec.service === undefined)
    f.error([SPEC, 'service'], 'storage Service needs service (host, port, domain)');
  if (storage !== 'Service' && spec.service !== undefined)
    f.warn(
      [SPEC, 'service'],
      `service is used with storage Service only; with ${storage} it has no effect`,
      'SLUICE_CONFIG_UNSUPPORTED',
    );
  if (spec.failureMode !== undefined && storage === 'Local')
    f.warn(
      [SPEC, 'failureMode'],
      'failureMode applies to storage Global and Service only; Local storage never fails, so it has no effect',
      'SLUICE_CONFIG_UNSUPPORTED',
    );
  if (spec.rules.length === 0) f.error([SPEC, 'rules'], 'at least one rule is required');
  const names = new Set<string>();
  spec.rules.forEach((rule, i) => {
    const rp: FieldPath = [SPEC, 'rules', i];
    if (names.has(rule.name)) f.error([...rp, 'name'], `duplicate rule name "${rule.name}"`);
    names.add(rule.name);
    if (rule.to !== undefined && rule.to.length === 0) f.error([...rp, 'to'], '`to` must not be empty');
    validateOperations(rule.to, rp, f);
    validateConditions(rule.when, rp, f);
    rule.when?.forEach((c, j) => {
      if (PEER_KEYS.has(c.key))
        f.error(
          [...rp, 'when', j, 'key'],
          `${c.key} needs a verified mesh client certificate, which a RateLimitPolicy cannot rely on`,
        );
    });
    if (spec.phase === 'BeforeAuth') {
      rule.when?.forEach((c, j) => {
        if (c.key.startsWith('request.auth.'))
          f.error([...rp, 'when', j, 'key'], `${c.key} is never set BeforeAuth: jwt_authn has not run yet`);
      });
      rule.key?.forEach((k, j) => {
        if (k.requestAuthClaim !== undefined)
          f.error(
            [...rp, 'key', j, 'requestAuthClaim'],
            'JWT claims are never set BeforeAuth: jwt_authn has not run yet',
          );
      });
    }
    rule.key?.forEach((k, j) => {
      const set = KEY_FIELDS.filter((name) => (k as Record<string, unknown>)[name] !== undefined);
      if (set.length !== 1)
        f.error(
          [...rp, 'key', j],
          `exactly one of ${KEY_FIELDS.join(', ')} must be set, got ${set.length === 0 ? 'none' : set.join(', ')}`,
        );
      if (k.routeName !== undefined && gatewayTarget)
        f.error(
          [...rp, 'key', j, 'routeName'],
          "routeName needs VirtualService targetRefs: a Gateway's rules count requests before the route is chosen",
        );
    });
    rule.exempt?.remoteIpBlocks?.forEach((v, j) => {
      const bad = checkIpOrCidr(v);
      if (bad) f.error([...rp, 'exempt', 'remoteIpBlocks', j], bad);
    });
    const l = rule.limit;
    if (storage === 'Service') {
      // The service counts: what a sluice store would need has no meaning there.
      if (rule.algorithm !== undefined)
        f.error([...rp, 'algorithm'], 'with storage Service the rate limit service decides how it counts');
      for (const k of ['burst', 'inFlight'] as const)
        if (l?.[k] !== undefined)
          f.error([...rp, 'limit', k], `${k} cannot be sent to a rate limit service (storage Service)`);
      if (l !== undefined && (l.requests === undefined) !== (l.unit === undefined))
        f.error([...rp, 'limit'], 'a limit override needs requests and unit together');
      return;
    }
    if (l === undefined) {
      f.error([...rp, 'limit'], 'required (only storage Service can leave the limit to the service)');
      return;
    }
    if (l.inFlight !== undefined) {
      const extra = (['requests', 'unit', 'burst'] as const).filter((k) => l[k] !== undefined);
      if (extra.length > 0)
        f.error(
          [...rp, 'limit'],
          `inFlight stands alone; remove ${extra.join(', ')} or make it a rule of its own`,
        );
      if (rule.algorithm !== undefined)
        f.error([...rp, 'algorithm'], 'an inFlight limit counts requests being served; it has no algorithm');
      if (spec.storage === 'Global')
        f.error(
          [...rp, 'limit', 'inFlight'],
          'inFlight limits are counted per process (storage Local); Global in-flight limits are not implemented',
        );
      return;
    }
    if (l.requests === undefined || l.unit === undefined) {
      f.error([...rp, 'limit'], 'needs requests and unit (or inFlight alone)');
      return;
    }
    const algorithm = rule.algorithm ?? 'TokenBucket';
    if (l.burst !== undefined && algorithm !== 'TokenBucket')
      f.warn(
        [...rp, 'limit', 'burst'],
        `burst is used by TokenBucket only; ${algorithm} admits limit.requests per window and ignores it`,
        'SLUICE_CONFIG_UNSUPPORTED',
      );
    if (algorithm === 'SlidingWindow' && l.requests > SLIDING_WINDOW_MAX_REQUESTS)
      f.error(
        [...rp, 'limit', 'requests'],
        `SlidingWindow keeps one timestamp per admitted request; at most ${SLIDING_WINDOW_MAX_REQUESTS}, got ${l.requests} (use TokenBucket or FixedWindow)`,
      );
  });
}

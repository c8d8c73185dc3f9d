/**
 * Envoy's slow start for ROUND_ROBIN and LEAST_REQUEST (load_balancer_impl.cc
 * EdfLoadBalancerBase::applySlowStartFactor): while an endpoint is younger than the window its
 * weight is scaled by max(minWeight, (age / window)^(1 / aggression)), and least request divides
 * each weight by its requests in flight + 1 (active_request_bias 1). Envoy schedules those
 * weights with EDF; sluice uses smooth weighted round robin over the same weights, which gives
 * each endpoint the same share. It runs only while some endpoint is warming up; after that the
 * usual balancers take over.
 */
import type { WarmupPolicy } from '../../snapshot/types.ts';
import type { ClusterState } from '../cluster-state.ts';
import type { UpstreamHost } from '../pools.ts';

/** The weight multiplier of an endpoint `ageMs` after it joined. */
export function slowStartFactor(w: WarmupPolicy, ageMs: number): number {
  if (ageMs >= w.windowMs) return 1;
  const t = Math.max(1, ageMs) / w.windowMs;
  return Math.max(w.minWeight, w.aggression === 1 ? t : Math.pow(t, 1 / w.aggression));
}

/** Records when each host of a new host set joined (kept across sets), and until when one warms. */
export function noteJoins(
  state: ClusterState,
  hosts: readonly UpstreamHost[],
  w: WarmupPolicy | undefined,
  nowMs: number,
): void {
  if (w === undefined) return;
  const joined = state.joinedMs;
  const present = new Set<string>();
  let newest = 0;
  for (const h of hosts) {
    present.add(h.hostPort);
    let at = joined.get(h.hostPort);
    if (at === undefined) {
      at = nowMs;
      joined.set(h.hostPort, at);
    }
    newest = Math.max(newest, at);
  }
  // An endpoint that leaves and comes back starts over, as a new Envoy host does.
  for (const k of joined.keys()) if (!present.has(k)) joined.delete(k);
  for (const k of state.warmCredit.keys()) if (!present.has(k)) state.warmCredit.delete(k);
  state.warmingUntilMs = hosts.length === 0 ? 0 : newest + w.windowMs;
}

export function pickWarming(
  hosts: readonly UpstreamHost[],
  weights: readonly number[],
  state: ClusterState,
  w: WarmupPolicy,
  leastRequest: boolean,
  nowMs: number,
): UpstreamHost {
  const credit = state.warmCredit;
  let total = 0;
  let best = 0;
  let bestCredit = -Infinity;
  for (let i = 0; i < hosts.length; i++) {
    const h = hosts[i]!;
    let weight = weights[i]! * slowStartFactor(w, nowMs - (state.joinedMs.get(h.hostPort) ?? 0));
    if (leastRequest) weight /= h.active + 1;
    const c = (credit.get(h.hostPort) ?? 0) + weight;
    credit.set(h.hostPort, c);
    total += weight;
    if (c > bestCredit) {
      bestCredit = c;
      best = i;
    }
  }
  credit.set(hosts[best]!.hostPort, bestCredit - total);
  return hosts[best]!;
}

/**
 * Balancer and breaker state per cluster key, so it survives snapshot swaps that keep a
 * cluster's settings (DESIGN §5).
 */
export interface BalancerState {
  /** Round-robin cursor. */
  next: number;
  /** Requests in flight on the cluster (DR-6 maxRequests). */
  active: number;
}

const states = new Map<string, BalancerState>();

export function balancerStateFor(clusterKey: string): BalancerState {
  let s = states.get(clusterKey);
  if (s === undefined) {
    s = { next: 0, active: 0 };
    states.set(clusterKey, s);
  }
  return s;
}

/** Drops the state of clusters no running gateway uses any more. */
export function forgetBalancerStates(inUse: (clusterKey: string) => boolean): void {
  for (const key of states.keys()) if (!inUse(key)) states.delete(key);
}

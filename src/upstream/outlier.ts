/**
 * Outlier detection as Envoy does it for Istio's outlierDetection (DR-7; Envoy
 * source/common/upstream/outlier_detection_impl.cc): consecutive counters per endpoint, an
 * ejection the moment one reaches its threshold (if maxEjectionPercent allows), and a check every
 * `interval` that brings endpoints back once baseEjectionTime × their backoff has passed.
 * Ejected endpoints leave the balancer's usable set; the records live in the cluster state, so
 * they survive reloads that keep the cluster.
 */
import type { OutlierPolicy } from '../snapshot/types.ts';
import type { ClusterState, EndpointHealth } from './cluster-state.ts';

/** How an attempt ended, as the detector counts it. */
export type LocalOutcome = 'connect-failure' | 'timeout' | 'connected';

/** A real upstream response status (Envoy's putHttpResponseCode). */
export function recordStatus(state: ClusterState, h: EndpointHealth, status: number, now: number): void {
  const policy = state.outlier;
  if (policy === null) return;
  if (status < 500 || status > 599) {
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    return;
  }
  if (status === 502 || status === 503 || status === 504) {
    if (++h.consecutiveGateway === policy.consecutiveGateway) {
      h.consecutiveGateway = 0;
      eject(state, h, now);
    }
  } else h.consecutiveGateway = 0;
  if (++h.consecutive5xx === policy.consecutive5xx) {
    h.consecutive5xx = 0;
    eject(state, h, now);
  }
}

/**
 * A failure or success of the gateway's own making (connect failure, reset, timeout), or a
 * connection made. Without splitExternalLocalOriginErrors Envoy counts failures as 503 (504 for
 * a timeout) responses; with it they have their own counter, and a connection made resets it.
 */
export function recordLocal(
  state: ClusterState,
  h: EndpointHealth,
  outcome: LocalOutcome,
  now: number,
): void {
  const policy = state.outlier;
  if (policy === null) return;
  if (policy.consecutiveLocalOrigin === 0) {
    if (outcome !== 'connected') recordStatus(state, h, outcome === 'timeout' ? 504 : 503, now);
    return;
  }
  if (outcome === 'connected') {
    h.consecutiveLocalOrigin = 0;
    return;
  }
  if (++h.consecutiveLocalOrigin === policy.consecutiveLocalOrigin) {
    h.consecutiveLocalOrigin = 0;
    eject(state, h, now);
  }
}

/**
 * Envoy's ejectHost: allowed only while the ejected share stays within maxEjectionPercent
 * (counted after this ejection, Envoy ≥ 1.27; Istio does not set always_eject_one_host).
 */
function eject(state: ClusterState, h: EndpointHealth, now: number): void {
  const policy = state.outlier!;
  if (h.ejected) return;
  const hosts = Math.max(state.hostCount, 1);
  if ((100 * (state.ejectedCount + 1)) / hosts > policy.maxEjectionPercent) return;
  h.ejected = true;
  h.ejectedAtMs = now;
  h.ejections += 1;
  if (h.backoff * policy.baseEjectionMs < policy.maxEjectionMs + policy.baseEjectionMs) h.backoff += 1;
  state.ejectedCount += 1;
  state.healthVersion += 1;
  if (state.outlierTimer === null) {
    state.outlierTimer = setInterval(onInterval, policy.intervalMs, state);
    state.outlierTimer.unref();
  }
}

/** Envoy's onIntervalTimer: return endpoints whose time is up, let healthy ones' backoff decay. */
export function checkEjections(state: ClusterState, now: number): void {
  const policy = state.outlier;
  if (policy === null) return;
  let busy = false;
  for (const h of state.health.values()) {
    if (h.ejected) {
      if (Math.min(policy.baseEjectionMs * h.backoff, policy.maxEjectionMs) <= now - h.ejectedAtMs) {
        h.ejected = false;
        h.returnedAtMs = now;
        // Counters start afresh, so a few new errors do not eject it again at once.
        h.consecutive5xx = 0;
        h.consecutiveGateway = 0;
        h.consecutiveLocalOrigin = 0;
        state.ejectedCount -= 1;
        state.healthVersion += 1;
      } else busy = true;
      continue;
    }
    if (h.backoff > 0) {
      if (h.returnedAtMs !== 0 && now - h.returnedAtMs >= policy.intervalMs) h.backoff -= 1;
      if (h.backoff > 0) busy = true;
    }
  }
  // Nothing ejected and no backoff to decay: the timer sleeps until the next ejection.
  if (!busy && state.outlierTimer !== null) {
    clearInterval(state.outlierTimer);
    state.outlierTimer = null;
  }
}

function onInterval(state: ClusterState): void {
  checkEjections(state, Date.now());
}

/** Whether the policy is in panic: too few usable endpoints, so all of them are used (minHealthPercent). */
export function inPanic(policy: OutlierPolicy, usable: number, total: number): boolean {
  return total > 0 && (100 * usable) / total < policy.minHealthPercent;
}

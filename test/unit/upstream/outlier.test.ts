/**
 * DR-7 outlier detection as Envoy's detector decides (outlier_detection_impl.cc), with the clock
 * in the test's hands: thresholds, what counts, maxEjectionPercent after the ejection, backoff ×
 * ejections capped at max(300 s, base), decay while healthy.
 */
import { describe, expect, it } from 'vitest';
import { healthOf, newClusterState, type ClusterState } from '../../../src/upstream/cluster-state.ts';
import { checkEjections, inPanic, recordLocal, recordStatus } from '../../../src/upstream/outlier.ts';
import type { OutlierPolicy } from '../../../src/snapshot/types.ts';

const POLICY: OutlierPolicy = {
  consecutive5xx: 3,
  consecutiveGateway: 0,
  consecutiveLocalOrigin: 0,
  intervalMs: 1000,
  baseEjectionMs: 10_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
};

function cluster(policy: Partial<OutlierPolicy> = {}, hosts = 4): ClusterState {
  const st = newClusterState('t', { ...POLICY, ...policy });
  st.hostCount = hosts;
  return st;
}

function stop(st: ClusterState): void {
  if (st.outlierTimer !== null) clearInterval(st.outlierTimer);
  st.outlierTimer = null;
}

describe('DR-7 outlier detection', () => {
  it('consecutive 5xx eject at the threshold; a success in between starts over', () => {
    const st = cluster();
    const h = healthOf(st, 'a:1');
    recordStatus(st, h, 500, 0);
    recordStatus(st, h, 500, 0);
    recordStatus(st, h, 200, 0);
    recordStatus(st, h, 500, 0);
    recordStatus(st, h, 502, 0);
    expect(h.ejected).toBe(false);
    recordStatus(st, h, 503, 0);
    expect(h.ejected).toBe(true);
    expect(st.ejectedCount).toBe(1);
    stop(st);
  });

  it('4xx reset the counters; gateway errors count only 502/503/504 and only when set', () => {
    const st = cluster({ consecutive5xx: 0, consecutiveGateway: 2 });
    const h = healthOf(st, 'a:1');
    recordStatus(st, h, 500, 0);
    recordStatus(st, h, 500, 0);
    expect(h.ejected).toBe(false);
    recordStatus(st, h, 502, 0);
    recordStatus(st, h, 404, 0);
    recordStatus(st, h, 504, 0);
    expect(h.ejected).toBe(false);
    recordStatus(st, h, 503, 0);
    expect(h.ejected).toBe(true);
    stop(st);
  });

  it('local failures count as 503/504 unless split; split, they have their own counter and a connection resets it', () => {
    const plain = cluster();
    const a = healthOf(plain, 'a:1');
    recordLocal(plain, a, 'connect-failure', 0);
    recordLocal(plain, a, 'timeout', 0);
    recordLocal(plain, a, 'connected', 0);
    recordLocal(plain, a, 'connect-failure', 0);
    expect(a.ejected).toBe(true);
    stop(plain);
    const split = cluster({ consecutive5xx: 0, consecutiveLocalOrigin: 2 });
    const b = healthOf(split, 'b:1');
    recordStatus(split, b, 500, 0);
    recordLocal(split, b, 'connect-failure', 0);
    recordLocal(split, b, 'connected', 0);
    recordLocal(split, b, 'timeout', 0);
    expect(b.ejected).toBe(false);
    recordLocal(split, b, 'connect-failure', 0);
    expect(b.ejected).toBe(true);
    stop(split);
  });

  it('maxEjectionPercent counts the ejection about to happen: 10 % of 3 hosts ejects none, 34 % one', () => {
    const none = cluster({ maxEjectionPercent: 10 }, 3);
    const x = healthOf(none, 'x:1');
    for (let i = 0; i < 3; i++) recordStatus(none, x, 500, 0);
    expect(x.ejected).toBe(false);
    const one = cluster({ maxEjectionPercent: 34 }, 3);
    const [p, q] = [healthOf(one, 'p:1'), healthOf(one, 'q:1')];
    for (let i = 0; i < 3; i++) recordStatus(one, p, 500, 0);
    for (let i = 0; i < 3; i++) recordStatus(one, q, 500, 0);
    expect([p.ejected, q.ejected]).toEqual([true, false]);
    stop(one);
  });

  it('an ejection lasts baseEjectionTime × ejections in a row, capped; healthy intervals shrink it again', () => {
    const st = cluster();
    const h = healthOf(st, 'a:1');
    const eject = (now: number): void => {
      for (let i = 0; i < 3; i++) recordStatus(st, h, 500, now);
    };
    eject(0);
    checkEjections(st, 9_999);
    expect(h.ejected).toBe(true);
    checkEjections(st, 10_000);
    expect(h.ejected).toBe(false);
    eject(10_000);
    checkEjections(st, 29_999);
    expect(h.ejected).toBe(true);
    checkEjections(st, 30_000);
    expect(h.ejected).toBe(false);
    expect(h.backoff).toBe(2);
    // Healthy for two intervals after its return: the multiplier decays back to 0.
    checkEjections(st, 31_000);
    checkEjections(st, 32_000);
    expect(h.backoff).toBe(0);
    // Many ejections in a row: never longer than max(300 s, base).
    let now = 40_000;
    for (let i = 0; i < 40; i++) {
      eject(now);
      now += Math.min(h.backoff * 10_000, 300_000);
      checkEjections(st, now);
      expect(h.ejected).toBe(false);
    }
    expect(h.ejections).toBe(42);
    stop(st);
  });

  it('panic below minHealthPercent', () => {
    expect(inPanic({ ...POLICY, minHealthPercent: 50 }, 1, 3)).toBe(true);
    expect(inPanic({ ...POLICY, minHealthPercent: 50 }, 2, 3)).toBe(false);
    expect(inPanic(POLICY, 0, 3)).toBe(false);
  });
});

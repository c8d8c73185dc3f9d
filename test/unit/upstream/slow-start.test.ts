import { describe, expect, it } from 'vitest';
import { noteJoins, pickWarming, slowStartFactor } from '../../../src/upstream/balancer/slow-start.ts';
import { newClusterState } from '../../../src/upstream/cluster-state.ts';
import type { UpstreamHost } from '../../../src/upstream/pools.ts';
import type { WarmupPolicy } from '../../../src/snapshot/types.ts';

const W: WarmupPolicy = { windowMs: 10_000, aggression: 1, minWeight: 0.1 };

function hosts(...names: string[]): UpstreamHost[] {
  return names.map((hostPort) => ({ hostPort, active: 0 }) as unknown as UpstreamHost);
}

describe('slow start (Envoy SlowStartConfig)', () => {
  it('weight factor: (age / window)^(1/aggression), at least minWeight, 1 once the window is over', () => {
    expect(slowStartFactor(W, 5_000)).toBeCloseTo(0.5);
    expect(slowStartFactor(W, 500)).toBeCloseTo(0.1);
    expect(slowStartFactor(W, 0)).toBeCloseTo(0.1);
    expect(slowStartFactor(W, 10_000)).toBe(1);
    expect(slowStartFactor({ ...W, aggression: 2 }, 2_500)).toBeCloseTo(0.5);
    expect(slowStartFactor({ ...W, minWeight: 0 }, 0)).toBeCloseTo(1 / 10_000);
  });

  it('round robin shares follow the factors: an endpoint at a quarter of its window gets 0.25 / 1.25', () => {
    const state = newClusterState('k', null);
    const hs = hosts('a:1', 'b:1');
    noteJoins(state, hs.slice(0, 1), W, 0);
    noteJoins(state, hs, W, 20_000);
    expect(state.warmingUntilMs).toBe(30_000);
    let b = 0;
    for (let i = 0; i < 1000; i++)
      if (pickWarming(hs, [1, 1], state, W, false, 22_500).hostPort === 'b:1') b++;
    expect(b).toBe(200);
  });

  it('least request divides each weight by its requests in flight + 1', () => {
    const state = newClusterState('k', null);
    const hs = hosts('a:1', 'b:1');
    noteJoins(state, hs, W, 0);
    (hs[0] as { active: number }).active = 3;
    let b = 0;
    for (let i = 0; i < 1000; i++) if (pickWarming(hs, [1, 1], state, W, true, 5_000).hostPort === 'b:1') b++;
    // Equal ages; a has 3 in flight: weights 1/4 and 1, so b gets 4 in 5.
    expect(b).toBe(800);
  });

  it('an endpoint that leaves and comes back starts its window over', () => {
    const state = newClusterState('k', null);
    const hs = hosts('a:1', 'b:1');
    noteJoins(state, hs, W, 0);
    noteJoins(state, hs.slice(0, 1), W, 50_000);
    noteJoins(state, hs, W, 60_000);
    expect(state.joinedMs.get('a:1')).toBe(0);
    expect(state.joinedMs.get('b:1')).toBe(60_000);
    expect(state.warmingUntilMs).toBe(70_000);
  });
});

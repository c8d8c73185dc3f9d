import { describe, expect, it } from 'vitest';
import { pickLeastRequest } from '../../../src/upstream/balancer/least-request.ts';
import { pickRoundRobin } from '../../../src/upstream/balancer/round-robin.ts';
import { pickRandom } from '../../../src/upstream/balancer/random.ts';
import type { UpstreamHost } from '../../../src/upstream/pools.ts';

function hosts(n: number): UpstreamHost[] {
  return Array.from({ length: n }, (_, i) => ({ key: `h${i}`, active: 0 }) as unknown as UpstreamHost);
}

describe('DR-4 balancers', () => {
  it('ROUND_ROBIN cycles in order', () => {
    const hs = hosts(3);
    const st = { next: 0, active: 0 };
    expect([0, 1, 2, 3].map(() => pickRoundRobin(hs, st).key)).toEqual(['h0', 'h1', 'h2', 'h0']);
  });
  it('LEAST_REQUEST (two choices) never picks the busiest of two', () => {
    const hs = hosts(2);
    hs[0]!.active = 5;
    for (let i = 0; i < 50; i++) expect(pickLeastRequest(hs).key).toBe('h1');
  });
  it('LEAST_REQUEST spreads evenly when idle and avoids a loaded host', () => {
    const hs = hosts(4);
    hs[3]!.active = 100;
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const k = pickLeastRequest(hs).key;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    // h3 wins only when both choices are h3, which two distinct choices never are.
    expect(counts.get('h3') ?? 0).toBe(0);
    for (const k of ['h0', 'h1', 'h2']) expect(counts.get(k)!).toBeGreaterThan(1000);
  });
  it('RANDOM covers every host', () => {
    const hs = hosts(3);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) seen.add(pickRandom(hs).key);
    expect(seen.size).toBe(3);
  });
});

/**
 * Local rate limits hold for the whole process (issue 12 item 4): with `--workers 2` both workers
 * draw on one budget, the primary's, so a limit of N admits N, not 2N.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';
import { startServeChild } from '../support/serve-child.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const LIMIT = 200;

const POLICY = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: limits, namespace: test }
spec:
  targetRefs: [{ kind: VirtualService, name: shop }]
  rules:
  - name: shared
    # A day's budget, refilled at ${LIMIT} a day: the test's minute adds no token worth counting.
    limit: { requests: ${LIMIT}, unit: Day }
`;

/** Sends `n` requests, `concurrency` at a time, each on a new connection (spread over the workers). */
async function send(port: number, n: number, concurrency: number): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      next++;
      const r = await request(port, '/');
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return counts;
}

describe('Local rate limits with --workers 2', () => {
  it('the workers share one budget: N admitted in all, by both workers', async () => {
    const up = await startEcho({ name: 'a' });
    cleanups.push(() => up.close());
    const port = await freePort();
    const dir = await makeConfigDir({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: up.port }),
      'route.yaml': routeYaml(1, 'a'),
      'policy.yaml': POLICY,
    });
    cleanups.push(() => dir.remove());
    const child = await startServeChild(dir.dir, ['--workers', '2']);
    cleanups.push(() => child.proc.stop('SIGKILL'));
    await until(async () => (await child.readiness()) === 200, { timeoutMs: 20_000, what: 'ready' });

    const counts = await send(port, 2 * LIMIT, 16);
    expect([...counts.keys()].sort()).toEqual([200, 429]);
    // Every decision is the primary's, so the shared budget is exact (the issue allows ±5 %).
    expect(counts.get(200)).toBe(LIMIT);
    expect(up.seen).toHaveLength(LIMIT);
    const workers = await child.admin<{ requests: number | null }[]>('/workers');
    expect(workers).toHaveLength(2);
    for (const w of workers) expect(w.requests).toBeGreaterThan(LIMIT / 4);
  });
});

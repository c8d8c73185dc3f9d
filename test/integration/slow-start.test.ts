/**
 * DR-4 `warmup` (Envoy's slow start) against real upstreams: an endpoint a reload adds to a
 * ROUND_ROBIN cluster first gets a small share, then its full one once its window is over. The
 * shares are exact for round robin (smooth weighted round robin over the slow-start weights), so
 * the bounds below only leave room for how long the requests take on a busy machine.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { snapshotFromYaml, startGatewayFromYaml } from '../support/gateway.ts';
import { startSteered, type SteeredUpstream } from '../support/upstreams.ts';
import { policyYaml } from '../support/policy-config.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const WINDOW_MS = 3000;
const RULES = `  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN, warmup: { duration: ${WINDOW_MS / 1000}s, minimumPercent: 10 } } }`;

function send(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', agent: false, headers: { host: 'example.com' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The share of `n` requests (sent one after another) that `up` answered. */
async function shareOf(port: number, up: SteeredUpstream, n: number): Promise<number> {
  const before = up.requests;
  for (let i = 0; i < n; i++) expect(await send(port)).toBe(200);
  return (up.requests - before) / n;
}

describe('DR-4 warmup (slow start)', () => {
  it('an endpoint a reload adds starts near minimumPercent of its share and reaches it after the window', async () => {
    const ups = await Promise.all(['old', 'new'].map((name) => startSteered({ name })));
    for (const u of ups) cleanups.push(() => u.close());
    const [old, fresh] = [ups[0]!, ups[1]!];
    const yamlWith = (members: SteeredUpstream[]): string =>
      policyYaml({ name: 'shop', ports: members.map((u) => u.port), rules: RULES });
    const joined = Date.now();
    const gw = await startGatewayFromYaml(yamlWith([old]));
    cleanups.push(() => gw.close());
    expect(await shareOf(gw.port(), old, 5)).toBe(1);
    // The condition is time itself: slow start is measured from when the endpoint joined, so the
    // first endpoint must have outlived its window before the second one joins.
    await until(() => (Date.now() - joined > WINDOW_MS + 100 ? true : null), { timeoutMs: WINDOW_MS + 5000 });

    await gw.gateway.apply(snapshotFromYaml(yamlWith([old, fresh])));
    const started = Date.now();
    const early = await shareOf(gw.port(), fresh, 40);
    const took = Date.now() - started;
    // Its weight is max(10 %, age / window) of the old one's while the requests ran: without slow
    // start round robin gives it exactly half.
    const bound = Math.max(0.1, took / WINDOW_MS);
    expect(early).toBeLessThanOrEqual(bound / (1 + bound) + 0.05);
    expect(early).toBeLessThan(0.4);
    expect(early).toBeGreaterThan(0);

    await until(async () => ((await shareOf(gw.port(), fresh, 20)) === 0.5 ? true : null), {
      timeoutMs: WINDOW_MS + 10_000,
      what: 'the new endpoint at its full share',
    });
    expect(Date.now() - started).toBeGreaterThan(WINDOW_MS * 0.5);
  });
});

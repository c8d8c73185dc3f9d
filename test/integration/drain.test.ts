/**
 * Graceful drain (issue 4 item 3) and SIGHUP, with sluice as a real child process receiving real
 * signals.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { startPacedLoad } from '../support/paced-load.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';
import { startServeChild, type ServeChild } from '../support/serve-child.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

async function setup(
  upstreamDelayMs: number,
  args: readonly string[],
): Promise<{ child: ServeChild; port: number; upstream: Upstream }> {
  const a = await startEcho({ name: 'a', delayMs: upstreamDelayMs });
  cleanups.push(() => a.close());
  const port = await freePort();
  const dir = await makeConfigDir({
    'gateway.yaml': gatewayYaml([port]),
    'upstreams.yaml': upstreamsYaml({ a: a.port }),
    'route.yaml': routeYaml(1, 'a'),
  });
  cleanups.push(() => dir.remove());
  const child = await startServeChild(dir.dir, ['--workers', '1', ...args]);
  cleanups.push(() => child.proc.stop('SIGKILL'));
  await until(async () => (await child.readiness()) === 200, { timeoutMs: 15_000, what: 'ready' });
  return { child, port, upstream: a };
}

const refused = (port: number): Promise<boolean> =>
  request(port).then(
    () => false,
    (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
  );

describe('graceful drain', () => {
  it('on SIGTERM under load: 503 at once, accepts for --drain-delay, finishes in-flight requests, exits 0; not one request fails', async () => {
    // Upstream answers take longer than the drain delay, so requests are in flight when the listener closes.
    const { child, port } = await setup(1500, ['--drain-delay', '1', '--drain-timeout', '10']);
    // Keep-alive, as a load balancer's connections are.
    const load = startPacedLoad({ port, ratePerSec: 100, timeoutMs: 15_000 });
    await until(() => load.done() >= 50, { what: '50 responses before SIGTERM' });
    const termAt = Date.now();
    child.proc.child.kill('SIGTERM');
    // What a load balancer does: it stops sending once it sees the 503.
    await until(async () => (await child.readiness().catch(() => 0)) === 503, { what: 'readiness 503' });
    const readinessMs = Date.now() - termAt;
    const inFlight = load.inFlight();
    const result = load.stop();
    // Still accepting during the delay.
    const late = request(port);
    await until(() => refused(port), { timeoutMs: 5000, what: 'listener closed after the drain delay' });
    const closedAfterMs = Date.now() - termAt;
    const exit = await child.exited();
    const r = await result;
    expect(readinessMs).toBeLessThan(500);
    expect(inFlight).toBeGreaterThan(50);
    expect((await late).status).toBe(200);
    expect(closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(r.failures.slice(0, 5)).toEqual([]);
    expect(r.ok).toBe(r.sent);
    expect(exit).toEqual({ code: 0, signal: null });
  }, 40_000);

  it('cuts requests still running at --drain-timeout and still exits 0', async () => {
    const { child, port } = await setup(20_000, ['--drain-delay', '0.2', '--drain-timeout', '1']);
    const slow = request(port).then(
      (res) => `status ${res.status}`,
      (e: NodeJS.ErrnoException) => e.code ?? e.message,
    );
    await until(() => child.logs().length > 0, { what: 'log' });
    const termAt = Date.now();
    child.proc.child.kill('SIGTERM');
    const exit = await child.exited();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - termAt).toBeLessThan(5000);
    expect(await slow).toMatch(/ECONNRESET|socket hang up/);
  }, 30_000);

  it('lets an open WebSocket keep talking during the drain, then cuts it at --drain-timeout', async () => {
    const server = http.createServer((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (sock) => sock.on('message', (d) => sock.send(`a:${d.toString()}`)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate();
          server.close(() => r());
        }),
    );
    const upstreamPort = (server.address() as { port: number }).port;
    const port = await freePort();
    const dir = await makeConfigDir({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: upstreamPort }),
      'route.yaml': routeYaml(1, 'a'),
    });
    cleanups.push(() => dir.remove());
    const child = await startServeChild(dir.dir, [
      '--workers',
      '1',
      '--drain-delay',
      '0.2',
      '--drain-timeout',
      '1.5',
    ]);
    cleanups.push(() => child.proc.stop('SIGKILL'));
    await until(async () => (await child.readiness()) === 200, { timeoutMs: 15_000, what: 'ready' });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host: 'example.com' } });
    cleanups.push(async () => ws.terminate());
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(d.toString()));
    const closed = new Promise<number>((r) => ws.on('close', () => r(Date.now())));
    await new Promise((r, j) => ws.once('open', r).once('error', j));
    ws.send('before');
    await until(() => messages.includes('a:before'), { what: 'an answer before the drain' });
    const termAt = Date.now();
    child.proc.child.kill('SIGTERM');
    await until(() => refused(port), { what: 'listener closed' });
    ws.send('during drain');
    await until(() => messages.includes('a:during drain'), { what: 'an answer after the listener closed' });
    const closedAt = await closed;
    expect(closedAt - termAt).toBeGreaterThanOrEqual(1500);
    expect(await child.exited()).toEqual({ code: 0, signal: null });
  }, 30_000);

  it('exits at once on a second signal', async () => {
    const { child, port } = await setup(20_000, ['--drain-delay', '0.2', '--drain-timeout', '30']);
    void request(port).catch(() => undefined);
    child.proc.child.kill('SIGINT');
    await until(() => child.logs().some((l) => l['msg'] === 'draining: readiness is 503 now'), {
      what: 'drain started',
    });
    const secondAt = Date.now();
    child.proc.child.kill('SIGINT');
    const exit = await child.exited();
    expect(Date.now() - secondAt).toBeLessThan(3000);
    expect(exit.code).toBe(1);
  }, 30_000);

  it.each([1, 2])(
    'tells keep-alive clients `Connection: close` on their next response after SIGTERM (--workers %i)',
    async (workers) => {
      const { child, port } = await setup(0, [
        '--drain-delay',
        '2',
        '--drain-timeout',
        '5',
        '--workers',
        String(workers),
      ]);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      cleanups.push(async () => agent.destroy());
      const first = await request(port, '/', { agent });
      expect(first.headers['connection']).toBe('keep-alive');
      child.proc.child.kill('SIGTERM');
      await until(async () => (await child.readiness()) === 503, { what: 'draining' });
      // Still within --drain-delay: answered, and told to go.
      const next = await request(port, '/', { agent });
      expect(next.status).toBe(200);
      expect(next.headers['connection']).toBe('close');
      expect(await child.exited()).toEqual({ code: 0, signal: null });
    },
    30_000,
  );
});

describe('drain and requests already in flight', () => {
  it('a keep-alive request answered after SIGTERM says `Connection: close`, as Envoy drains', async () => {
    const { child, port, upstream } = await setup(1500, ['--drain-delay', '0.5', '--drain-timeout', '10']);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const inFlight = request(port, '/', { agent });
    await until(() => upstream.seen.length === 1, { what: 'the request at the upstream' });
    child.proc.child.kill('SIGTERM');
    await until(async () => (await child.readiness().catch(() => 0)) === 503, { what: 'draining' });
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(r.headers['connection']).toBe('close');
    expect(await child.exited()).toEqual({ code: 0, signal: null });
  }, 30_000);
});

describe('SIGHUP', () => {
  it('re-reads the config', async () => {
    const { child } = await setup(0, ['--drain-delay', '0']);
    child.proc.child.kill('SIGHUP');
    await until(() => child.logs().some((l) => l['msg'] === 'SIGHUP: re-reading config'), {
      what: 'SIGHUP logged',
    });
    await until(
      async () => /^sluice_config_reloads_total\{result="unchanged"\} 1$/m.test(await child.metrics()),
      { what: 'an unchanged reload counted' },
    );
    expect(await child.readiness()).toBe(200);
  }, 30_000);
});

/**
 * --workers N (issue 4 item 4): node:cluster workers sharing the Gateway ports, one config
 * version everywhere, a dead worker restarted, metrics merged, drain coordinated by the primary.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import { startPacedLoad } from '../support/paced-load.ts';
import {
  freePort,
  gatewayYaml,
  invalidRouteYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
  type ConfigDir,
} from '../support/ops-config.ts';
import { startServeChild, type ServeChild } from '../support/serve-child.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

interface WorkerRow {
  slot: number;
  pid: number | null;
  state: string;
  version: number;
  hash: string | null;
  restarts: number;
  requests: number | null;
}

async function setup(): Promise<{ child: ServeChild; port: number; dir: ConfigDir }> {
  const a = await startEcho({ name: 'a' });
  const b = await startEcho({ name: 'b' });
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  const port = await freePort();
  const dir = await makeConfigDir({
    'gateway.yaml': gatewayYaml([port]),
    'upstreams.yaml': upstreamsYaml({ a: a.port, b: b.port }),
    'route.yaml': routeYaml(1, 'a'),
  });
  cleanups.push(() => dir.remove());
  const child = await startServeChild(dir.dir, [
    '--workers',
    '2',
    '--drain-delay',
    '0.3',
    '--drain-timeout',
    '5',
  ]);
  cleanups.push(() => child.proc.stop('SIGKILL'));
  await until(async () => (await child.readiness()) === 200, { timeoutMs: 20_000, what: 'ready' }).catch(
    (err: unknown) => {
      // What the primary and the workers said is the only clue to why they did not get ready.
      throw new Error(`${String(err)}\noutput:\n${child.proc.output().slice(-6000)}`, { cause: err });
    },
  );
  return { child, port, dir };
}

const workers = (child: ServeChild): Promise<WorkerRow[]> => child.admin<WorkerRow[]>('/workers');

describe('--workers 2', () => {
  it('both workers serve one version; a killed worker is replaced without a failed request; SIGTERM drains both', async () => {
    const { child, port } = await setup();
    const first = await workers(child);
    expect(first).toHaveLength(2);
    expect(new Set(first.map((w) => w.pid)).size).toBe(2);
    expect(first.map((w) => [w.state, w.version])).toEqual([
      ['serving', 1],
      ['serving', 1],
    ]);
    expect(first[0]!.hash).toBe(first[1]!.hash);

    // Fresh connections, so the primary spreads them over both workers.
    const before = startPacedLoad({ port, ratePerSec: 100, agent: false });
    await until(async () => (await workers(child)).every((w) => (w.requests ?? 0) > 10), {
      what: 'both workers serving requests',
    });
    const beforeResult = await before.stop();
    expect(beforeResult.failures.slice(0, 5)).toEqual([]);
    expect(beforeResult.ok).toBe(beforeResult.sent);

    // Connections a worker holds (or that node:cluster is handing it) when it is SIGKILLed die with
    // it; what must hold is that the other worker serves everything while the dead one is replaced.
    const victim = first[0]!.pid!;
    process.kill(victim, 'SIGKILL');
    await until(() => child.logs().some((l) => l['msg'] === 'worker died; restarting'), {
      what: 'the primary saw the death',
    });
    const load = startPacedLoad({ port, ratePerSec: 100, agent: false });
    const replaced = (await until(
      async () => {
        const rows = await workers(child);
        const w = rows[0]!;
        return w.pid !== victim && w.state === 'serving' && w.version === 1 && (w.requests ?? 0) > 5
          ? rows
          : undefined;
      },
      { timeoutMs: 10_000, what: 'slot 0 replaced and serving' },
    )) as WorkerRow[];
    expect(replaced[0]!.restarts).toBe(1);
    expect(replaced[0]!.hash).toBe(first[0]!.hash);
    expect(replaced[1]!.pid).toBe(first[1]!.pid);
    expect(await child.readiness()).toBe(200);
    expect(
      child
        .logs()
        .some(
          (l) => l['msg'] === 'worker died; restarting' && l['pid'] === victim && l['signal'] === 'SIGKILL',
        ),
    ).toBe(true);
    const metrics = await child.metrics();
    expect(metrics).toMatch(/^sluice_worker_restarts_total 1$/m);
    expect(metrics).toMatch(/^sluice_workers 2$/m);

    // Drain with both workers under load: no request fails, exit 0.
    child.proc.child.kill('SIGTERM');
    await until(async () => (await child.readiness().catch(() => 0)) === 503, { what: 'readiness 503' });
    const result = await load.stop();
    expect(result.failures.slice(0, 5)).toEqual([]);
    expect(result.ok).toBe(result.sent);
    expect(await child.exited()).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('ships each reload to every worker, refuses one a worker cannot bind, and merges metrics from all', async () => {
    const { child, port, dir } = await setup();
    // Readiness must hold through reloads, applied and refused alike.
    const readiness = startPacedLoad({ port: child.statusPort, path: '/healthz/ready', ratePerSec: 20 });
    await dir.write('route.yaml', routeYaml(2, 'b'));
    await until(async () => (await workers(child)).every((w) => w.version === 2), {
      what: 'version 2 everywhere',
    });
    const rows = await workers(child);
    expect(rows[0]!.hash).toBe(rows[1]!.hash);
    for (let i = 0; i < 6; i++) expect((await request(port)).headers['x-gen']).toBe('2');

    const taken = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    await dir.write('gateway.yaml', gatewayYaml([port, taken]));
    await until(
      async () => /^sluice_config_reloads_total\{result="rejected"\} 1$/m.test(await child.metrics()),
      { what: 'the unbindable set rejected' },
    );
    // The log line travels a pipe; the metric came over HTTP and may be first.
    const bindError = (l: Record<string, unknown>): string =>
      String((l['err'] as { message?: string } | undefined)?.message ?? '');
    await until(() => child.logs().some((l) => bindError(l).includes(`${taken}: EADDRINUSE`)), {
      what: 'the bind failure logged',
    });
    await until(
      async () => (await workers(child)).every((w) => w.version === 2 && w.hash === rows[0]!.hash),
      { what: 'every worker back on version 2' },
    );
    expect(await child.readiness()).toBe(200);
    for (let i = 0; i < 6; i++) expect((await request(port)).headers['x-gen']).toBe('2');

    const ready = await readiness.stop();
    expect(ready.failures).toEqual([]);
    expect(ready.sent).toBeGreaterThan(5);
    const metrics = await child.metrics();
    expect(metrics).toMatch(/^sluice_config_reloads_total\{result="accepted"\} 2$/m);
    expect(metrics).toMatch(/^sluice_snapshot_version 2$/m);
    expect(metrics).toMatch(/^sluice_worker_snapshot_version\{worker="0"\} 2$/m);
    expect(metrics).toMatch(/^sluice_worker_snapshot_version\{worker="1"\} 2$/m);
    // Process metrics come from the primary and both workers, merged into one series.
    expect(metrics.match(/^sluice_process_cpu_user_seconds_total /gm)).toHaveLength(1);
    const clusters = await child.admin<{ worker: number }[]>('/clusters');
    expect(clusters.map((c) => c.worker)).toEqual([0, 1]);
  }, 60_000);

  it('fails no request at 200 req/s across 30 reloads shipped to both workers (routes, invalid sets, ports)', async () => {
    const { child, port, dir } = await setup();
    const extra = await freePort();
    let gen = 1;
    let extraOpen = false;
    const load = startPacedLoad({
      port,
      ratePerSec: 200,
      check: (res) => {
        if (res.status !== 200) return `status ${res.status}`;
        const g = Number(res.headers['x-gen']);
        const name = (JSON.parse(res.body) as { name: string }).name;
        return name === (g % 2 === 0 ? 'b' : 'a') ? null : `x-gen ${g} from upstream ${name}`;
      },
    });
    const processed = async (): Promise<number> => {
      const text = await child.metrics();
      let n = 0;
      for (const m of text.matchAll(
        /^sluice_config_reloads_total\{result="(?:accepted|rejected|unchanged)"\} (\d+)$/gm,
      ))
        n += Number(m[1]);
      return n;
    };
    for (let i = 0; i < 30; i++) {
      const before = await processed();
      if (i % 5 === 1) await dir.write('route.yaml', invalidRouteYaml());
      else if (i % 5 === 3) {
        extraOpen = !extraOpen;
        await dir.write('gateway.yaml', gatewayYaml(extraOpen ? [port, extra] : [port]));
      } else {
        gen++;
        await dir.write('route.yaml', routeYaml(gen, gen % 2 === 0 ? 'b' : 'a'));
      }
      await until(async () => (await processed()) > before, { what: `reload ${i} processed` });
    }
    const result = await load.stop();
    expect(result.failures.slice(0, 5)).toEqual([]);
    expect(result.ok).toBe(result.sent);
    const rows = await workers(child);
    expect(rows.map((w) => w.version)).toEqual([rows[0]!.version, rows[0]!.version]);
    expect(rows[0]!.hash).toBe(rows[1]!.hash);
    expect((await request(port)).headers['x-gen']).toBe(String(gen));
  }, 60_000);

  it('readiness is 503 while a port the config needs is not bound, and the workers recover once it is free', async () => {
    const { child, port } = await setup();
    const rows = await workers(child);
    // Both workers die at once: the primary lets the shared listen socket go, and the test takes
    // the port before they are restarted (250 ms later), so the new workers cannot bind it.
    for (const w of rows) process.kill(w.pid!, 'SIGKILL');
    const blocker: Server = createServer();
    const deadline = Date.now() + 2000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        blocker.once('error', () => resolve(false));
        blocker.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`could not take port ${port} while the workers were down`);
      await new Promise((r) => setTimeout(r, 2));
    }
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    await until(() => child.logs().filter((l) => l['msg'] === 'worker could not apply config').length >= 2, {
      what: 'both restarted workers failing to bind',
    });
    expect(await child.readiness()).toBe(503);
    await new Promise((r) => blocker.close(r));
    await until(async () => (await child.readiness()) === 200, {
      timeoutMs: 15_000,
      what: 'ready again once the port is free',
    });
    expect((await request(port)).headers['x-gen']).toBe('1');
    expect((await workers(child)).map((w) => [w.state, w.version])).toEqual([
      ['serving', 1],
      ['serving', 1],
    ]);
  }, 60_000);
});

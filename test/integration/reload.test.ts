/**
 * Hot reload (issue 4 item 1) with the real serve code in-process: real temp dirs written as
 * editors and ConfigMaps write them, real listeners on real ports, real upstreams.
 */
import { mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, type RunningGateway } from '../../src/cli/serve.ts';
import { createLogger, silentLogger, type Logger } from '../../src/observability/logger.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
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

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    logger: createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } }),
    lines,
  };
}

async function upstreams(): Promise<{ a: Upstream; b: Upstream }> {
  const a = await startEcho({ name: 'a' });
  const b = await startEcho({ name: 'b' });
  cleanups.push(
    () => a.close(),
    () => b.close(),
  );
  return { a, b };
}

async function configDir(files: Record<string, string>): Promise<ConfigDir> {
  const d = await makeConfigDir(files);
  cleanups.push(() => d.remove());
  return d;
}

async function serve(
  config: string,
  logger: Logger = silentLogger(),
  extraArgs: readonly string[] = [],
): Promise<RunningGateway> {
  const opts = parseOptions(
    'serve',
    [
      '--config',
      config,
      '--bind',
      '127.0.0.1',
      '--status-port',
      '0',
      '--metrics-port',
      '0',
      '--admin-port',
      '0',
      '--workers',
      '1',
      '--drain-delay',
      '0',
      '--certs-dir',
      path.join(config, '.no-certs'),
      ...extraArgs,
    ],
    {},
  );
  const running = await startServe(opts, { logger });
  cleanups.push(() => running.close());
  return running;
}

const processed = (r: RunningGateway): number =>
  r.loop.stats.accepted + r.loop.stats.rejected + r.loop.stats.unchanged + r.loop.stats.failed;

async function genOf(port: number): Promise<string | undefined> {
  const res = await request(port);
  return res.status === 200 ? (res.headers['x-gen'] as string | undefined) : `status ${res.status}`;
}

async function scrape(r: RunningGateway): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${r.metricsServer.port}/stats/prometheus`);
  return res.text();
}

async function readiness(r: RunningGateway): Promise<number> {
  return (await fetch(`http://127.0.0.1:${r.status.port}/healthz/ready`)).status;
}

const refused = (port: number): Promise<string | undefined> =>
  request(port).then(
    () => 'open',
    (e: NodeJS.ErrnoException) => e.code,
  );

async function standardSetup(
  logger?: Logger,
  extraArgs: readonly string[] = [],
): Promise<{ running: RunningGateway; dir: ConfigDir; port: number }> {
  const { a, b } = await upstreams();
  const port = await freePort();
  const dir = await configDir({
    'gateway.yaml': gatewayYaml([port]),
    'upstreams.yaml': upstreamsYaml({ a: a.port, b: b.port }),
    'route.yaml': routeYaml(1, 'a'),
  });
  const running = await serve(dir.dir, logger, extraArgs);
  await until(() => running.isReady(), { what: 'first config applied' });
  expect(await genOf(port)).toBe('1');
  return { running, dir, port };
}

describe('hot reload', () => {
  it('turns a burst of edits into one reload, serving the newest', async () => {
    const { running, dir, port } = await standardSetup();
    const before = running.loop.stats.accepted;
    for (let gen = 2; gen <= 11; gen++)
      await dir.write('route.yaml', routeYaml(gen, gen % 2 === 0 ? 'b' : 'a'));
    await until(async () => (await genOf(port)) === '11', { what: 'gen 11 serving' });
    await running.loop.settled();
    expect(running.loop.stats.accepted - before).toBe(1);
    expect(running.loop.stats.version).toBe(2);
  });

  it('does nothing for identical content, whether saved again or re-read (SIGHUP path)', async () => {
    const { running, dir, port } = await standardSetup();
    const stats = { ...running.loop.stats };
    await dir.write('route.yaml', routeYaml(1, 'a'));
    await running.reload();
    // Proving that nothing happens needs a wait longer than the debounce (100 ms quiet + provider 50 ms).
    await new Promise((r) => setTimeout(r, 400));
    await running.loop.settled();
    expect(running.loop.stats.accepted).toBe(stats.accepted);
    expect(running.loop.stats.version).toBe(stats.version);
    expect(running.loop.stats.unchanged).toBeGreaterThanOrEqual(stats.unchanged + 1);
    expect(await genOf(port)).toBe('1');
  });

  it('refuses an invalid change with its diagnostics logged and counted; the last good config keeps serving', async () => {
    const { logger, lines } = capturingLogger();
    const { running, dir, port } = await standardSetup(logger);
    await dir.write('route.yaml', invalidRouteYaml());
    await until(() => running.loop.stats.rejected === 1, { what: 'the invalid set rejected' });
    expect(await genOf(port)).toBe('1');
    expect(running.isReady()).toBe(true);
    const logged = lines.join('');
    expect(logged).toContain(path.join(dir.dir, 'route.yaml'));
    expect(logged).toMatch(/spec\.http\[0\]\.route\[0\]\.weight.*SLUICE_CONFIG_/);
    expect(logged).toContain('the last good config keeps serving');
    expect(await scrape(running)).toMatch(/^sluice_config_reloads_total\{result="rejected"\} 1$/m);
    // Fixing it reloads.
    await dir.write('route.yaml', routeYaml(2, 'b'));
    await until(async () => (await genOf(port)) === '2', { what: 'the fixed config serving' });
    expect(await scrape(running)).toMatch(/^sluice_config_reloads_total\{result="accepted"\} 2$/m);
  });

  it('opens and closes listeners as Gateway ports come and go', async () => {
    const { running, dir, port } = await standardSetup();
    const extra = await freePort();
    await dir.write('gateway.yaml', gatewayYaml([port, extra]));
    await until(async () => (await genOf(extra).catch(() => null)) === '1', { what: `listener on ${extra}` });
    expect(running.gateway.boundPorts().has(extra)).toBe(true);
    expect(await scrape(running)).toMatch(/^sluice_listeners 2$/m);
    await dir.write('gateway.yaml', gatewayYaml([port]));
    await until(
      async () =>
        (await request(extra).then(
          () => 'open',
          (e: NodeJS.ErrnoException) => e.code,
        )) === 'ECONNREFUSED',
      {
        what: `listener on ${extra} closed`,
      },
    );
    expect(await genOf(port)).toBe('1');
  });

  it('rejects a change whose port cannot be bound, and says why', async () => {
    const { logger, lines } = capturingLogger();
    const { running, dir, port } = await standardSetup(logger);
    const taken = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    await dir.write('gateway.yaml', gatewayYaml([port, taken]));
    await until(() => running.loop.stats.rejected === 1, { what: 'the unbindable set rejected' });
    expect(lines.join('')).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}: EADDRINUSE`));
    expect(running.gateway.boundPorts().has(taken)).toBe(false);
    expect(await genOf(port)).toBe('1');
    expect(running.isReady()).toBe(true);
    expect(running.loop.stats.version).toBe(1);
  });

  it('refuses a change that would leave no server bound (an empty file, an emptied directory); the last good config keeps serving', async () => {
    const { logger, lines } = capturingLogger();
    const { running, dir, port } = await standardSetup(logger);
    // A deploy that truncated the Gateway's file.
    await dir.write('gateway.yaml', '');
    await until(() => running.loop.stats.rejected === 1, { what: 'the empty set refused' });
    expect(await genOf(port)).toBe('1');
    expect(await readiness(running)).toBe(200);
    const logged = lines.join('');
    expect(logged).toContain('the new config binds no Gateway server: it has no Gateway');
    expect(logged).toContain('--allow-empty-config');
    expect(logged).toContain('SLUICE_CONFIG_EMPTY');
    // A directory emptied mid-deploy.
    for (const f of ['gateway.yaml', 'upstreams.yaml', 'route.yaml']) await rm(path.join(dir.dir, f));
    await until(() => running.loop.stats.rejected === 2, { what: 'the emptied directory refused' });
    expect(lines.join('')).toContain('(0 resources from 0 files)');
    expect(await genOf(port)).toBe('1');
    expect(await readiness(running)).toBe(200);
    expect(running.loop.stats.version).toBe(1);
    // The deploy finishes: served again.
    await dir.write('gateway.yaml', gatewayYaml([port]));
    await dir.write('upstreams.yaml', upstreamsYaml({ a: 1, b: 1 }));
    await dir.write('route.yaml', routeYaml(2, 'b'));
    await until(() => running.loop.stats.version === 2, { what: 'the finished deploy applied' });
  });

  it('accepts a change that binds nothing under --allow-empty-config, and closes the listeners', async () => {
    const { running, dir, port } = await standardSetup(undefined, ['--allow-empty-config']);
    await dir.write('gateway.yaml', '');
    await until(async () => (await refused(port)) === 'ECONNREFUSED', { what: 'listener closed' });
    expect(running.loop.stats.version).toBe(2);
    expect(await readiness(running)).toBe(200);
  });

  it('at start, a config that binds nothing is refused: readiness 503 until one with a server arrives', async () => {
    const { logger, lines } = capturingLogger();
    const { a, b } = await upstreams();
    const port = await freePort();
    const dir = await configDir({ 'upstreams.yaml': upstreamsYaml({ a: a.port, b: b.port }) });
    const running = await serve(dir.dir, logger);
    await until(() => running.loop.stats.rejected === 1, { what: 'the first set refused' });
    expect(await readiness(running)).toBe(503);
    expect(lines.join('')).toContain(
      'the new config binds no Gateway server: it has no Gateway (2 resources from 1 file)',
    );
    await dir.write('gateway.yaml', gatewayYaml([port]));
    await dir.write('route.yaml', routeYaml(1, 'a'));
    await until(async () => (await genOf(port).catch(() => null)) === '1', { what: 'served once complete' });
    expect(await readiness(running)).toBe(200);
  });

  it('logs the errors of a newly added file even when the valid resources do not change, once per change', async () => {
    const { logger, lines } = capturingLogger();
    const { running, dir, port } = await standardSetup(logger);
    const broken = path.join(dir.dir, 'broken.yaml');
    const mentions = (): number => lines.filter((l) => l.includes(broken)).length;
    await dir.write('broken.yaml', 'kind: [\n');
    await until(() => running.loop.stats.rejected === 1, { what: 'the set with a broken file refused' });
    expect(mentions()).toBe(1);
    expect(lines.join('')).toContain('the last good config keeps serving');
    // Saved again unchanged: read, but nothing new to say.
    const reads = running.loop.stats.reads;
    await dir.write('broken.yaml', 'kind: [\n');
    await until(() => running.loop.stats.reads > reads, { what: 'the re-save read' });
    await running.loop.settled();
    expect(mentions()).toBe(1);
    expect(running.loop.stats.rejected).toBe(1);
    // SIGHUP asks for a report: said again.
    await running.reload();
    expect(mentions()).toBe(2);
    expect(await genOf(port)).toBe('1');
  });

  it('keeps a listener serving when a reload that re-creates it on another address cannot bind', async () => {
    const { logger, lines } = capturingLogger();
    const { running, dir, port } = await standardSetup(logger);
    // A new bind address changes the listener's identity: the old one must make way, and come
    // back when the new one cannot be bound (192.0.2.1 is TEST-NET, never local).
    await dir.write(
      'gateway.yaml',
      gatewayYaml([port]).replace(`protocol: HTTP }`, `protocol: HTTP }\n      bind: 192.0.2.1`),
    );
    await until(() => running.loop.stats.rejected === 1, { what: 'the unbindable set refused' });
    expect(lines.join('')).toContain(`cannot listen on 192.0.2.1:${port}`);
    expect(await genOf(port)).toBe('1');
    expect(await readiness(running)).toBe(200);
    await dir.write('gateway.yaml', gatewayYaml([port]));
    await dir.write('route.yaml', routeYaml(2, 'b'));
    await until(async () => (await genOf(port)) === '2', { what: 'later reloads still apply' });
  });

  it('sees files added to and removed from a watched directory', async () => {
    const { dir, port } = await standardSetup();
    const other = routeYaml(7, 'b')
      .replace('name: shop', 'name: other')
      .replace('hosts: [example.com]', 'hosts: [other.example.com]');
    await dir.write('other.yaml', other);
    await until(
      async () => (await request(port, '/', { host: 'other.example.com' })).headers['x-gen'] === '7',
      { what: 'added file served' },
    );
    await rm(path.join(dir.dir, 'other.yaml'));
    await until(async () => (await request(port, '/', { host: 'other.example.com' })).status === 404, {
      what: 'removed file gone',
    });
  });

  it('follows a ConfigMap-style ..data symlink swap', async () => {
    const { a, b } = await upstreams();
    const port = await freePort();
    const root = await configDir({});
    // What the kubelet does: files in a timestamped dir, ..data → it, each key → ..data/key.
    const writeVersion = async (name: string, gen: number): Promise<void> => {
      const d = path.join(root.dir, name);
      await mkdir(d);
      await writeFile(path.join(d, 'gateway.yaml'), gatewayYaml([port]));
      await writeFile(path.join(d, 'upstreams.yaml'), upstreamsYaml({ a: a.port, b: b.port }));
      await writeFile(path.join(d, 'route.yaml'), routeYaml(gen, 'b'));
      await symlink(name, path.join(root.dir, '..data_tmp'));
      await rename(path.join(root.dir, '..data_tmp'), path.join(root.dir, '..data'));
    };
    await writeVersion('..2026_11_25_01_00_00.000000001', 1);
    for (const key of ['gateway.yaml', 'upstreams.yaml', 'route.yaml'])
      await symlink(path.join('..data', key), path.join(root.dir, key));
    const running = await serve(root.dir);
    await until(() => running.isReady(), { what: 'first config applied' });
    expect(await genOf(port)).toBe('1');
    await writeVersion('..2026_11_25_01_00_05.000000002', 2);
    await unlink(path.join(root.dir, '..2026_11_25_01_00_00.000000001', 'route.yaml'));
    await until(async () => (await genOf(port)) === '2', { what: 'the swapped config serving' });
  });

  it('fails not one request at 500 req/s across 100 reloads (routes, invalid sets, ports added and removed, no-ops)', async () => {
    const { running, dir, port } = await standardSetup();
    let gen = 1;
    let extraOpen = false;
    const extra = await freePort();
    const readiness = startPacedLoad({ port: running.status.port, path: '/healthz/ready', ratePerSec: 20 });
    const load = startPacedLoad({
      port,
      ratePerSec: 500,
      check: (res) => {
        if (res.status !== 200) return `status ${res.status}`;
        const g = Number(res.headers['x-gen']);
        const name = (JSON.parse(res.body) as { name: string }).name;
        // One snapshot per request: the header and the upstream come from the same config.
        return name === (g % 2 === 0 ? 'b' : 'a') ? null : `x-gen ${g} from upstream ${name}`;
      },
    });
    const results = { accepted: 0, rejected: 0, unchanged: 0 };
    for (let i = 0; i < 100; i++) {
      const before = processed(running);
      const kind = i % 10;
      if (kind === 1 || kind === 5) {
        await dir.write('route.yaml', invalidRouteYaml());
        results.rejected++;
      } else if (kind === 3 || kind === 7) {
        extraOpen = !extraOpen;
        await dir.write('gateway.yaml', gatewayYaml(extraOpen ? [port, extra] : [port]));
        results.accepted++;
      } else if (kind === 9) {
        await running.reload();
        results.unchanged++;
      } else {
        gen++;
        await dir.write('route.yaml', routeYaml(gen, gen % 2 === 0 ? 'b' : 'a'));
        results.accepted++;
      }
      await until(() => processed(running) > before, { what: `reload ${i} (kind ${kind}) processed` });
    }
    const result = await load.stop();
    const ready = await readiness.stop();
    expect(ready.failures).toEqual([]);
    expect(result.failures.slice(0, 5)).toEqual([]);
    expect(result.ok).toBe(result.sent);
    // Bounded but real: ~500/s for the whole run.
    expect(result.sent).toBeGreaterThan((result.durationMs / 1000) * 400);
    expect({
      accepted: running.loop.stats.accepted - 1,
      rejected: running.loop.stats.rejected,
      unchanged: running.loop.stats.unchanged,
    }).toEqual(results);
    expect(await genOf(port)).toBe(String(gen));
  }, 60_000);
});

/** An upstream named `name`: /stream sends `chunks` lines 60 ms apart; WebSockets echo `name:msg`. */
async function streamingUpstream(name: string, chunks: number): Promise<number> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let i = 0;
    const timer = setInterval(() => {
      res.write(`${name}:${i}\n`);
      if (++i === chunks) {
        clearInterval(timer);
        res.end();
      }
    }, 60);
    req.on('close', () => clearInterval(timer));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (sock) => sock.on('message', (data) => sock.send(`${name}:${data.toString()}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

function openWs(port: number): Promise<{ ws: WebSocket; next(): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host: 'example.com' } });
    const inbox: string[] = [];
    const waiters: ((m: string) => void)[] = [];
    ws.on('message', (d) => {
      const w = waiters.shift();
      if (w) w(d.toString());
      else inbox.push(d.toString());
    });
    cleanups.push(async () => ws.terminate());
    ws.once('open', () =>
      resolve({
        ws,
        next: () => {
          const m = inbox.shift();
          return m !== undefined ? Promise.resolve(m) : new Promise((r) => waiters.push(r));
        },
      }),
    );
    ws.once('error', reject);
  });
}

describe('long-lived connections across reloads', () => {
  it('a WebSocket and a streaming download started before a reload finish on the config they started with', async () => {
    const a = await streamingUpstream('a', 25);
    const b = await streamingUpstream('b', 25);
    const stable = await freePort();
    const leaving = await freePort();
    const dir = await configDir({
      'gateway.yaml': gatewayYaml([stable, leaving]),
      'upstreams.yaml': upstreamsYaml({ a, b }),
      'route.yaml': routeYaml(1, 'a'),
    });
    const running = await serve(dir.dir);
    await until(() => running.isReady(), { what: 'first config applied' });

    const { ws, next } = await openWs(stable);
    ws.send('hello');
    expect(await next()).toBe('a:hello');
    // A download on the port the reload removes, and one on the port that stays.
    const download = (port: number): Promise<string> =>
      new Promise((resolve, reject) => {
        http
          .get(
            { host: '127.0.0.1', port, path: '/stream', headers: { host: 'example.com' }, agent: false },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (d: string) => (body += d));
              res.on('end', () => resolve(body));
              res.on('error', reject);
            },
          )
          .on('error', reject);
      });
    const onLeaving = download(leaving);
    const onStable = download(stable);

    await dir.write('gateway.yaml', gatewayYaml([stable]));
    await dir.write('route.yaml', routeYaml(2, 'b'));
    await until(() => running.loop.stats.version === 2, { what: 'reload applied' });
    await until(
      async () =>
        (await request(leaving).then(
          () => 'open',
          (e: NodeJS.ErrnoException) => e.code,
        )) === 'ECONNREFUSED',
      {
        what: 'removed listener closed to new connections',
      },
    );
    // New work sees the new config; the old WebSocket still talks to the old upstream.
    const fresh = await openWs(stable);
    fresh.ws.send('x');
    expect(await fresh.next()).toBe('b:x');
    ws.send('still there');
    expect(await next()).toBe('a:still there');

    const expected = Array.from({ length: 25 }, (_, i) => `a:${i}\n`).join('');
    expect(await onLeaving).toBe(expected);
    expect(await onStable).toBe(expected);
    ws.send('after');
    expect(await next()).toBe('a:after');
  }, 20_000);
});

/** control/reconcile.ts: bind first, keep unchanged listeners, reject a failed bind, close removed ones. */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import http from 'node:http';
import { request } from 'undici';
import { createGateway, type Gateway } from '../../src/control/reconcile.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { isSluiceError } from '../../src/errors/sluice-error.ts';
import type { Snapshot } from '../../src/snapshot/types.ts';
import { freePort } from '../support/free-port.ts';
import { forwardTo, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function direct(port: number, body: string, hash: string): Snapshot {
  return snapshotOf({
    port,
    hash,
    vhosts: { '*': [route('d', [], { kind: 'direct', status: 200, body: new TextEncoder().encode(body) })] },
  });
}

function merge(...snaps: Snapshot[]): Snapshot {
  const listeners = new Map<number, Snapshot['listeners'] extends ReadonlyMap<number, infer L> ? L : never>();
  for (const s of snaps) for (const [p, l] of s.listeners) listeners.set(p, l);
  return { ...snaps[0]!, listeners };
}

async function text(port: number): Promise<string> {
  const r = await request(`http://127.0.0.1:${port}/`);
  return r.body.text();
}

function start(bindPortFor: (p: number) => number = () => 0): Gateway {
  const g = createGateway({
    bind: '127.0.0.1',
    logger: silentLogger(),
    bindPortFor,
    removedListenerGraceMs: 100,
  });
  cleanups.push(() => g.close());
  return g;
}

describe('reconcile', () => {
  it('keeps a listener whose key is unchanged and serves the new snapshot on it', async () => {
    const g = start();
    await g.apply(direct(8080, 'one', 'h1'));
    const port = g.boundPorts().get(8080)!;
    expect(await text(port)).toBe('one');
    await g.apply(direct(8080, 'two', 'h2'));
    expect(g.boundPorts().get(8080)).toBe(port);
    expect(await text(port)).toBe('two');
    expect(g.current.version).toBe(2);
  });

  it('adds and removes listeners; a removed port stops accepting', async () => {
    const g = start();
    await g.apply(merge(direct(8080, 'a', 'h1'), direct(9090, 'b', 'h1')));
    const p9090 = g.boundPorts().get(9090)!;
    expect(await text(p9090)).toBe('b');
    await g.apply(direct(8080, 'a2', 'h2'));
    expect([...g.boundPorts().keys()]).toEqual([8080]);
    await expect(text(p9090)).rejects.toThrow();
  });

  it('a failed bind rejects with SLUICE_LISTEN_FAILED and the old config keeps serving', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const taken = (blocker.address() as { port: number }).port;
    const g = start((p) => (p === 9999 ? taken : 0));
    await g.apply(direct(8080, 'old', 'h1'));
    const port = g.boundPorts().get(8080)!;
    const err = await g
      .apply(merge(direct(8080, 'new', 'h2'), direct(9999, 'x', 'h2')))
      .catch((e: unknown) => e);
    expect(isSluiceError(err) && err.code).toBe('SLUICE_LISTEN_FAILED');
    expect(await text(port)).toBe('old');
    expect([...g.boundPorts().keys()]).toEqual([8080]);
    // A later good config still applies.
    await g.apply(direct(8080, 'newer', 'h3'));
    expect(await text(port)).toBe('newer');
  });

  it('drain lets an in-flight request finish, then returns without waiting for the timeout', async () => {
    const slow = await startEcho({ name: 'slow', delayMs: 300 });
    cleanups.push(() => slow.close());
    const c = staticCluster('slow.default.svc.cluster.local', [{ address: '127.0.0.1', port: slow.port }]);
    const g = createGateway({ bind: '127.0.0.1', logger: silentLogger(), bindPortFor: () => 0 });
    await g.apply(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }));
    const port = g.boundPorts().get(8080)!;
    // A keep-alive connection that is idle, and one request in flight.
    const idle = await request(`http://127.0.0.1:${port}/warm`);
    await idle.body.text();
    const inflight = request(`http://127.0.0.1:${port}/slow`).then(async (r) => ({
      status: r.statusCode,
      body: await r.body.text(),
    }));
    await until(() => slow.seen.length >= 2, { what: 'slow request reached the upstream' });
    const t0 = Date.now();
    await g.drain(5_000);
    const took = Date.now() - t0;
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(took).toBeLessThan(2_000);
    await expect(request(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});

describe('a refused apply takes nothing down', () => {
  it('reopens a listener freed for a new one on its port; one that cannot be reopened is reported unbound', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const taken = (blocker.address() as { port: number }).port;
    const free = await freePort();
    // The port each bind gets, in order; `free` once the list is used up.
    const binds: number[] = [];
    const g = start(() => binds.shift() ?? free);
    const old = direct(8080, 'old', 'h1');
    await g.apply(old);
    expect(await text(free)).toBe('old');
    // Same port, another listener key (as a new bind address gives): the old one must make way.
    const moved = (hash: string): Snapshot => {
      const l = old.listeners.get(8080)!;
      return { ...old, hash, listeners: new Map([[8080, { ...l, key: 'HTTP|elsewhere|8080' }]]) };
    };

    binds.push(taken); // the new listener cannot bind; the old one comes back
    await expect(g.apply(moved('h2'))).rejects.toThrow(/EADDRINUSE/);
    expect(await text(free)).toBe('old');
    expect(g.unboundPorts()).toEqual([]);

    binds.push(taken, taken); // and now it cannot come back either
    await expect(g.apply(moved('h3'))).rejects.toThrow(/EADDRINUSE/);
    expect(g.current.get().hash).toBe('h1');
    expect(g.unboundPorts()).toEqual([8080]);
    await expect(text(free)).rejects.toThrow();

    // The gateway retries by itself (after 250 ms) and opens what the serving snapshot misses.
    await until(() => g.unboundPorts().length === 0, { what: 'the listener reopened' });
    expect(await text(free)).toBe('old');
  });
});

describe('draining', () => {
  it('after startDraining every response says Connection: close while the listener still accepts', async () => {
    const g = start();
    await g.apply(direct(8080, 'ok', 'h1'));
    const port = g.boundPorts().get(8080)!;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const get = () =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        http
          .get({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res));
          })
          .on('error', reject);
      });
    expect((await get()).headers['connection']).toBe('keep-alive');
    g.startDraining();
    expect((await get()).headers['connection']).toBe('close');
  });
});

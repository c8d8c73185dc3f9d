/**
 * HTTP/1.1 upstream connections under concurrent HTTP/2 streams (src/upstream/pools.ts, DR-6):
 * as in Envoy, a request that finds no idle connection opens one up to `maxConnections`, so the
 * pool is as large as the concurrency it has seen, and its connections are reused afterwards;
 * with `maxConnections`, streams beyond it wait for a connection (within
 * `http1MaxPendingRequests`) and every one is served on the capped connections.
 * The upstream counts the connections it accepted and the requests it held at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type ClientHttp2Session } from 'node:http2';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { startGatewayWithSnapshot } from '../support/gateway.ts';
import { forwardTo, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';
import type { Cluster } from '../../src/snapshot/types.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface CountingUpstream {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Requests answered so far, and the most held at once. */
  requests(): number;
  peakInFlight(): number;
}

/** An HTTP/1.1 upstream answering 100 bytes after `delayMs` (0: at once). */
async function countingUpstream(delayMs: number): Promise<CountingUpstream> {
  let connections = 0;
  let requests = 0;
  let inFlight = 0;
  let peak = 0;
  const sockets = new Set<Socket>();
  const body = 'x'.repeat(100);
  const server: Server = createServer((req, res) => {
    inFlight += 1;
    peak = Math.max(peak, inFlight);
    const answer = (): void => {
      inFlight -= 1;
      requests += 1;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    };
    req.resume();
    req.on('end', () => (delayMs > 0 ? setTimeout(answer, delayMs) : answer()));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    connections += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    port,
    connections: () => connections,
    requests: () => requests,
    peakInFlight: () => peak,
  };
}

async function gatewayTo(up: CountingUpstream, over: Partial<Cluster> = {}): Promise<number> {
  const c = staticCluster('pool.default.svc.cluster.local', [{ address: '127.0.0.1', port: up.port }], over);
  const g = await startGatewayWithSnapshot(
    snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[c, 100]]))] } }),
  );
  cleanups.push(() => g.close());
  return g.port();
}

function session(port: number): ClientHttp2Session {
  const s = connect(`http://127.0.0.1:${port}`);
  s.on('error', () => undefined);
  cleanups.push(() => void s.destroy());
  return s;
}

/** `perSession` concurrent GETs on each session (h2c); resolves to their statuses. */
function burst(sessions: readonly ClientHttp2Session[], perSession: number): Promise<number[]> {
  const all: Promise<number>[] = [];
  for (const s of sessions)
    for (let i = 0; i < perSession; i++)
      all.push(
        new Promise((resolve, reject) => {
          const st = s.request({ ':path': `/item/${i}`, ':authority': 'pool.example.com' });
          let status = 0;
          st.on('response', (h) => (status = Number(h[':status'])));
          st.on('data', () => undefined);
          st.on('end', () => resolve(status));
          st.on('error', reject);
        }),
      );
  return Promise.all(all);
}

describe('HTTP/1.1 upstream connection pool under concurrent HTTP/2 streams', () => {
  it('150 concurrent streams open at most one connection each, and the next 150 reuse them all', async () => {
    const up = await countingUpstream(0);
    const port = await gatewayTo(up);
    const sessions = [session(port), session(port)];
    const first = await burst(sessions, 75);
    expect(first.filter((s) => s === 200)).toHaveLength(150);
    const opened = up.connections();
    expect(opened).toBeGreaterThan(0);
    expect(opened).toBeLessThanOrEqual(150);
    const second = await burst(sessions, 75);
    expect(second.filter((s) => s === 200)).toHaveLength(150);
    // The second burst found the first one's connections idle: none opened.
    expect(up.connections()).toBe(opened);
    expect(up.requests()).toBe(300);
  });

  it('maxConnections 4: 60 concurrent streams share 4 connections, every one answered (pending unlimited)', async () => {
    const up = await countingUpstream(2);
    const port = await gatewayTo(up, { maxConnections: 4 });
    const statuses = await burst([session(port)], 60);
    expect(statuses.filter((s) => s === 200)).toHaveLength(60);
    expect(up.connections()).toBe(4);
    expect(up.peakInFlight()).toBeLessThanOrEqual(4);
    expect(up.requests()).toBe(60);
  });
});

/**
 * HTTP/1.1 responses as the gateway's own upstream connection parses them
 * (src/upstream/h1-connection.ts), from a raw TCP upstream that writes exact bytes, split into
 * pieces written one after another so every parser state sees a read boundary. Well-formed
 * framings (Content-Length, chunked with extensions and trailers, close-delimited, 1xx before
 * the answer, no body for HEAD/204/304) reach the client whole; malformed or ambiguous ones (the
 * response-smuggling shapes) are 502 UPE, their bytes never reach the client, and the connection
 * is not used again. Bytes after a response, or on an idle connection, close that connection; a
 * request handed to an idle connection that closes before the request is written goes to another.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { request } from 'undici';
import { startGatewayWithSnapshot } from '../support/gateway.ts';
import { forwardTo, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';
import { until } from '../support/until.ts';
import type { Cluster } from '../../src/snapshot/types.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** What the upstream writes for a request path: pieces written in turn, then maybe a close. */
interface Script {
  readonly pieces: readonly (string | Buffer)[];
  readonly close?: boolean;
  /** Written on the same connection once the response has been sent and the socket is idle. */
  readonly later?: string;
}

/** A request head as the upstream received it. */
interface Head {
  /** Which accepted connection carried it, from 1. */
  readonly connection: number;
  readonly path: string;
  /** Its Connection header, lower-cased ('' when absent). */
  readonly connectionHeader: string;
}

interface RawUpstream {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Request heads received so far (path of each). */
  paths(): string[];
  /** Request heads received so far. */
  heads(): Head[];
  /** Destroys the `n`th accepted connection (from 1) at once. */
  drop(n: number): void;
  /** Connections closed so far. */
  closed(): number;
}

async function rawUpstream(scripts: Record<string, Script>): Promise<RawUpstream> {
  let connections = 0;
  let closed = 0;
  const paths: string[] = [];
  const heads: Head[] = [];
  const accepted: Socket[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections += 1;
    const connection = accepted.push(socket);
    sockets.add(socket);
    socket.on('close', () => {
      closed += 1;
      sockets.delete(socket);
    });
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const path = head.split(' ')[1]!;
        paths.push(path);
        const connectionHeader = /\r\nconnection: *([^\r]*)/i.exec(head)?.[1]?.toLowerCase() ?? '';
        heads.push({ connection, path, connectionHeader });
        void play(
          socket,
          scripts[path] ?? { pieces: ['HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n'] },
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    paths: () => paths,
    heads: () => heads,
    drop: (n) => void accepted[n - 1]!.destroy(),
    closed: () => closed,
  };
}

async function play(socket: Socket, script: Script): Promise<void> {
  for (const piece of script.pieces) {
    if (socket.destroyed) return;
    socket.write(piece);
    // Each piece in its own write and its own read on the other side, as far as loopback allows.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (script.close === true) socket.end();
  if (script.later !== undefined) {
    await new Promise((resolve) => setImmediate(resolve));
    if (!socket.destroyed) socket.write(script.later);
  }
}

async function gatewayTo(up: RawUpstream, cluster: Partial<Cluster> = {}): Promise<number> {
  const c = staticCluster(
    'raw.default.svc.cluster.local',
    [{ address: '127.0.0.1', port: up.port }],
    cluster,
  );
  const g = await startGatewayWithSnapshot(
    snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[c, 100]]))] } }),
  );
  cleanups.push(() => g.close());
  return g.port();
}

async function get(
  port: number,
  path: string,
  method: 'GET' | 'HEAD' = 'GET',
): Promise<{ status: number; body: string; flags: string | undefined }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method, reset: true });
  const body = await res.body.text();
  return { status: res.statusCode, body, flags: res.headers['x-test-flags'] as string | undefined };
}

/** Each character its own piece. */
function bytewise(s: string): string[] {
  return [...s];
}

describe('HTTP/1.1 upstream responses: well-formed framings reach the client whole', () => {
  it('Content-Length, chunked with extensions and trailers, close-delimited, split at every byte', async () => {
    const up = await rawUpstream({
      '/length': { pieces: bytewise('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello') },
      '/chunked': {
        pieces: bytewise(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
            '6;name=value\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\n\r\n',
        ),
      },
      '/until-close': { pieces: ['HTTP/1.1 200 OK\r\n\r\n', 'until ', 'close'], close: true },
      '/informational': {
        pieces: [
          'HTTP/1.1 100 Continue\r\n\r\n',
          'HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n',
          'HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone',
        ],
      },
      '/no-reason': { pieces: ['HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok'] },
    });
    const port = await gatewayTo(up);
    expect(await get(port, '/length')).toMatchObject({ status: 200, body: 'hello' });
    expect(await get(port, '/chunked')).toMatchObject({ status: 200, body: 'hello world' });
    expect(await get(port, '/until-close')).toMatchObject({ status: 200, body: 'until close' });
    expect(await get(port, '/informational')).toMatchObject({ status: 201, body: 'done' });
    expect(await get(port, '/no-reason')).toMatchObject({ status: 200, body: 'ok' });
  });

  it('HEAD has no body whatever its Content-Length says, nor 204 and 304; the connection is kept', async () => {
    const up = await rawUpstream({
      '/head': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'] },
      '/204': { pieces: ['HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n'] },
      '/304': { pieces: ['HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n\r\n'] },
      '/after': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter'] },
    });
    const port = await gatewayTo(up);
    expect(await get(port, '/head', 'HEAD')).toMatchObject({ status: 200, body: '' });
    expect(await get(port, '/204')).toMatchObject({ status: 204, body: '' });
    const before = up.connections();
    expect(await get(port, '/304')).toMatchObject({ status: 304, body: '' });
    expect(await get(port, '/after')).toMatchObject({ status: 200, body: 'after' });
    // The 204 and 304 left their connection in use: the requests after them needed no new one.
    expect(up.connections()).toBe(before);
  });

  it('keep-alive: sequential requests share one connection; connection: close ends it', async () => {
    const up = await rawUpstream({
      '/a': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na'] },
      '/closing': { pieces: ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc'] },
    });
    const port = await gatewayTo(up);
    for (let i = 0; i < 5; i++) expect((await get(port, '/a')).body).toBe('a');
    expect(up.connections()).toBe(1);
    expect((await get(port, '/closing')).body).toBe('c');
    expect((await get(port, '/a')).body).toBe('a');
    expect(up.connections()).toBe(2);
  });
});

describe('HTTP/1.1 upstream keep-alive hints', () => {
  it('keep-alive: timeout=1 is cut by a second, so the connection closes after its response', async () => {
    const up = await rawUpstream({
      '/hinted': { pieces: ['HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 1\r\n\r\nh'] },
      '/plain': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\np'] },
    });
    const port = await gatewayTo(up);
    expect((await get(port, '/hinted')).body).toBe('h');
    // Well before the 4 s idle timeout that would close it without the hint.
    await until(() => up.closed() === 1, { timeoutMs: 2500, what: 'the hinted connection closed' });
    expect((await get(port, '/plain')).body).toBe('p');
    expect((await get(port, '/plain')).body).toBe('p');
    expect(up.connections()).toBe(2);
  });
});

describe('HTTP/1.1 upstream responses: malformed or ambiguous framing is 502, never forwarded', () => {
  const SECRET = 'SMUGGLED';
  const hostile: Record<string, string> = {
    '/cl-and-te': `HTTP/1.1 200 OK\r\nContent-Length: 8\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/te-and-cl': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 8\r\n\r\n8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/two-lengths': `HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Length: 9\r\n\r\n${SECRET}!`,
    '/length-list': `HTTP/1.1 200 OK\r\nContent-Length: 8, 8\r\n\r\n${SECRET}`,
    '/same-length-twice': `HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/204-with-length': `HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/204-chunked': `HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/signed-length': `HTTP/1.1 200 OK\r\nContent-Length: +8\r\n\r\n${SECRET}`,
    '/hex-length': `HTTP/1.1 200 OK\r\nContent-Length: 0x8\r\n\r\n${SECRET}`,
    '/te-gzip': `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n${SECRET}`,
    '/te-twice': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/te-list': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/obs-fold': `HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/nul-value': `HTTP/1.1 200 OK\r\nx-a: a\u0000b\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/cr-value': `HTTP/1.1 200 OK\r\nx-a: a\rb\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/bare-lf': `HTTP/1.1 200 OK\nContent-Length: 8\n\n${SECRET}`,
    '/space-before-colon': `HTTP/1.1 200 OK\r\nContent-Length : 8\r\n\r\n${SECRET}`,
    '/bad-name': `HTTP/1.1 200 OK\r\nx(a): 1\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/bad-status': `HTTP/1.1 2000 OK\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/http2-status': `HTTP/2 200 OK\r\nContent-Length: 8\r\n\r\n${SECRET}`,
    '/unasked-upgrade': `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n${SECRET}`,
    '/huge-head': `HTTP/1.1 200 OK\r\n${'x-pad: ' + 'a'.repeat(70 * 1024)}\r\nContent-Length: 8\r\n\r\n${SECRET}`,
  };

  it.each(Object.keys(hostile))('%s: 502 UPE, nothing of the body forwarded', async (path) => {
    const up = await rawUpstream({
      [path]: { pieces: [hostile[path]!] },
      '/next': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext'] },
    });
    const port = await gatewayTo(up);
    const res = await get(port, path);
    expect(res.status).toBe(502);
    expect(res.body).not.toContain(SECRET);
    // The connection that carried it is gone: the next request opens another and is answered.
    expect(await get(port, '/next')).toMatchObject({ status: 200, body: 'next' });
    expect(up.connections()).toBe(2);
  });

  const badChunks: Record<string, string> = {
    '/bad-chunk-size': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${SECRET}\r\n0\r\n\r\n`,
    '/prefixed-chunk-size': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/negative-chunk-size': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-8\r\n${SECRET}\r\n0\r\n\r\n`,
    '/huge-chunk-size': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n${SECRET}\r\n0\r\n\r\n`,
    '/chunk-no-crlf': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nSMUGxx0\r\n\r\n`,
    '/bare-lf-chunk': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\n${SECRET}\r\n0\r\n\r\n`,
  };

  it.each(Object.keys(badChunks))(
    '%s: the response is cut (its head may have gone out), nothing of the chunk forwarded',
    async (path) => {
      const up = await rawUpstream({
        [path]: { pieces: [badChunks[path]!] },
        '/next': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext'] },
      });
      const port = await gatewayTo(up);
      // The head may or may not have left the gateway before the cut (HTTP/1.1 writes it lazily).
      const seen: Buffer[] = [];
      await expect(
        (async () => {
          const res = await request(`http://127.0.0.1:${port}${path}`, { reset: true });
          for await (const c of res.body) seen.push(c as Buffer);
        })(),
      ).rejects.toThrow();
      expect(Buffer.concat(seen).toString('latin1')).not.toContain(SECRET);
      expect(await get(port, '/next')).toMatchObject({ status: 200, body: 'next' });
      expect(up.connections()).toBe(2);
    },
  );

  it('a second response behind the first in the same write is never given to the next request', async () => {
    const smuggled = `HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n${SECRET}`;
    const up = await rawUpstream({
      '/first': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst' + smuggled] },
      '/second': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond'] },
    });
    const port = await gatewayTo(up);
    expect(await get(port, '/first')).toMatchObject({ status: 200, body: 'first' });
    expect(await get(port, '/second')).toMatchObject({ status: 200, body: 'second' });
    expect(up.connections()).toBe(2);
  });

  it('bytes sent on an idle connection close it; the next request gets its own answer', async () => {
    const up = await rawUpstream({
      '/first': {
        pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst'],
        later: `HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n${SECRET}`,
      },
      '/second': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond'] },
    });
    const port = await gatewayTo(up);
    expect(await get(port, '/first')).toMatchObject({ status: 200, body: 'first' });
    // The late bytes reach the gateway while the connection is idle; it closes the connection at
    // once, not at the 4 s idle timeout.
    await until(() => up.closed() === 1, { timeoutMs: 2500, what: 'the idle connection closed' });
    expect(await get(port, '/second')).toMatchObject({ status: 200, body: 'second' });
    expect(up.connections()).toBe(2);
  });

  it('a request resent after its idle connection closed at hand-off goes out as its new connection says, not with the first one’s connection: close', async () => {
    const ok = { pieces: ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'] };
    const up = await rawUpstream({ '/one': ok, '/two': ok });
    // Two requests a connection: the second request given to the first connection is its last.
    const port = await gatewayTo(up, { maxRequestsPerConnection: 2 });
    const client = connect(port, '127.0.0.1');
    cleanups.push(() => void client.destroy());
    let received = '';
    client.on('data', (b: Buffer) => (received += b.toString('latin1')));
    const answers = (): number => received.split('HTTP/1.1 200').length - 1;
    client.write('GET /one HTTP/1.1\r\nhost: raw.test\r\n\r\n');
    await until(() => answers() === 1, { what: 'the first answer' });
    expect(up.heads()).toEqual([{ connection: 1, path: '/one', connectionHeader: 'keep-alive' }]);

    // In one turn (the gateway runs in this process): the request reaches the gateway, then the
    // upstream's close of the idle connection; the gateway reads both in its next poll, in that
    // order, so it hands the request to the connection and then reads its close before the
    // request goes out (pools.ts resend).
    client.write('GET /two HTTP/1.1\r\nhost: raw.test\r\n\r\n');
    up.drop(1);

    await until(() => answers() === 2, { what: 'the second answer' });
    // Resent: the first connection never saw /two, the second one did, and not as its last
    // request (it has carried one of its two).
    expect(up.heads()).toEqual([
      { connection: 1, path: '/one', connectionHeader: 'keep-alive' },
      { connection: 2, path: '/two', connectionHeader: 'keep-alive' },
    ]);
    expect(up.closed()).toBe(1);
  });

  it('the upstream closing before the response is complete is 503 UC, the partial body not passed off as whole', async () => {
    const up = await rawUpstream({
      '/short': { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'], close: true },
      '/head-only': { pieces: ['HTTP/1.1 200 OK\r\nContent-Le'], close: true },
    });
    const port = await gatewayTo(up);
    // Headers went out already: the client sees the stream cut, not a complete 100-byte body.
    await expect(get(port, '/short')).rejects.toThrow();
    const res = await get(port, '/head-only');
    expect(res.status).toBe(503);
  });
});

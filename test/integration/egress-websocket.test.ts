/**
 * WebSocket through the egress proxy (issue 13): `GET http://host/ws` with `Upgrade: websocket`
 * in absolute form. An allowed host gets a working upgraded tunnel to a real WebSocket server
 * (the `ws` package) on loopback, through its cluster or straight to an address an entry names;
 * a blocked one gets the 403; an idle tunnel is closed (SI); each is logged on close.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  PROXY_PORT,
  sendHead,
  serviceEntryYaml,
  startEgressProxy,
  type EgressProxy,
} from '../support/egress-proxy.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

let wss: WebSocketServer;
let wsPort = 0;

beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wsPort = (wss.address() as { port: number }).port;
  wss.on('connection', (ws, req) => ws.on('message', (data) => ws.send(`${req.url} echo: ${String(data)}`)));
  return () => new Promise<void>((resolve) => wss.close(() => resolve()));
});

let started: EgressProxy | null = null;
afterEach(async () => {
  await started?.gw.close();
  started = null;
});

function yaml(): string {
  return [
    serviceEntryYaml({
      name: 'ws',
      hosts: ['ws.example.test'],
      resolution: 'STATIC',
      endpoints: ['127.0.0.1'],
      ports: [[80, 'http', 'HTTP', wsPort]],
    }),
    serviceEntryYaml({
      name: 'onprem',
      hosts: ['onprem.example.test'],
      resolution: 'STATIC',
      addresses: ['127.0.0.1'],
      ports: [[wsPort, 'http', 'HTTP', wsPort]],
    }),
  ].join('---\n');
}

async function proxy(idleTimeoutMs?: number): Promise<{ p: EgressProxy; routed: RequestContext[] }> {
  const routed: RequestContext[] = [];
  started = await startEgressProxy(
    yaml(),
    () => undefined,
    idleTimeoutMs === undefined ? {} : { idleTimeoutMs },
    {
      onRequestDone: (ctx) => routed.push(ctx),
    },
  );
  return { p: started, routed };
}

interface Upgraded {
  readonly status: number;
  readonly socket: Socket;
  /** Bytes read but not yet taken as a frame. */
  rest: Buffer;
}

/** The upgrade request in absolute form, as a WebSocket client behind HTTP_PROXY sends it. */
async function upgrade(port: number, target: string, host: string): Promise<Upgraded> {
  const { status, socket } = await sendHead(
    port,
    `GET ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
      `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
  );
  return { status, socket, rest: Buffer.alloc(0) };
}

/** One masked text frame (RFC 6455 §5.2; short payloads only), as a client must send it. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** The next unmasked text frame from the server (short payloads only). */
function nextText(u: Upgraded): Promise<string> {
  return new Promise((resolve) => {
    const tryRead = (): boolean => {
      if (u.rest.length < 2) return false;
      const len = u.rest[1]! & 0x7f;
      if (u.rest.length < 2 + len) return false;
      const text = u.rest.subarray(2, 2 + len).toString();
      u.rest = u.rest.subarray(2 + len);
      resolve(text);
      return true;
    };
    if (tryRead()) return;
    const onData = (c: Buffer): void => {
      u.rest = Buffer.concat([u.rest, c]);
      if (!tryRead()) return;
      u.socket.off('data', onData);
      u.socket.pause();
    };
    u.socket.on('data', onData);
    u.socket.resume();
  });
}

describe('egress proxy: WebSocket upgrades in absolute form', () => {
  it('an allowed host gets a working tunnel through its cluster, logged as 101 on close', async () => {
    const { p, routed } = await proxy();
    const u = await upgrade(p.gw.port(PROXY_PORT), 'http://ws.example.test/ws', 'ws.example.test');
    expect(u.status).toBe(101);
    u.socket.write(textFrame('hello'));
    expect(await nextText(u)).toBe('/ws echo: hello');
    u.socket.write(textFrame('again'));
    expect(await nextText(u)).toBe('/ws echo: again');
    u.socket.destroy();
    const done = await until(() => routed[0], { what: 'the access log entry' });
    expect([done.status, done.clusterName]).toEqual([101, 'outbound|80||ws.example.test']);
  });

  it('an address a ServiceEntry names is tunnelled straight to it', async () => {
    const { p } = await proxy();
    const u = await upgrade(
      p.gw.port(PROXY_PORT),
      `http://127.0.0.1:${wsPort}/direct`,
      `127.0.0.1:${wsPort}`,
    );
    expect(u.status).toBe(101);
    u.socket.write(textFrame('hi'));
    expect(await nextText(u)).toBe('/direct echo: hi');
    u.socket.destroy();
    const done = await until(() => p.done[0], { what: 'the access log entry' });
    expect([done.status, done.upstreamHost?.hostPort]).toEqual([101, `127.0.0.1:${wsPort}`]);
  });

  it('a blocked host gets the 403 naming it; nothing reaches a WebSocket server', async () => {
    const { p } = await proxy();
    const before = wss.clients.size;
    const u = await upgrade(p.gw.port(PROXY_PORT), 'http://evil.example.test/ws', 'evil.example.test');
    expect(u.status).toBe(403);
    u.socket.on('data', (c: Buffer) => (u.rest = Buffer.concat([u.rest, c]))).resume();
    await new Promise<void>((resolve) => u.socket.once('close', () => resolve()));
    expect(u.rest.toString()).toContain('evil.example.test:80 blocked');
    expect(wss.clients.size).toBe(before);
    const logged = await until(() => p.done[0], { what: 'the access log entry' });
    expect(logged.status).toBe(403);
  });

  it('a tunnel with no bytes either way for the idle timeout is closed (SI)', async () => {
    const { p, routed } = await proxy(300);
    const u = await upgrade(p.gw.port(PROXY_PORT), 'http://ws.example.test/idle', 'ws.example.test');
    expect(u.status).toBe(101);
    u.socket.resume();
    await new Promise<void>((resolve) => u.socket.once('close', () => resolve()));
    const done = await until(() => routed[0], { what: 'the access log entry' });
    expect(done.responseFlags).toBe('SI');
  });
});

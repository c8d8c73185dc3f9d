/**
 * nginx.ingress.kubernetes.io/proxy-send-timeout on a natively served Ingress: the clock runs
 * only while request body bytes wait for an upstream that does not take them (nginx's timer on
 * the upstream write), never while the gateway waits for a client that is slow to send.
 */
import { request, type IncomingMessage } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { compileIngressYaml, ingressYaml, path, serviceYaml } from '../support/ingress.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An upstream that accepts connections and never reads a byte from them. */
async function startDeaf(): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer({ pauseOnConnect: true }, (s) => {
    accepted += 1;
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as { port: number }).port, connections: () => accepted };
}

async function serve(upstreamPort: number, annotations: Record<string, string>) {
  const yaml = [
    ingressYaml({ name: 'upload', annotations, paths: [path('/', 'Prefix', 'store')] }),
    serviceYaml('store', upstreamPort),
  ].join('---\n');
  const { snapshot } = compileIngressYaml(yaml);
  const done: RequestContext[] = [];
  const gw: TestGateway = await startGatewayWithSnapshot(snapshot, { onRequestDone: (c) => done.push(c) });
  closers.push(() => gw.close());
  return { gw, done };
}

interface Answer {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
  readonly afterMs: number;
  /** Body bytes the client had written when the answer came. */
  readonly sent: number;
}

/**
 * POSTs `total` bytes in `chunk`-sized writes, each after `gapMs` (0 = as fast as the gateway
 * takes them), and resolves with the answer as soon as it comes, sent or not.
 */
function upload(gw: TestGateway, total: number, chunk: number, gapMs: number): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request(gw.url('/upload', 80), {
      method: 'POST',
      headers: { host: 'demo.example.com', 'content-length': String(total) },
    });
    req.on('response', (res: IncomingMessage) => {
      answered = true;
      const afterMs = performance.now() - started;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          connection: res.headers.connection,
          body: Buffer.concat(parts).toString(),
          afterMs,
          sent,
        }),
      );
      res.on('error', reject);
    });
    // Writes may fail once the gateway has answered and stopped reading; the answer is what counts.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const piece = Buffer.alloc(chunk, 0x61);
    const next = (): void => {
      if (answered || req.destroyed) return;
      if (sent >= total) return void req.end();
      const n = Math.min(chunk, total - sent);
      sent += n;
      const more = req.write(n === chunk ? piece : piece.subarray(0, n));
      if (gapMs > 0) setTimeout(next, gapMs);
      else if (more) setImmediate(next);
      else req.once('drain', next);
    };
    next();
  });
}

describe('proxy-send-timeout', () => {
  it('answers 504 UT when the upstream takes no body bytes for the timeout', async () => {
    const deaf = await startDeaf();
    const { gw, done } = await serve(deaf.port, { 'proxy-send-timeout': '1', 'proxy-body-size': '0' });
    // Far more than the loopback socket buffers hold, so writes to the deaf upstream block.
    const r = await upload(gw, 64 * 1024 * 1024, 64 * 1024, 0);
    expect(r.status).toBe(504);
    expect(r.body).toBe('upstream request timeout');
    // The rest of the body is never read, so the connection cannot carry another request.
    expect(r.connection).toBe('close');
    // The clock starts only once a write blocks: never before the timeout itself.
    expect(r.afterMs).toBeGreaterThanOrEqual(1000);
    // Well before the 60 s read timeout, which would answer the same status.
    expect(r.afterMs).toBeLessThan(20_000);
    expect(r.sent).toBeLessThan(64 * 1024 * 1024);
    expect(deaf.connections()).toBe(1);
    expect(done).toHaveLength(1);
    expect(done[0]!.responseFlags).toBe('UT');
    expect(done[0]!.responseDetails).toBe('upstream_response_timeout');
  });

  it('does not cut a client that sends slowly to an upstream that reads (nor does the read timeout)', async () => {
    const echo: Upstream = await startEcho({ name: 'store' });
    closers.push(() => echo.close());
    const { gw, done } = await serve(echo.port, { 'proxy-send-timeout': '1', 'proxy-read-timeout': '1' });
    // 8 pieces 400 ms apart: 2.8 s of upload, nothing blocked upstream at any time; nginx's read
    // timer, too, starts only once the request is sent.
    const r = await upload(gw, 8 * 1024, 1024, 400);
    expect(r.status).toBe(200);
    expect(r.afterMs).toBeGreaterThan(2000);
    expect((JSON.parse(r.body) as { body: string }).body).toBe('a'.repeat(8 * 1024));
    expect(done[0]!.responseFlags).toBe('-');
  });

  it('runs the read timeout once the whole body is sent: a silent upstream after a slow upload is 504', async () => {
    // Reads every byte it is sent and never answers.
    const sockets = new Set<Socket>();
    let received = 0;
    const silent = createServer((s) => {
      sockets.add(s);
      s.on('data', (c: Buffer) => (received += c.length));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closers.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          silent.close(() => r());
        }),
    );
    const { gw, done } = await serve((silent.address() as { port: number }).port, {
      'proxy-read-timeout': '1',
    });
    // 1.6 s of upload, then 1 s of silence: the answer comes after both, not 1 s after the head.
    const r = await upload(gw, 5 * 1024, 1024, 400);
    expect(r.status).toBe(504);
    expect(r.sent).toBe(5 * 1024);
    expect(received).toBeGreaterThan(5 * 1024);
    expect(r.afterMs).toBeGreaterThanOrEqual(2600);
    expect(done[0]!.responseFlags).toBe('UT');
  });

  it('is 60 s on every Ingress route by default, as ingress-nginx', () => {
    const yaml = [
      ingressYaml({ name: 'upload', paths: [path('/', 'Prefix', 'store')] }),
      serviceYaml('store', 8080),
    ].join('---\n');
    const { snapshot } = compileIngressYaml(yaml);
    const route = snapshot.listeners.get(80)!.httpTable!.exact.get('demo.example.com')!.routes[0]!;
    expect(route.action.kind === 'forward' && route.action.sendTimeoutMs).toBe(60_000);
  });
});

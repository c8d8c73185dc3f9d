/**
 * HTTP/2 requests end to end (DP-9, src/dataplane/http2-exchange.ts): requests with and without a
 * body, CONNECT and Expect. Each case pins what a client and the access log see, so HTTP/2
 * requests are answered the way HTTP/1.1 requests are, whatever object serves the stream.
 */
import { queryObjects } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connect,
  constants,
  createServer as createH2Server,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
} from 'node:http2';
import { createServer as createHttpServer } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { startGatewayFromYaml, startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { closedPort, startEcho, startRaw, type EchoBody, type Upstream } from '../support/upstreams.ts';
import { forwardTo, ops, prefix, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';
import { opensslLeaf, rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { compileAccessLogFormat } from '../../src/observability/access-log.ts';
import { createRequestObserver } from '../../src/observability/request-observer.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';
import { connect as netConnect } from 'node:net';
import { END_STREAM, frame, getBlock, HEADERS, PREFACE, SETTINGS } from '../support/h2-frames.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function upstream(u: Promise<Upstream>): Promise<Upstream> {
  const up = await u;
  cleanups.push(() => up.close());
  return up;
}

interface Answer {
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

function session(url: string, opts: Parameters<typeof connect>[1] = {}): ClientHttp2Session {
  const s = connect(url, opts);
  s.on('error', () => undefined);
  cleanups.push(() => void s.destroy());
  return s;
}

function h2(s: ClientHttp2Session, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const st = s.request({ ':authority': 'shop.example.com', ...headers }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    st.on('response', (h) => (head = h));
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('end', () => resolve({ headers: head, body: Buffer.concat(chunks) }));
    st.on('error', reject);
    if (body !== undefined) st.end(body);
  });
}

/** A plaintext gateway (h2c prior knowledge) whose finished requests are recorded. */
async function gateway(routes: Parameters<typeof snapshotOf>[0]['vhosts'][string]): Promise<{
  g: TestGateway;
  done: RequestContext[];
  s: ClientHttp2Session;
}> {
  const done: RequestContext[] = [];
  const g = await startGatewayWithSnapshot(snapshotOf({ vhosts: { '*': routes } }), {
    onRequestDone: (ctx) => done.push(ctx as RequestContext),
  });
  cleanups.push(() => g.close());
  return { g, done, s: session(`http://127.0.0.1:${g.port()}`) };
}

function cluster(name: string, up: Upstream, over: Parameters<typeof staticCluster>[2] = {}) {
  return staticCluster(`${name}.default.svc.cluster.local`, [{ address: '127.0.0.1', port: up.port }], over);
}

async function finished(done: RequestContext[], n: number): Promise<RequestContext[]> {
  await until(() => done.length >= n || null, { what: `${n} finished requests` });
  return done;
}

describe('HTTP/2 requests with and without a body (DP-9)', () => {
  it('GET (no body) and POST (body) are forwarded alike; neither is logged as cut off', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const { s, done } = await gateway([route('all', [], forwardTo([[cluster('shop', up), 100]]))]);
    const get = await h2(s, { ':path': '/a?q=1', cookie: 'a=1', 'x-thing': 'y' });
    expect(get.headers[':status']).toBe(200);
    expect(get.headers.server).toBe('istio-envoy');
    expect(get.headers['x-envoy-upstream-service-time']).toBeDefined();
    const seenGet = JSON.parse(get.body.toString()) as EchoBody;
    expect(seenGet.url).toBe('/a?q=1');
    expect(seenGet.headers['x-thing']).toBe('y');
    expect(seenGet.headers['transfer-encoding']).toBeUndefined();
    const post = await h2(s, { ':method': 'POST', ':path': '/b', 'content-type': 'text/plain' }, 'hello');
    expect(post.headers[':status']).toBe(200);
    const seenPost = JSON.parse(post.body.toString()) as EchoBody;
    expect(seenPost.body).toBe('hello');
    expect(seenPost.headers['transfer-encoding']).toBe('chunked');
    const head = await h2(s, { ':method': 'HEAD', ':path': '/c' });
    expect(head.headers[':status']).toBe(200);
    expect(head.body.length).toBe(0);
    const ctxs = await finished(done, 3);
    expect(ctxs.map((c) => `${c.method} ${c.status} ${c.responseFlags}`)).toEqual([
      'GET 200 -',
      'POST 200 -',
      'HEAD 200 -',
    ]);
  });

  it('a 3 MiB response to a GET arrives whole (flow control, drain)', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 97);
    const up = await upstream(
      startEcho({
        name: 'big',
        handle: (_req, res) => {
          res.writeHead(200, { 'content-type': 'x/big', 'content-length': big.length });
          res.end(big);
        },
      }),
    );
    const { s, done } = await gateway([route('all', [], forwardTo([[cluster('big', up), 100]]))]);
    const r = await h2(s, { ':path': '/big' });
    expect(r.headers[':status']).toBe(200);
    expect(r.body.length).toBe(big.length);
    expect((await finished(done, 1))[0]!.responseFlags).toBe('-');
  });

  it('upstream header case and repeats: names lowercased, Set-Cookie kept as separate fields', async () => {
    const up = await upstream(
      startRaw(
        'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing: y\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    const { s } = await gateway([route('all', [], forwardTo([[cluster('raw', up), 100]]))]);
    const r = await h2(s, { ':path': '/' });
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['x-thing']).toBe('y');
    expect(r.body.toString()).toBe('ok');
  });

  it('a response HTTP/2 cannot carry (repeated Content-Type) becomes 502 UPE', async () => {
    const up = await upstream(
      startRaw('HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 2\r\n\r\nok'),
    );
    const { s, done } = await gateway([route('all', [], forwardTo([[cluster('raw', up), 100]]))]);
    const r = await h2(s, { ':path': '/' });
    expect(r.headers[':status']).toBe(502);
    expect(r.body.toString()).toMatch(/^upstream connect error or disconnect\/reset before headers/);
    expect((await finished(done, 1))[0]!.responseFlags).toBe('UPE');
  });

  it('VS-21 response header operations apply; a `connection` header is dropped on HTTP/2', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const { s } = await gateway([
      route('all', [], forwardTo([[cluster('shop', up), 100]]), {
        response: ops({
          set: [
            ['X-Upper', 'v'],
            ['connection', 'close'],
          ],
          add: [['x-add', '1']],
        }),
      }),
    ]);
    const r = await h2(s, { ':path': '/' });
    expect(r.headers[':status']).toBe(200);
    expect(r.headers['x-upper']).toBe('v');
    expect(r.headers['x-add']).toBe('1');
    expect(r.headers.connection).toBeUndefined();
  });

  it('DR-6 overflow over HTTP/2: 503 UO with x-envoy-overloaded', async () => {
    const up = await upstream(startEcho({ name: 'slow', delayMs: 300 }));
    const c = cluster('slow', up, { maxRequests: 1 });
    const { s } = await gateway([route('all', [prefix('/')], forwardTo([[c, 100]]))]);
    const first = h2(s, { ':path': '/1' });
    await until(() => up.seen.length > 0 || null, { what: 'first request upstream' });
    const second = await h2(s, { ':path': '/2' });
    expect(second.headers[':status']).toBe(503);
    expect(second.headers['x-envoy-overloaded']).toBe('true');
    expect((await first).headers[':status']).toBe(200);
  });

  it("CONNECT gets 405; Expect: 100-continue is forwarded; any other Expect gets 417 (Node's answers)", async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const { s } = await gateway([route('all', [], forwardTo([[cluster('shop', up), 100]]))]);
    const connectAnswer = await new Promise<number>((resolve, reject) => {
      const st = s.request(
        { ':method': 'CONNECT', ':authority': 'shop.example.com:443' },
        { endStream: true },
      );
      st.on('response', (h) => resolve(Number(h[':status'])));
      st.on('error', reject);
      st.resume();
    });
    expect(connectAnswer).toBe(405);
    const cont = await h2(s, { ':method': 'POST', ':path': '/c', expect: '100-continue' }, 'body');
    expect(cont.headers[':status']).toBe(200);
    expect((JSON.parse(cont.body.toString()) as EchoBody).body).toBe('body');
    const other = await h2(s, { ':path': '/e', expect: 'something' });
    expect(other.headers[':status']).toBe(417);
  });

  it('DP-1 MUTUAL over h2: the client certificate reaches the upstream as XFCC, a forged one never', async () => {
    const up = await upstream(startEcho({ name: 'up' }));
    const host = 'm.example.com';
    const b64 = (t: string): string => Buffer.from(t).toString('base64');
    const g = await startGatewayFromYaml(`
${tlsSecretYaml('m-cert', rsaLeaf([host]))}
---
apiVersion: v1
kind: Secret
metadata: { name: m-cert-cacert, namespace: istio-system }
data: { cacert: ${b64(testCa().certPem)} }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [${host}]
      tls: { mode: MUTUAL, credentialName: m-cert }
---
${upstreamRouteYaml(up.port, `[${host}]`)}
`);
    cleanups.push(() => g.close());
    const client = opensslLeaf({ key: 'ec', cn: 'client-a', sans: ['DNS:client.a'], client: true });
    const s = session(`https://127.0.0.1:${g.port(8443)}`, {
      servername: host,
      ca: testCa().certPem,
      cert: client.certPem,
      key: client.keyPem,
    });
    const r = await h2(s, { ':authority': host, ':path': '/', 'x-forwarded-client-cert': 'By=forged' });
    expect(r.headers[':status']).toBe(200);
    const hash = new X509Certificate(client.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
    expect((JSON.parse(r.body.toString()) as EchoBody).headers['x-forwarded-client-cert']).toBe(
      `Hash=${hash};Subject="CN=client-a";DNS=client.a`,
    );
  });
});

describe('HTTP/2 client cancels (RST_STREAM CANCEL)', () => {
  it('a stream the client resets before the answer is DC, its upstream request is cut, and the cluster slot is free again', async () => {
    let aborted = 0;
    const held = new Set<import('node:http').ServerResponse>();
    const server = createHttpServer((req, res) => {
      if (req.url === '/hold') {
        held.add(res);
        res.on('close', () => {
          held.delete(res);
          if (!res.writableFinished) aborted += 1;
        });
        return;
      }
      res.end('answered');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    const up = { port: (server.address() as { port: number }).port } as Upstream;
    // One request at a time: a slot the cancelled request kept would turn the next into 503 UO.
    const { s, done } = await gateway([
      route('all', [], forwardTo([[cluster('slow', up, { maxRequests: 1 }), 100]])),
    ]);
    const st = s.request({ ':authority': 'shop.example.com', ':path': '/hold' });
    st.on('error', () => undefined);
    await until(() => held.size === 1 || null, { what: 'the upstream holding the request' });
    st.close(constants.NGHTTP2_CANCEL);
    const [first] = await finished(done, 1);
    expect(first!.responseFlags).toBe('DC');
    await until(() => aborted === 1 || null, { what: 'the upstream request cut' });
    const next = await h2(s, { ':path': '/answer' });
    expect(next.headers[':status']).toBe(200);
    expect(next.body.toString()).toBe('answered');
  });
});

describe('HTTP/2 and connection-specific upstream headers', () => {
  it('an upstream HTTP2-Settings response header is dropped, so HTTP/2 clients still get the answer', async () => {
    const up = await upstream(
      startRaw('HTTP/1.1 200 OK\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\nok'),
    );
    const { s } = await gateway([route('all', [], forwardTo([[cluster('raw', up), 100]]))]);
    const a = await h2(s, { ':path': '/' });
    expect(a.headers[':status']).toBe(200);
    expect(a.body.toString()).toBe('ok');
    expect(a.headers['http2-settings']).toBeUndefined();
  });
});

describe('HTTP/2 access log bytes and response headers', () => {
  it('%BYTES_SENT% is the body sent on the stream and %RESP(X)% its head, for proxied answers and local replies', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const down = await closedPort();
    const done: RequestContext[] = [];
    const observe = createRequestObserver({ accessLog: null, metrics: null, tracing: null });
    const g = await startGatewayWithSnapshot(
      snapshotOf({
        vhosts: {
          '*': [
            route(
              'down',
              [prefix('/down')],
              forwardTo([
                [
                  staticCluster('down.default.svc.cluster.local', [{ address: '127.0.0.1', port: down }]),
                  100,
                ],
              ]),
            ),
            route('all', [], forwardTo([[cluster('shop', up), 100]])),
          ],
        },
      }),
      {
        onRequestDone: (ctx) => {
          observe(ctx);
          done.push(ctx as RequestContext);
        },
      },
    );
    cleanups.push(() => g.close());
    const s = session(`http://127.0.0.1:${g.port()}`);
    const ok = await h2(s, { ':path': '/shop' });
    await finished(done, 1);
    const failed = await h2(s, { ':path': '/down' });
    await finished(done, 2);
    expect(ok.headers[':status']).toBe(200);
    expect(failed.headers[':status']).toBe(503);
    const bytesSent = compileAccessLogFormat({ encoding: 'TEXT', format: '%BYTES_SENT%' });
    expect(done.map((ctx) => bytesSent.render(ctx))).toEqual([
      `${ok.body.length}\n`,
      `${failed.body.length}\n`,
    ]);
    expect(ok.body.length).toBeGreaterThan(0);
    expect(failed.body.length).toBeGreaterThan(0);
    // %RESP(X)% reads the head as it went out on the stream.
    const resp = compileAccessLogFormat({ encoding: 'TEXT', format: '%RESP(CONTENT-TYPE)% %RESP(SERVER)%' });
    expect(done.map((ctx) => resp.render(ctx))).toEqual([
      `${String(ok.headers['content-type'])} istio-envoy\n`,
      'text/plain istio-envoy\n',
    ]);
  });
});

describe('HTTP/2 access log addresses', () => {
  it('DOWNSTREAM_* addresses are logged for HTTP/2 requests too (read after the stream closed)', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const { g, s, done } = await gateway([route('all', [], forwardTo([[cluster('shop', up), 100]]))]);
    expect((await h2(s, { ':path': '/' })).headers[':status']).toBe(200);
    const [ctx] = await finished(done, 1);
    const line = compileAccessLogFormat({
      encoding: 'TEXT',
      format: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %PROTOCOL%\n',
    }).render(ctx!);
    expect(line).toBe(`127.0.0.1 127.0.0.1:${g.port()} HTTP/2\n`);
  });
});

describe('HTTP/2 sessions after they end', () => {
  it('a closed session is not held in memory (no timer per session keeps it)', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const g = await startGatewayWithSnapshot(
      snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[cluster('shop', up), 100]]))] } }),
    );
    cleanups.push(() => g.close());
    const sessionClass = await serverSessionClass();
    // queryObjects collects garbage first, then counts what is left.
    const before = queryObjects(sessionClass, { format: 'count' }) as number;
    for (let i = 0; i < 20; i++) {
      const s = connect(`http://127.0.0.1:${g.port()}`);
      s.on('error', () => undefined);
      expect((await h2(s, { ':path': '/' })).headers[':status']).toBe(200);
      await new Promise<void>((r) => s.close(() => r()));
    }
    await until(() => (queryObjects(sessionClass, { format: 'count' }) as number) <= before, {
      what: 'every closed server session collected',
      intervalMs: 200,
    });
  });

  it('a session whose peer vanished in the middle of a header block is let go after the idle timeout', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const g = await startGatewayWithSnapshot(
      snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[cluster('shop', up), 100]]))] } }),
      { timeouts: { keepAliveTimeoutMs: 1000 } },
    );
    cleanups.push(() => g.close());
    const sessionClass = await serverSessionClass();
    const before = queryObjects(sessionClass, { format: 'count' }) as number;
    for (let i = 0; i < 5; i++) {
      // HEADERS without END_HEADERS, then gone: Node waits on that header block forever.
      const s = netConnect(g.port(), '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(
        Buffer.concat([
          PREFACE,
          frame(SETTINGS, 0, 0),
          frame(HEADERS, END_STREAM, 1, getBlock('a.example.com')),
        ]),
      );
      await new Promise<void>((r) => setImmediate(r));
      s.destroy();
    }
    await until(() => (queryObjects(sessionClass, { format: 'count' }) as number) <= before, {
      what: 'the abandoned sessions collected',
      timeoutMs: 10_000,
      intervalMs: 250,
    });
  });

  it('a session with no open stream gets GOAWAY after the idle timeout (Envoy idle_timeout)', async () => {
    const up = await upstream(startEcho({ name: 'shop' }));
    const g = await startGatewayWithSnapshot(
      snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[cluster('shop', up), 100]]))] } }),
      { timeouts: { keepAliveTimeoutMs: 1000 } },
    );
    cleanups.push(() => g.close());
    const s = session(`http://127.0.0.1:${g.port()}`);
    const t0 = Date.now();
    expect((await h2(s, { ':path': '/' })).headers[':status']).toBe(200);
    await new Promise<void>((r) => s.once('goaway', () => r()));
    const idleMs = Date.now() - t0;
    expect(idleMs).toBeGreaterThanOrEqual(900);
    expect(idleMs).toBeLessThan(5000);
  });
});

/** Node exports no ServerHttp2Session class: one session of a throwaway server shows it. */
async function serverSessionClass(): Promise<new (...args: never[]) => object> {
  const server = createH2Server();
  const got = new Promise<object>((r) => server.once('session', (s) => r(s)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  client.on('error', () => undefined);
  const session = await got;
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return (session as { constructor: new (...args: never[]) => object }).constructor;
}

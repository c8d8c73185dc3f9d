/**
 * Request path end to end against hand-built snapshots: routing, local replies (DP-3, DP-4),
 * forwarded headers (DP-1, DP-2), header ops (VS-21), rewrite (VS-12, VS-14).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { PassThrough } from 'node:stream';
import { until } from '../support/until.ts';
import { sendRaw, startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { closedPort, startEcho, startRaw, type EchoBody, type Upstream } from '../support/upstreams.ts';
import {
  DEFAULT_RETRY,
  exact,
  forwardTo,
  ops,
  prefix,
  route,
  snapshotOf,
  staticCluster,
} from '../support/snapshot-builder.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function echo(name: string, opts: Parameters<typeof startEcho>[0] = {}): Promise<Upstream> {
  const u = await startEcho({ name, ...opts });
  cleanups.push(() => u.close());
  return u;
}

async function gatewayFor(snapshot: Parameters<typeof startGatewayWithSnapshot>[0]): Promise<TestGateway> {
  const g = await startGatewayWithSnapshot(snapshot);
  cleanups.push(() => g.close());
  return g;
}

async function get(g: TestGateway, path: string, headers: Record<string, string> = {}) {
  const res = await request(g.url(path), { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

describe('routing and local replies', () => {
  it('routes by host and path to the right upstream (GW-10, VS-4)', async () => {
    const a = await echo('a');
    const b = await echo('b');
    const ca = staticCluster('a.default.svc.cluster.local', [{ address: '127.0.0.1', port: a.port }]);
    const cb = staticCluster('b.default.svc.cluster.local', [{ address: '127.0.0.1', port: b.port }]);
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          'a.example.com': [
            route('api', [prefix('/api')], forwardTo([[cb, 100]])),
            route('rest', [], forwardTo([[ca, 100]])),
          ],
          '*.example.com': [route('wild', [], forwardTo([[cb, 100]]))],
        },
      }),
    );
    const r1 = await get(g, '/api/x?q=1', { host: 'A.Example.com:1234' });
    expect(r1.status).toBe(200);
    expect((JSON.parse(r1.text) as EchoBody).name).toBe('b');
    expect((JSON.parse(r1.text) as EchoBody).url).toBe('/api/x?q=1');
    const r2 = await get(g, '/other', { host: 'a.example.com' });
    expect((JSON.parse(r2.text) as EchoBody).name).toBe('a');
    const r3 = await get(g, '/', { host: 'deep.x.example.com' });
    expect((JSON.parse(r3.text) as EchoBody).name).toBe('b');
  });

  it('DP-4 no route → 404 NR, empty body, server: istio-envoy', async () => {
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          'a.example.com': [route('x', [exact('/only')], { kind: 'direct', status: 200, body: null })],
        },
      }),
    );
    const r = await get(g, '/nope', { host: 'a.example.com' });
    expect(r.status).toBe(404);
    expect(r.text).toBe('');
    expect(r.headers['server']).toBe('istio-envoy');
    const r2 = await get(g, '/', { host: 'unknown.example.org' });
    expect(r2.status).toBe(404);
  });

  it('VS-19 unknown cluster → 503 NC, empty body', async () => {
    const g = await gatewayFor(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[null, 100]]))] } }));
    const r = await get(g, '/');
    expect(r.status).toBe(503);
    expect(r.text).toBe('');
  });

  it('DP-4 connection refused → 503 UF with Envoy body; after retries the retried wording', async () => {
    const port = await closedPort();
    const c = staticCluster('down.default.svc.cluster.local', [{ address: '127.0.0.1', port }]);
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          'noretry.test': [route('x', [], forwardTo([[c, 100]]))],
          'retry.test': [route('y', [], forwardTo([[c, 100]], { retry: DEFAULT_RETRY }))],
        },
      }),
    );
    const r = await get(g, '/', { host: 'noretry.test' });
    expect(r.status).toBe(503);
    expect(r.text).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: remote connection failure',
    );
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['server']).toBe('istio-envoy');
    const r2 = await get(g, '/', { host: 'retry.test' });
    expect(r2.status).toBe(503);
    expect(r2.text).toBe(
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure',
    );
  });

  it('VS-22 route timeout → 504 UT upstream request timeout', async () => {
    const slow = await echo('slow', { delayMs: 2000 });
    const c = staticCluster('slow.default.svc.cluster.local', [{ address: '127.0.0.1', port: slow.port }]);
    const g = await gatewayFor(
      snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]], { timeoutMs: 100 }))] } }),
    );
    const t0 = Date.now();
    const r = await get(g, '/');
    expect(r.status).toBe(504);
    expect(r.text).toBe('upstream request timeout');
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('VS-22 the route timeout starts when the whole request has been received', async () => {
    const u = await echo('upload');
    const c = staticCluster('upload.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(
      snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]], { timeoutMs: 300 }))] } }),
    );
    // The body takes ~600 ms to arrive: longer than the timeout, which must not have started yet.
    const body = new PassThrough();
    const pending = request(g.url('/up'), { method: 'POST', body });
    for (let i = 0; i < 6; i++) {
      body.write('x'.repeat(10));
      await new Promise((r) => setTimeout(r, 100));
    }
    body.end();
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect((JSON.parse(await res.body.text()) as EchoBody).body).toHaveLength(60);
  });

  it('DP-4 upstream speaking garbage → 502 UPE', async () => {
    const raw = await startRaw('this is not http\r\n\r\n');
    cleanups.push(() => raw.close());
    const c = staticCluster('garbage.default.svc.cluster.local', [{ address: '127.0.0.1', port: raw.port }]);
    const g = await gatewayFor(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }));
    const r = await get(g, '/');
    expect(r.status).toBe(502);
  });

  it('DP-4 upstream closing before the response → 503 UC connection termination', async () => {
    const raw = await startRaw('');
    cleanups.push(() => raw.close());
    const c = staticCluster('closer.default.svc.cluster.local', [{ address: '127.0.0.1', port: raw.port }]);
    const g = await gatewayFor(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }));
    const r = await get(g, '/');
    expect(r.status).toBe(503);
    expect(r.text).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
    );
  });

  it('DR-6 maxRequests reached → 503 UO with x-envoy-overloaded', async () => {
    const slow = await echo('slow', { delayMs: 300 });
    const c = staticCluster('cap.default.svc.cluster.local', [{ address: '127.0.0.1', port: slow.port }], {
      maxRequests: 1,
    });
    const g = await gatewayFor(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }));
    const first = get(g, '/1');
    await until(() => slow.seen.length > 0 || null, { what: 'first request in flight' }).catch(
      () => undefined,
    );
    const second = await get(g, '/2');
    expect(second.status).toBe(503);
    expect(second.headers['x-envoy-overloaded']).toBe('true');
    expect(second.text).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    );
    expect((await first).status).toBe(200);
  });

  it('DC: a client that goes away mid-response cancels the upstream request', async () => {
    let upstreamClosed = false;
    const up = await echo('stream', {
      handle: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first chunk');
        res.on('close', () => (upstreamClosed = true));
      },
    });
    const c = staticCluster('dc.default.svc.cluster.local', [{ address: '127.0.0.1', port: up.port }]);
    const done: string[] = [];
    const g = await startGatewayWithSnapshot(
      snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }),
      {
        onRequestDone: (ctx) => done.push(`${ctx.status} ${ctx.responseFlags}`),
      },
    );
    cleanups.push(() => g.close());
    const res = await request(g.url('/'));
    for await (const chunk of res.body) {
      expect(String(chunk)).toBe('first chunk');
      break;
    }
    await until(() => upstreamClosed, { what: 'upstream request cancelled' });
    await until(() => done.length === 1, { what: 'request finished' });
    expect(done[0]).toBe('200 DC');
  });

  it('VS-17 direct response: text/plain for a body; VS-21 response ops apply', async () => {
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          '*': [
            route(
              'd',
              [exact('/d')],
              { kind: 'direct', status: 418, body: new TextEncoder().encode('teapot') },
              {
                response: ops({ set: [['x-from', 'route']] }),
              },
            ),
            route(
              'j',
              [exact('/j')],
              { kind: 'direct', status: 200, body: new TextEncoder().encode('{}') },
              {
                response: ops({ set: [['content-type', 'application/json']] }),
              },
            ),
          ],
        },
      }),
    );
    const r = await get(g, '/d');
    expect(r.status).toBe(418);
    expect(r.text).toBe('teapot');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['x-from']).toBe('route');
    const j = await get(g, '/j');
    expect(j.headers['content-type']).toBe('application/json');
  });

  it('VS-16 redirect uses the shared Location builder', async () => {
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          '*': [
            route('r', [], {
              kind: 'redirect',
              code: 301,
              scheme: 'https',
              authority: null,
              port: null,
              derivePort: null,
              uri: '/new',
              httpsRedirect: false,
            }),
          ],
        },
      }),
    );
    const r = await get(g, '/old?a=1', { host: 'h.example.com' });
    expect(r.status).toBe(301);
    expect(r.headers['location']).toBe('https://h.example.com/new?a=1');
    expect(r.text).toBe('');
  });
});

describe('forwarded request and response headers', () => {
  it('DP-1 x-forwarded-*, x-request-id, x-envoy-* stripped; DP-2 server and service time; hop-by-hop both ways', async () => {
    const u = await echo('h', {
      headers: {
        'x-keep': 'yes',
        server: 'upstream-server',
        'keep-alive': 'timeout=99',
        'x-private': 'drop-me',
        'set-cookie': ['a=1', 'b=2'],
        connection: 'x-private',
      },
    });
    const c = staticCluster('h.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          '*': [
            route('x', [], forwardTo([[c, 100]]), {
              request: ops({ set: [['x-route', 'r']], remove: ['x-remove-me'] }),
              response: ops({ add: [['x-resp', 'added']] }),
            }),
          ],
        },
      }),
    );
    const r = await get(g, '/p', {
      host: 'svc.example.com',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-request-id': 'client-chosen',
      'x-envoy-retry-on': '5xx',
      'x-envoy-upstream-rq-timeout-ms': '1',
      'x-remove-me': '1',
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.text) as EchoBody;
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.9,127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-request-id']).not.toBe('client-chosen');
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers['x-envoy-external-address']).toBe('127.0.0.1');
    expect(seen.headers['x-envoy-attempt-count']).toBe('1');
    expect(seen.headers['x-envoy-retry-on']).toBeUndefined();
    expect(seen.headers['x-envoy-upstream-rq-timeout-ms']).toBeUndefined();
    expect(seen.headers['x-remove-me']).toBeUndefined();
    expect(seen.headers['x-route']).toBe('r');
    expect(seen.headers['host']).toBe('svc.example.com');
    expect(r.headers['server']).toBe('istio-envoy');
    expect(r.headers['x-envoy-upstream-service-time']).toMatch(/^\d+$/);
    expect(r.headers['x-keep']).toBe('yes');
    expect(r.headers['x-resp']).toBe('added');
    expect(r.headers['x-private']).toBeUndefined();
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['keep-alive']).not.toBe('timeout=99');
  });

  it('hop-by-hop request headers and headers named in Connection are not forwarded', async () => {
    const u = await echo('hop');
    const c = staticCluster('hop.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }));
    const r = await sendRaw(
      g.port(),
      'GET /h HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: gone\r\nKeep-Alive: timeout=5\r\n' +
        'TE: gzip, trailers\r\nProxy-Connection: keep-alive\r\nTrailer: x-t\r\nX-Stay: here\r\n\r\n',
    );
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as EchoBody;
    for (const h of ['x-hop', 'proxy-connection', 'trailer']) expect(seen.headers[h]).toBeUndefined();
    // Envoy (since 1.30, envoyproxy/envoy#32255) keeps TE only as `trailers`, which gRPC servers need.
    expect(seen.headers['te']).toBe('trailers');
    expect(seen.headers['keep-alive']).toBeUndefined();
    expect(seen.headers['x-stay']).toBe('here');
  });

  it('DP-1 with numTrustedProxies: client XFP and request id kept, external address from XFF', async () => {
    const u = await echo('t');
    const c = staticCluster('t.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(
      snapshotOf({
        vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] },
        settings: { numTrustedProxies: 1 },
      }),
    );
    const r = await get(g, '/', {
      'x-forwarded-for': '198.51.100.1, 203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-request-id': 'abc',
    });
    const seen = JSON.parse(r.text) as EchoBody;
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-request-id']).toBe('abc');
    expect(seen.headers['x-envoy-external-address']).toBe('203.0.113.7');
  });

  it('request bodies (content-length and chunked) arrive intact; HEAD, 204 and 304 pass without bodies', async () => {
    const u = await echo('b', {
      handle: (req, res) => {
        if (req.url === '/204') return void res.writeHead(204).end();
        if (req.url === '/304') return void res.writeHead(304, { etag: '"x"' }).end();
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(200, {
            'content-type': 'text/plain',
            'content-length': body.length,
          });
          res.end(req.method === 'HEAD' ? undefined : body);
        });
      },
    });
    const c = staticCluster('b.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(snapshotOf({ vhosts: { '*': [route('x', [], forwardTo([[c, 100]]))] } }));
    const fixed = await request(g.url('/p'), { method: 'POST', body: 'hello world' });
    expect(await fixed.body.text()).toBe('hello world');
    const chunked = await sendRaw(
      g.port(),
      'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    expect(chunked.status).toBe(200);
    expect(chunked.body).toBe('hello world');
    const head = await request(g.url('/h'), { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(await head.body.text()).toBe('');
    expect((await request(g.url('/204'))).statusCode).toBe(204);
    const notModified = await request(g.url('/304'));
    expect(notModified.statusCode).toBe(304);
    expect(notModified.headers['etag']).toBe('"x"');
  });

  it('VS-12/VS-14 prefix rewrite and authority; x-envoy-original-path', async () => {
    const u = await echo('rw');
    const c = staticCluster('rw.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(
      snapshotOf({
        vhosts: {
          '*': [
            route(
              'x',
              [prefix('/foo')],
              forwardTo([[c, 100]], {
                rewrite: { kind: 'prefix', prefix: '/foo', ignoreCase: false, replacement: '/bar' },
                authority: 'internal.svc',
              }),
            ),
          ],
        },
      }),
    );
    const r = await get(g, '/foo/x?key=value');
    const seen = JSON.parse(r.text) as EchoBody;
    expect(seen.url).toBe('/bar/x?key=value');
    expect(seen.headers['host']).toBe('internal.svc');
    expect(seen.headers['x-envoy-original-path']).toBe('/foo/x?key=value');
  });

  it('AP-9 the normalised path is routed and forwarded', async () => {
    const u = await echo('n');
    const c = staticCluster('n.default.svc.cluster.local', [{ address: '127.0.0.1', port: u.port }]);
    const g = await gatewayFor(
      snapshotOf({ vhosts: { '*': [route('x', [prefix('/api/')], forwardTo([[c, 100]]))] } }),
    );
    const r = await get(g, '/x/../api/%61b/./c');
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as EchoBody).url).toBe('/api/ab/c');
  });
});

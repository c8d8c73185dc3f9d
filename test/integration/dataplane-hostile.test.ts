/**
 * DP-4 / AP-9 hostile input: exact bytes over raw TCP. Every case must get Envoy's status and
 * never reach the upstream.
 */
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sendRaw, startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { forwardTo, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';

let upstream: Upstream;
let g: TestGateway;

beforeEach(async () => {
  upstream = await startEcho({ name: 'victim' });
  const c = staticCluster('victim.default.svc.cluster.local', [
    { address: '127.0.0.1', port: upstream.port },
  ]);
  g = await startGatewayWithSnapshot(
    snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[c, 100]]))] } }),
    {
      timeouts: { headersTimeoutMs: 300, checkIntervalMs: 50 },
    },
  );
});

afterEach(async () => {
  await g.close();
  await upstream.close();
});

const H = 'Host: a.example.com\r\n';

const corpus: [name: string, bytes: string, status: number][] = [
  ['AP-9 lowercase method', `get / HTTP/1.1\r\n${H}\r\n`, 400],
  ['unknown method token with bad chars', `G(T / HTTP/1.1\r\n${H}\r\n`, 400],
  [
    'both Content-Length and Transfer-Encoding',
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    'duplicate differing Content-Length',
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    400,
  ],
  ['Transfer-Encoding other than chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, 501],
  [
    'Transfer-Encoding chunked not last',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`,
    501,
  ],
  ['obs-fold header continuation', `GET / HTTP/1.1\r\n${H}X-A: one\r\n  two\r\n\r\n`, 400],
  ['raw NUL in path', `GET /a\u0000b HTTP/1.1\r\n${H}\r\n`, 400],
  ['AP-9 %00 in path', `GET /a%00b HTTP/1.1\r\n${H}\r\n`, 400],
  ['raw space in path', `GET /a b HTTP/1.1\r\n${H}\r\n`, 400],
  ['AP-9 whitespace in a header name', `GET / HTTP/1.1\r\n${H}X-Bad : v\r\n\r\n`, 400],
  ['control character in a header value', `GET / HTTP/1.1\r\n${H}X-Bad: a\u0001b\r\n\r\n`, 400],
  ['missing Host on HTTP/1.1', `GET / HTTP/1.1\r\n\r\n`, 400],
  // Bytes outside RFC 3986 host and port in Host, found by outside smuggling tools: never routed.
  ...['a b', 'a}', 'a{b', ': a', 'a@b', 'a/b', 'a\\b', 'a"b', 'a\u00e9b', 'a<b>'].map(
    (host): [string, string, number] => [
      `invalid Host ${JSON.stringify(host)}`,
      `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      400,
    ],
  ),
  ['invalid authority in an absolute-form target', `GET http://a@evil/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: b.example.com\r\n\r\n`, 400],
  ['fragment in the request target', `GET /a#frag HTTP/1.1\r\n${H}\r\n`, 400],
  ['bare LF line endings', `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}\n`, 400],
  ['DP-4 HTTP/1.0 gets 426', `GET / HTTP/1.0\r\n${H}\r\n`, 426],
  [
    'DP-4 header block over 60 KiB gets 431',
    `GET / HTTP/1.1\r\n${H}Cookie: ${'c'.repeat(70 * 1024)}\r\n\r\n`,
    431,
  ],
  [
    'many headers totalling over 60 KiB gets 431',
    `GET / HTTP/1.1\r\n${H}${Array.from({ length: 700 }, (_, i) => `X-H${i}: ${'v'.repeat(100)}\r\n`).join('')}\r\n`,
    431,
  ],
];

describe('DP-4 hostile requests never reach the upstream', () => {
  for (const [name, bytes, status] of corpus) {
    it(`${name} → ${status}`, async () => {
      const r = await sendRaw(g.port(), Buffer.from(bytes, 'latin1'));
      expect(r.status, r.raw.slice(0, 200)).toBe(status);
      expect(r.headers['server']).toBe('istio-envoy');
      expect(upstream.seen).toHaveLength(0);
    });
  }

  it('slow client that never finishes its headers → 408', async () => {
    const t0 = Date.now();
    const r = await sendRaw(g.port(), `GET / HTTP/1.1\r\n${H}X-Slow: still-typing`, 5000);
    expect(r.status).toBe(408);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(upstream.seen).toHaveLength(0);
  });

  it('a 30 KiB cookie passes (under Envoy 60 KiB)', async () => {
    const cookie = 'k=' + 'c'.repeat(30 * 1024);
    const r = await sendRaw(g.port(), `GET /ok HTTP/1.1\r\n${H}Cookie: ${cookie}\r\n\r\n`);
    expect(r.status).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    expect(upstream.seen[0]!.headers.cookie).toBe(cookie);
  });

  it('AP-9 dot segments cannot climb above the root', async () => {
    const r = await sendRaw(g.port(), `GET /../../etc/passwd HTTP/1.1\r\n${H}\r\n`);
    expect(r.status).toBe(200);
    expect(upstream.seen[0]!.url).toBe('/etc/passwd');
  });
});

describe('HTTP/1.1 pipelining (found by outside smuggling tools)', () => {
  it('pipelined requests, POSTs included, reach the upstream one at a time and are answered in order', async () => {
    // An upstream that takes 150 ms per request and records how many it holds at once.
    let inFlight = 0;
    let most = 0;
    const order: string[] = [];
    const slow = await startEcho({
      name: 'slow',
      handle: (req, res) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        order.push(req.url ?? '');
        req.resume();
        req.on('end', () =>
          setTimeout(() => {
            inFlight -= 1;
            res.end(`answer ${req.url}`);
          }, 150),
        );
      },
    });
    const c = staticCluster('slow.default.svc.cluster.local', [{ address: '127.0.0.1', port: slow.port }]);
    const pg = await startGatewayWithSnapshot(
      snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[c, 100]]))] } }),
    );
    try {
      const n = 6;
      let bytes = '';
      for (let i = 0; i < n; i++) {
        bytes +=
          i % 2 === 0
            ? `GET /r${i} HTTP/1.1\r\n${H}\r\n`
            : `POST /r${i} HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`;
      }
      const t0 = Date.now();
      const raw = await readAll(pg.port(), bytes, n);
      const elapsed = Date.now() - t0;
      const answers = [...raw.matchAll(/answer (\/r\d+)/g)].map((m) => m[1]);
      expect(answers).toEqual(Array.from({ length: n }, (_, i) => `/r${i}`));
      expect(order).toEqual(answers);
      expect(most).toBe(1);
      expect(elapsed).toBeGreaterThanOrEqual(n * 150 - 50);
    } finally {
      await pg.close();
      await slow.close();
    }
  });
});

/** Writes `bytes` at once on one connection and reads until `n` responses arrived. */
function readAll(port: number, bytes: string, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let raw = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`timed out; got ${JSON.stringify(raw.slice(0, 400))}`));
    }, 10_000);
    s.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      if ((raw.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= n && raw.endsWith(`answer /r${n - 1}`)) {
        clearTimeout(timer);
        s.destroy();
        resolve(raw);
      }
    });
    s.on('error', reject);
    s.write(bytes);
  });
}

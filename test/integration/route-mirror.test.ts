/**
 * VS-27 request mirroring end to end, against real loopback upstreams that can be slowed, failed,
 * reset or killed: the mirror gets a faithful copy (headers, Host, body bytes), and the primary is
 * never delayed, failed or buffered by a slow, failing or absent mirror. A mirror that cannot
 * keep up with the body is cut and counted.
 *
 * Percentages are random rolls per request. Each share test sends N requests and accepts the
 * mirrored count within 5 standard deviations of the binomial mean (N·p ± 5·√(N·p·(1−p))): a
 * correct implementation fails such a test about once in 1.7 million runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { createServer as createH2Server } from 'node:http2';
import { request } from 'undici';
import { Registry } from 'prom-client';
import { closedPort, startEcho, type Upstream } from '../support/upstreams.ts';
import { startTraffic, trafficYaml } from '../support/traffic-config.ts';
import type { TestGateway } from '../support/gateway.ts';
import { generatedStream } from '../support/load.ts';
import { until } from '../support/until.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import { mirrorCounts, type MirrorResult } from '../../src/upstream/mirror.ts';
import { registerMirrorCounters } from '../../src/observability/metrics.ts';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request as opsRequest,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';

const MIRROR_CLUSTER = 'outbound|80||mirror.internal';
const MiB = 1024 * 1024;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
});

async function echo(opts: Parameters<typeof startEcho>[0]): Promise<Upstream> {
  const up = await startEcho(opts);
  cleanups.push(() => up.close());
  return up;
}

async function gateway(
  ports: { shop: number; mirror: number },
  rule: string,
  mesh?: string,
): Promise<TestGateway> {
  const { gw } = await startTraffic(trafficYaml(ports, rule, mesh === undefined ? {} : { mesh }));
  cleanups.push(() => gw.close());
  return gw;
}

const MIRROR_ALL = `  - route: [{destination: {host: shop.internal}}]
    mirror: {host: mirror.internal}
`;

function counted(result: MirrorResult): number {
  return mirrorCounts().get(MIRROR_CLUSTER)?.[result] ?? 0;
}

async function get(gw: TestGateway, path = '/', headers: Record<string, string> = {}) {
  const t0 = performance.now();
  const res = await request(gw.url(path), { headers: { host: 'shop.example.com', ...headers } });
  const body = await res.body.text();
  return { status: res.statusCode, body, ms: performance.now() - t0 };
}

function within5Sigma(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.floor(n * p - 5 * sd), Math.ceil(n * p + 5 * sd)];
}

describe('request mirroring (VS-27)', () => {
  it('the mirror gets a faithful copy: method, path, headers, Host unchanged, same request id; its answer is dropped', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror', status: 500 });
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    const before = counted('completed');
    const r = await get(gw, '/items?page=2', { 'x-custom': 'yes' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).name).toBe('shop');
    await until(() => mirror.seen.length === 1, { what: 'the mirrored copy' });
    const [p, m] = [shop.seen[0]!, mirror.seen[0]!];
    expect(m.method).toBe('GET');
    expect(m.url).toBe('/items?page=2');
    expect(m.headers.host).toBe('shop.example.com');
    expect(m.headers['x-custom']).toBe('yes');
    expect(m.headers['x-request-id']).toBe(p.headers['x-request-id']);
    expect(m.headers['x-forwarded-for']).toBe(p.headers['x-forwarded-for']);
    expect(m.headers['x-envoy-attempt-count']).toBe('1');
    await until(() => counted('completed') === before + 1, { what: 'the mirror counted' });
  });

  it('MeshConfig shadowHostSuffix: Host gets -shadow before the port, as Istio before 1.28', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror' });
    const gw = await gateway(
      { shop: shop.port, mirror: mirror.port },
      MIRROR_ALL,
      '  shadowHostSuffix: true',
    );
    await get(gw, '/', { host: 'shop.example.com:8080' });
    await until(() => mirror.seen.length === 1);
    expect(mirror.seen[0]!.headers.host).toBe('shop.example.com-shadow:8080');
    expect(shop.seen[0]!.headers.host).toBe('shop.example.com:8080');
  });

  it('a slow mirror never delays the primary', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror', delayMs: 5000 });
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    for (let i = 0; i < 20; i++) {
      const r = await get(gw);
      expect(r.status).toBe(200);
      // Far below the mirror's 5 s: nothing waited for it.
      expect(r.ms).toBeLessThan(2500);
    }
    // The mirror got every copy and is still sitting on them.
    await until(() => mirror.seen.length === 20);
    expect(shop.seen).toHaveLength(20);
  });

  it('an absent mirror (nothing listening) never fails the primary; the copies count as failed', async () => {
    const shop = await echo({ name: 'shop' });
    const gw = await gateway({ shop: shop.port, mirror: await closedPort() }, MIRROR_ALL);
    const before = counted('failed');
    for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(200);
    // At least: a copy still in flight from the test before may end as failed when its pools close.
    await until(() => counted('failed') >= before + 5, { what: 'five failed mirrors' });
  });

  it('a mirror that resets every request, or is killed mid-request, never touches the primary', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror', handle: (req) => req.socket.destroy() });
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    const before = counted('failed');
    for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(200);
    await until(() => counted('failed') === before + 5);

    // A mirror that hangs, then dies with copies in flight.
    const hanging = await echo({ name: 'hanging', handle: () => undefined });
    const gw2 = await gateway({ shop: shop.port, mirror: hanging.port }, MIRROR_ALL);
    const failed = counted('failed');
    for (let i = 0; i < 5; i++) expect((await get(gw2)).status).toBe(200);
    await until(() => hanging.seen.length === 5);
    await hanging.close();
    await until(() => counted('failed') === failed + 5, { what: 'the killed mirror counted' });
    expect((await get(gw2)).status).toBe(200);
  });

  it("a mirror counts against its cluster's circuit breaker: over http2MaxRequests it is not sent", async () => {
    const shop = await echo({ name: 'shop' });
    const hanging = await echo({ name: 'hanging', handle: () => undefined });
    const { gw } = await startTraffic(
      trafficYaml({ shop: shop.port, mirror: hanging.port }, MIRROR_ALL, {
        extra: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mirror, namespace: default}
spec:
  host: mirror.internal
  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 1}}}
`,
      }),
    );
    cleanups.push(() => gw.close());
    const before = counted('failed');
    for (let i = 0; i < 5; i++) expect((await get(gw)).status).toBe(200);
    await until(() => counted('failed') === before + 4, { what: 'four copies over the cap' });
    expect(hanging.seen).toHaveLength(1);
  });

  it('a mirror to an HTTP/2 cluster (h2UpgradePolicy UPGRADE) is sent over h2c with its body', async () => {
    const shop = await echo({ name: 'shop' });
    const seen: { protocol: string; path: string; body: string }[] = [];
    const h2 = createH2Server((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ protocol: req.httpVersion, path: req.url, body });
        res.end('mirror');
      });
    });
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => h2.close(() => r())));
    const { gw } = await startTraffic(
      trafficYaml({ shop: shop.port, mirror: (h2.address() as AddressInfo).port }, MIRROR_ALL, {
        extra: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mirror, namespace: default}
spec:
  host: mirror.internal
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
`,
      }),
    );
    cleanups.push(() => gw.close());
    const res = await request(gw.url('/orders'), {
      method: 'POST',
      headers: { host: 'shop.example.com' },
      body: 'copy me',
    });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    await until(() => seen.length === 1, { what: 'the mirrored copy over HTTP/2' });
    expect(seen[0]).toEqual({ protocol: '2.0', path: '/orders', body: 'copy me' });
  });

  it('a primary that fails still has its copy mirrored (the client gets the failure)', async () => {
    const mirror = await echo({ name: 'mirror' });
    const gw = await gateway(
      { shop: await closedPort(), mirror: mirror.port },
      `${MIRROR_ALL}    retries: {attempts: 0}\n`,
    );
    const r = await get(gw, '/down');
    expect(r.status).toBe(503);
    await until(() => mirror.seen.length === 1);
    expect(mirror.seen[0]!.url).toBe('/down');
  });

  it('the request body reaches the mirror byte for byte, streamed with the primary', async () => {
    const mirrorDigests: string[] = [];
    const digest = (name: string, sink: string[] | null) =>
      echo({
        name,
        handle: (req, res) => {
          const h = createHash('sha256');
          let n = 0;
          req.on('data', (c: Buffer) => {
            h.update(c);
            n += c.length;
          });
          req.on('end', () => {
            const d = `${n} ${h.digest('hex')}`;
            sink?.push(d);
            res.end(d);
          });
        },
      });
    const shop = await digest('shop', null);
    const mirror = await digest('mirror', mirrorDigests);
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    const before = counted('completed');
    const size = 3 * MiB + 17;
    const res = await request(gw.url('/upload'), {
      method: 'POST',
      headers: { host: 'shop.example.com', 'content-length': String(size) },
      body: generatedStream(size, 50_000),
    });
    const answer = await res.body.text();
    expect(res.statusCode).toBe(200);
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(50_000, 0x61);
    for (let left = size; left > 0; left -= chunk.length)
      hash.update(chunk.subarray(0, Math.min(left, chunk.length)));
    const expected = `${size} ${hash.digest('hex')}`;
    expect(answer).toBe(expected);
    // The mirror saw the same bytes (its answer is dropped, so it is read from its log).
    await until(() => counted('completed') === before + 1, { what: 'the mirror completed' });
    expect(mirrorDigests).toEqual([expected]);
    // A chunked body (no content-length) is copied too.
    const chunked = await request(gw.url('/upload'), {
      method: 'POST',
      headers: { host: 'shop.example.com' },
      body: generatedStream(MiB, 10_000),
    });
    expect(chunked.statusCode).toBe(200);
    expect((await chunked.body.text()).split(' ')[0]).toBe(String(MiB));
    await until(() => counted('completed') === before + 2);
    expect(mirrorDigests[1]!.split(' ')[0]).toBe(String(MiB));
  });

  it('a mirror that does not read its body is cut once it falls behind; the primary streams on', async () => {
    const shop = await echo({
      name: 'shop',
      handle: (req, res) => {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(String(n)));
      },
    });
    // Accepts the request and never reads a byte of the body.
    const mirror = await echo({ name: 'stuck', handle: (req) => req.pause() });
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    const before = counted('cut');
    const size = 64 * MiB;
    const res = await request(gw.url('/upload'), {
      method: 'POST',
      headers: { host: 'shop.example.com', 'content-length': String(size) },
      body: generatedStream(size),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe(String(size));
    await until(() => counted('cut') === before + 1, { what: 'the stuck mirror cut' });
  });

  it('a client that leaves mid-body cuts the mirror too (it cannot be completed)', async () => {
    const shop = await echo({ name: 'shop', handle: (req) => req.resume() });
    const mirror = await echo({ name: 'mirror', handle: (req) => req.resume() });
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    const before = counted('cut');
    const s = connect(gw.port(), '127.0.0.1');
    s.on('error', () => undefined);
    s.write('POST /upload HTTP/1.1\r\nhost: shop.example.com\r\ncontent-length: 100000\r\n\r\n');
    s.write(Buffer.alloc(1000, 0x62));
    await until(() => mirror.seen.length === 1 && shop.seen.length === 1, { what: 'both upstreams reached' });
    s.destroy();
    await until(() => counted('cut') === before + 1, { what: 'the mirror cut' });
  });

  it('mirrorPercentage 25: about a quarter of 400 requests are mirrored (5 σ)', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror' });
    const gw = await gateway(
      { shop: shop.port, mirror: mirror.port },
      `${MIRROR_ALL}    mirrorPercentage: {value: 25}\n`,
    );
    const before = counted('completed');
    for (let i = 0; i < 400; i++) expect((await get(gw)).status).toBe(200);
    // Every copy that was sent has answered once the count stops moving with the seen list.
    await until(() => counted('completed') - before === mirror.seen.length);
    const [lo, hi] = within5Sigma(400, 0.25);
    expect(mirror.seen.length).toBeGreaterThanOrEqual(lo);
    expect(mirror.seen.length).toBeLessThanOrEqual(hi);
    expect(shop.seen).toHaveLength(400);
  });

  it('legacy mirrorPercent 50, and mirrors[] each with its own percentage (0 = never)', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror' });
    const never = await echo({ name: 'never' });
    const legacy = await gateway(
      { shop: shop.port, mirror: mirror.port },
      `${MIRROR_ALL}    mirrorPercent: 50\n`,
    );
    const before = counted('completed');
    for (let i = 0; i < 400; i++) await get(legacy);
    await until(() => counted('completed') - before === mirror.seen.length);
    const [lo, hi] = within5Sigma(400, 0.5);
    expect(mirror.seen.length).toBeGreaterThanOrEqual(lo);
    expect(mirror.seen.length).toBeLessThanOrEqual(hi);

    mirror.seen.length = 0;
    const { gw } = await startTraffic(
      trafficYaml(
        { shop: shop.port, mirror: mirror.port, never: never.port },
        `  - route: [{destination: {host: shop.internal}}]
    mirrors:
    - destination: {host: mirror.internal}
    - destination: {host: never.internal}
      percentage: {value: 0}
`,
      ),
    );
    cleanups.push(() => gw.close());
    for (let i = 0; i < 10; i++) await get(gw);
    await until(() => mirror.seen.length === 10);
    expect(never.seen).toHaveLength(0);
    const action = gw.gateway.current.get().listeners.get(8080)!.httpTable!.exact.get('shop.example.com')!
      .routes[0]!.action;
    expect(action.kind === 'forward' && action.mirrors?.map((m) => m.clusterName)).toEqual([MIRROR_CLUSTER]);
  });

  it('`sluice serve` counts the copies on its metrics port', async () => {
    const a = await echo({ name: 'a' });
    const b = await echo({ name: 'b' });
    const port = await freePort();
    const dir = await makeConfigDir({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: a.port, b: b.port }),
      'route.yaml': routeYaml(
        1,
        'a',
        `    - match: [{ uri: { prefix: /m } }]
      route: [{ destination: { host: a.test.svc.cluster.local, port: { number: 80 } } }]
      mirror: { host: b.test.svc.cluster.local, port: { number: 80 } }
`,
      ),
    });
    cleanups.push(() => dir.remove());
    const opts = parseOptions(
      'serve',
      [
        ...['--config', dir.dir, '--bind', '127.0.0.1', '--status-port', '0', '--metrics-port', '0'],
        ...['--admin-port', '0', '--workers', '1', '--drain-delay', '0'],
      ],
      {},
    );
    const running = await startServe(opts, { logger: silentLogger() });
    cleanups.push(() => running.close());
    await until(() => running.isReady(), { what: 'first config applied' });
    const series =
      'sluice_mirror_requests_total{cluster="outbound|80||b.test.svc.cluster.local",result="completed"}';
    const scrape = async (): Promise<number> => {
      const text = await (
        await fetch(`http://127.0.0.1:${running.metricsServer.port}/stats/prometheus`)
      ).text();
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const before = await scrape();
    for (let i = 0; i < 3; i++)
      expect((await opsRequest(port, '/m', { host: 'example.com' })).status).toBe(200);
    await until(() => b.seen.length === 3);
    await until(async () => (await scrape()) === before + 3, { what: 'three copies on the metrics port' });
  });

  it('sluice_mirror_requests_total counts by cluster and result', async () => {
    const shop = await echo({ name: 'shop' });
    const mirror = await echo({ name: 'mirror' });
    const gw = await gateway({ shop: shop.port, mirror: mirror.port }, MIRROR_ALL);
    const registry = new Registry();
    registerMirrorCounters(registry, mirrorCounts);
    const scrape = async (): Promise<number> => {
      const text = await registry.metrics();
      const line = text
        .split('\n')
        .find((l) =>
          l.startsWith(`sluice_mirror_requests_total{cluster="${MIRROR_CLUSTER}",result="completed"}`),
        );
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const before = await scrape();
    for (let i = 0; i < 3; i++) await get(gw);
    await until(async () => (await scrape()) === before + 3, { what: 'three mirrored requests counted' });
  });
});

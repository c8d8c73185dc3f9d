/**
 * VS-26 fault injection end to end: a real gateway, a real upstream that counts what reaches it.
 * Delays and aborts as Envoy's fault filter injects them (body `fault filter abort`, flags DI and
 * FI, gRPC aborts as grpc-status), the route timeout starting after the delay, and a client that
 * leaves during the delay costing nothing upstream.
 *
 * Percentages are random rolls per request. Each share test sends N requests and accepts the
 * count within 5 standard deviations of the binomial mean (N·p ± 5·√(N·p·(1−p))): a correct
 * implementation fails such a test about once in 1.7 million runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { startTraffic, trafficYaml, type Logged } from '../support/traffic-config.ts';
import type { TestGateway } from '../support/gateway.ts';
import { until } from '../support/until.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await closeAllPools(true);
});

async function upstream(opts: Parameters<typeof startEcho>[0] = {}): Promise<Upstream> {
  const up = await startEcho({ name: 'shop', ...opts });
  cleanups.push(() => up.close());
  return up;
}

async function gateway(up: Upstream, rule: string): Promise<{ gw: TestGateway; log: Logged[] }> {
  const started = await startTraffic(trafficYaml({ shop: up.port }, rule));
  cleanups.push(() => started.gw.close());
  return started;
}

const route = `    route: [{destination: {host: shop.internal}}]\n`;

/** Binomial bounds at ±5 standard deviations. */
function within5Sigma(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.floor(n * p - 5 * sd), Math.ceil(n * p + 5 * sd)];
}

async function get(gw: TestGateway, path = '/', headers: Record<string, string> = {}) {
  const t0 = performance.now();
  const res = await request(gw.url(path), { headers: { host: 'shop.example.com', ...headers } });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - t0 };
}

describe('fault injection (VS-26)', () => {
  it('a 100 % abort answers the configured status with Envoy body and flag FI; nothing reaches the upstream', async () => {
    const up = await upstream();
    const { gw, log } = await gateway(
      up,
      `  - fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n${route}`,
    );
    const r = await get(gw);
    expect(r.status).toBe(418);
    expect(r.body).toBe('fault filter abort');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['server']).toBe('istio-envoy');
    expect(up.seen).toHaveLength(0);
    await until(() => log.length === 1);
    expect(log[0]).toEqual({ status: 418, flags: 'FI', details: 'fault_filter_abort' });
  });

  it('a 100 % delay holds the request that long, then forwards it; flag DI', async () => {
    const up = await upstream();
    const { gw, log } = await gateway(
      up,
      `  - fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}\n${route}`,
    );
    const r = await get(gw, '/slow');
    expect(r.status).toBe(200);
    expect(r.ms).toBeGreaterThanOrEqual(295);
    expect(up.seen.map((s) => s.url)).toEqual(['/slow']);
    await until(() => log.length === 1);
    expect(log[0]).toEqual({ status: 200, flags: 'DI', details: '-' });
  });

  it('delay then abort: both flags in Envoy order, the abort after the delay', async () => {
    const up = await upstream();
    const { gw, log } = await gateway(
      up,
      `  - fault:
      delay: {fixedDelay: 200ms, percentage: {value: 100}}
      abort: {httpStatus: 503, percentage: {value: 100}}
${route}`,
    );
    const r = await get(gw);
    expect(r.status).toBe(503);
    expect(r.body).toBe('fault filter abort');
    expect(r.ms).toBeGreaterThanOrEqual(195);
    expect(up.seen).toHaveLength(0);
    await until(() => log.length === 1);
    expect(log[0]!.flags).toBe('DI,FI');
  });

  it('an abort without percentage never fires (Istio: unset is 0 %)', async () => {
    const up = await upstream();
    const { gw } = await gateway(up, `  - fault: {abort: {httpStatus: 500}}\n${route}`);
    for (let i = 0; i < 20; i++) expect((await get(gw)).status).toBe(200);
    expect(up.seen).toHaveLength(20);
  });

  it('a gRPC abort: gRPC requests get 200 with grpc-status and grpc-message; others 200 with the body', async () => {
    const up = await upstream();
    const { gw, log } = await gateway(
      up,
      `  - fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n${route}`,
    );
    const grpc = await request(gw.url('/pkg.Svc/Call'), {
      method: 'POST',
      headers: { host: 'shop.example.com', 'content-type': 'application/grpc', te: 'trailers' },
      body: Buffer.from([0, 0, 0, 0, 0]),
    });
    await grpc.body.text();
    expect(grpc.statusCode).toBe(200);
    expect(grpc.headers['content-type']).toBe('application/grpc');
    expect(grpc.headers['grpc-status']).toBe('14');
    expect(grpc.headers['grpc-message']).toBe('fault filter abort');
    expect(grpc.headers['content-length']).toBe('0');
    const plain = await get(gw);
    expect(plain.status).toBe(200);
    expect(plain.body).toBe('fault filter abort');
    expect(plain.headers['grpc-status']).toBeUndefined();
    expect(up.seen).toHaveLength(0);
    await until(() => log.length === 2);
    expect(log.map((l) => l.flags)).toEqual(['FI', 'FI']);
  });

  it('a gRPC abort reaches a real gRPC client over HTTP/2 as that status (trailers-only)', async () => {
    const up = await upstream();
    const { gw } = await gateway(
      up,
      `  - fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}\n${route}`,
    );
    const client = new grpc.Client(`127.0.0.1:${gw.port()}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': 'shop.example.com',
    });
    cleanups.push(async () => client.close());
    const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
      client.makeUnaryRequest(
        '/shop.Catalog/List',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (e, v) => (e ? resolve(e) : reject(new Error(`unexpected answer ${String(v)}`))),
      ),
    );
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.details).toBe('fault filter abort');
    expect(up.seen).toHaveLength(0);
  });

  it('the route timeout starts after the injected delay (the fault filter runs before the router)', async () => {
    // Upstream answers in 100 ms; route timeout 250 ms; delay 400 ms: longer than the timeout,
    // yet the request succeeds, because the timer starts once the delay is over.
    const up = await upstream({ delayMs: 100 });
    const { gw, log } = await gateway(
      up,
      `  - fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
    timeout: 250ms
${route}`,
    );
    const ok = await get(gw);
    expect(ok.status).toBe(200);
    expect(ok.ms).toBeGreaterThanOrEqual(495);
    await until(() => log.length === 1);
    expect(log[0]!.flags).toBe('DI');
  });

  it('the route timeout still bounds the upstream after the delay: 504 UT after delay + timeout', async () => {
    const up = await upstream({ delayMs: 2000 });
    const { gw, log } = await gateway(
      up,
      `  - fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    timeout: 200ms
${route}`,
    );
    const r = await get(gw);
    expect(r.status).toBe(504);
    expect(r.body).toBe('upstream request timeout');
    expect(r.ms).toBeGreaterThanOrEqual(495);
    expect(r.ms).toBeLessThan(1900);
    await until(() => log.length === 1);
    expect(log[0]!.flags).toBe('UT,DI');
  });

  it('a client that goes away during the delay costs nothing upstream (flags DI,DC)', async () => {
    const up = await upstream();
    const { gw, log } = await gateway(
      up,
      `  - fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}\n${route}`,
    );
    const t0 = performance.now();
    const s = connect(gw.port(), '127.0.0.1');
    s.on('error', () => undefined);
    // Node answers 100 Continue as it hands the request to the gateway, which starts the delay in
    // the same turn: once the client reads it, the delay is running.
    let continued = false;
    s.on('data', (d: Buffer) => (continued ||= d.toString('latin1').startsWith('HTTP/1.1 100')));
    s.write(
      'POST /upload HTTP/1.1\r\nhost: shop.example.com\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n',
    );
    await until(() => continued, { what: '100 Continue' });
    s.destroy();
    await until(() => log.length === 1, { what: 'the abandoned request logged' });
    expect(log[0]).toEqual({ status: 0, flags: 'DI,DC', details: '-' });
    // Past the moment the delay would have ended, still nothing reached the upstream.
    await until(() => performance.now() - t0 > 600, { what: 'the delay window over' });
    expect(up.seen).toHaveLength(0);
    // The gateway is still serving normally.
    expect((await get(gw)).status).toBe(200);
  });

  it(`abort percentage: 25 % of 400 requests, within 5 σ`, async () => {
    const up = await upstream();
    const { gw } = await gateway(
      up,
      `  - fault: {abort: {httpStatus: 429, percentage: {value: 25}}}\n${route}`,
    );
    let aborted = 0;
    for (let i = 0; i < 400; i++) if ((await get(gw)).status === 429) aborted += 1;
    const [lo, hi] = within5Sigma(400, 0.25);
    expect(aborted).toBeGreaterThanOrEqual(lo);
    expect(aborted).toBeLessThanOrEqual(hi);
    expect(up.seen).toHaveLength(400 - aborted);
  });

  it('legacy delay `percent: 50`: about half the requests are delayed (DI), within 5 σ', async () => {
    const up = await upstream();
    const { gw, log } = await gateway(up, `  - fault: {delay: {fixedDelay: 1ms, percent: 50}}\n${route}`);
    for (let i = 0; i < 400; i++) expect((await get(gw)).status).toBe(200);
    await until(() => log.length === 400);
    const delayed = log.filter((l) => l.flags === 'DI').length;
    const [lo, hi] = within5Sigma(400, 0.5);
    expect(delayed).toBeGreaterThanOrEqual(lo);
    expect(delayed).toBeLessThanOrEqual(hi);
  });

  it('a route without fault is not delayed or aborted (no filter on it)', async () => {
    const up = await upstream();
    const { gw } = await gateway(
      up,
      `  - match: [{uri: {prefix: /faulty}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
${route}  - ${route.trimStart()}`,
    );
    expect((await get(gw, '/faulty')).status).toBe(500);
    expect((await get(gw, '/fine')).status).toBe(200);
    const table = gw.gateway.current.get().listeners.get(8080)!.httpTable!;
    const routes = table.exact.get('shop.example.com')!.routes;
    expect(routes[0]!.filters?.map((f) => f.kind)).toEqual(['fault']);
    expect('filters' in routes[1]!).toBe(false);
  });
});

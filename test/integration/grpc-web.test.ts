/**
 * gRPC-Web bridged to gRPC (issue 11 item 7; Envoy's grpc_web filter): a real grpc-js server
 * upstream, gRPC-Web requests built by the test in binary and base64 text, over HTTP/1.1 and
 * HTTP/2. Istio inserts the filter on a Gateway listener whose port protocol is GRPC-WEB; sluice
 * also bridges when the destination's port is GRPC-WEB (the sidecar's job in a mesh). The
 * response comes back as gRPC-Web: messages, then the trailers as the body's last frame.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { startMeteredGateway } from '../support/gateway.ts';
import { entryRouteYaml } from '../support/upstream-route.ts';
import { grpcStatus, startEchoServer, TRAILER, type EchoServer } from '../support/grpc.ts';
import { encodeEchoRequest, frame, grpcWebCall, type GrpcWebCall } from '../support/grpc-web.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { parsePrometheus, sumOf } from '../support/observability.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const HOST = 'web.example.com';
const UNARY = '/sluice.test.Echo/Unary';

interface Setup {
  readonly server: EchoServer;
  readonly port: number;
  readonly done: RequestContext[];
  readonly registry: Registry;
}

/**
 * `gateway`: the Gateway server's port protocol; `upstream`: the ServiceEntry port's; `mirrorPort`:
 * a second gRPC server every request is mirrored to.
 */
async function setup(
  gateway: string,
  upstream: string,
  upstreamPort?: number,
  mirrorPort?: number,
): Promise<Setup> {
  const server = await startEchoServer();
  cleanups.push(() => server.close());
  const mirrorEntry = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: mirror, namespace: default }
spec:
  hosts: [mirror.internal]
  ports: [{ number: 50051, name: grpc, protocol: GRPC }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { grpc: ${mirrorPort} } }]
`;
  const yaml = entryRouteYaml({
    host: 'echo.internal',
    upstreamPort: upstreamPort ?? server.port,
    port: { number: 50051, name: 'grpc', protocol: upstream },
    hosts: `[${HOST}]`,
    ...(mirrorPort === undefined
      ? {}
      : { rule: 'mirror: { host: mirror.internal, port: { number: 50051 } }, ', entry: mirrorEntry }),
  }).replace('name: http, protocol: HTTP }', `name: web, protocol: ${gateway} }`);
  const gw = await startMeteredGateway(yaml);
  cleanups.push(() => gw.close());
  return { server, port: gw.port(), done: gw.done, registry: gw.registry };
}

function call(port: number, opts: Partial<GrpcWebCall>): ReturnType<typeof grpcWebCall> {
  return grpcWebCall({
    port,
    authority: HOST,
    path: UNARY,
    body: frame(encodeEchoRequest({ text: 'hello' })),
    ...opts,
  });
}

describe('gRPC-Web on a GRPC-WEB Gateway port', () => {
  it('binary over HTTP/1.1: the reply message, then grpc-status and trailing metadata in a trailers frame', async () => {
    const { server, port, done } = await setup('GRPC-WEB', 'GRPC');
    const r = await call(port, {});
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc-web+proto');
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.messages).toEqual([{ text: 'hello', padding: '' }]);
    expect(r.flags).toEqual([0, 0x80]);
    expect(r.trailers).toMatchObject({ 'grpc-status': '0', [TRAILER.name]: TRAILER.value });
    expect(r.httpTrailers).toEqual({});
    // The server saw gRPC: grpc-js refuses any other content type.
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]!.metadata['x-grpc-web']).toBe('1');
    await until(() => done.length === 1);
    expect(done[0]!.grpc?.status).toBe('0');
  });

  it('text over HTTP/1.1, the base64 body cut mid-group: decoded on the way up, each frame encoded back', async () => {
    const { port } = await setup('GRPC-WEB', 'GRPC');
    const r = await call(port, { text: true, pieceBytes: 3 });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc-web-text+proto');
    // Every frame is its own padded base64 run, as Envoy writes them.
    const raw = r.raw.toString('latin1');
    expect(raw).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(raw.length % 4).toBe(0);
    expect(r.messages).toEqual([{ text: 'hello', padding: '' }]);
    expect(r.trailers).toMatchObject({ 'grpc-status': '0', [TRAILER.name]: TRAILER.value });
  });

  it('a streaming call over HTTP/2 in text: several messages each way, trailers in the body not in HTTP/2 trailers', async () => {
    const { port } = await setup('GRPC-WEB', 'GRPC');
    const body = Buffer.concat([
      frame(encodeEchoRequest({ text: 'one' })),
      frame(encodeEchoRequest({ text: 'two', replyBytes: 70_000 })),
      frame(encodeEchoRequest({ text: 'three' })),
    ]);
    const r = await call(port, {
      path: '/sluice.test.Echo/Chat',
      body,
      text: true,
      http2: true,
      pieceBytes: 1001,
    });
    expect(r.status).toBe(200);
    expect(r.messages.map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(r.messages[1]!.padding.length).toBe(70_000);
    expect(r.trailers).toMatchObject({ 'grpc-status': '0', [TRAILER.name]: TRAILER.value });
    expect(r.httpTrailers['grpc-status']).toBeUndefined();
  });

  it('an upstream error: trailers-only, its grpc-status and grpc-message in the headers', async () => {
    const { port, registry } = await setup('GRPC-WEB', 'GRPC');
    const r = await call(port, {
      body: frame(encodeEchoRequest({ text: 'nope', failCode: grpcStatus.NOT_FOUND })),
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc-web+proto');
    expect(r.headers['grpc-status']).toBe(String(grpcStatus.NOT_FOUND));
    // grpc-js percent-encodes the message; it is passed on as sent.
    expect(r.headers['grpc-message']).toBe('failed%20as%20asked:%20nope');
    expect(r.raw.length).toBe(0);
    const samples = parsePrometheus(await registry.metrics());
    expect(
      sumOf(samples, 'istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '5' }),
    ).toBe(1);
  });

  it('a text body that is not base64: 400 answered in gRPC-Web form, the service never called', async () => {
    const { port, done, server } = await setup('GRPC-WEB', 'GRPC');
    const bad = await rawTextCall(port, 'AAAA*AAA');
    expect(bad.status).toBe(200);
    expect(bad.headers['content-type']).toBe('application/grpc-web-text+proto');
    expect(bad.headers['grpc-status']).toBe('13');
    expect(bad.headers['grpc-message']).toBe('Bad gRPC-web request, invalid base64 data.');
    const short = await rawTextCall(port, 'AAAAAA');
    expect(short.headers['grpc-message']).toBe('Bad gRPC-web request, invalid base64 data.');
    await until(() => (done.length === 2 ? true : null));
    const refused = done.filter((d) => d.responseDetails === 'grpc_base_64_decode_failed');
    expect(refused.map((d) => d.status)).toEqual([400, 400]);
    expect(server.calls).toHaveLength(0);
  });

  it('a local reply (upstream refused) is gRPC-Web trailers-only: 200, grpc-status 14', async () => {
    const closed = await startEchoServer();
    const deadPort = closed.port;
    await closed.close();
    const { port, done } = await setup('GRPC-WEB', 'GRPC', deadPort);
    const r = await call(port, {});
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc-web+proto');
    expect(r.headers['grpc-status']).toBe('14');
    expect(String(r.headers['grpc-message'])).toMatch(/^upstream connect error/);
    await until(() => done.length === 1);
    expect(done[0]!.status).toBe(503);
    expect(done[0]!.responseFlags).toContain('UF');
  });

  it('a response that is not gRPC keeps its status, its body becomes grpc-message and grpc-status is mapped', async () => {
    const plain: Server = createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('overloaded, try later');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => plain.close(() => resolve())));
    const { port } = await setup('GRPC-WEB', 'HTTP', (plain.address() as { port: number }).port);
    const r = await call(port, { text: true });
    expect(r.status).toBe(503);
    expect(r.headers['content-type']).toBe('application/grpc-web-text+proto');
    expect(r.headers['grpc-status']).toBe('14');
    expect(r.headers['grpc-message']).toBe('overloaded, try later');
    expect(r.headers['content-length']).toBe('0');
    expect(r.raw.length).toBe(0);
  });

  for (const text of [false, true])
    it(`a mirrored ${text ? 'text' : 'binary'} call over HTTP/2 upstreams: both servers get the gRPC call`, async () => {
      const mirror = await startEchoServer();
      cleanups.push(() => mirror.close());
      const { port, server } = await setup('GRPC-WEB', 'GRPC', undefined, mirror.port);
      const r = await call(port, { text, pieceBytes: 5 });
      expect(r.messages).toEqual([{ text: 'hello', padding: '' }]);
      await until(() => mirror.calls.length === 1, { what: 'the mirrored call' });
      expect(mirror.calls[0]!.method).toBe('Unary');
      expect(mirror.calls[0]!.metadata['x-grpc-web']).toBe('1');
      expect(server.calls).toHaveLength(1);
    });

  it('a plain HTTP request on the same port is left alone', async () => {
    const { port } = await setup('GRPC-WEB', 'HTTP', (await plainUpstream()).port);
    const r = await rawCall(port, '/x', { 'content-type': 'application/json' }, '{}');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.raw.toString()).toBe('plain');
  });
});

describe('gRPC-Web to a destination port declared GRPC-WEB', () => {
  it('an HTTP Gateway port bridges for a GRPC-WEB destination (binary and text)', async () => {
    const { port } = await setup('HTTP', 'GRPC-WEB');
    const binary = await call(port, {});
    expect(binary.messages).toEqual([{ text: 'hello', padding: '' }]);
    expect(binary.trailers?.['grpc-status']).toBe('0');
    const text = await call(port, { text: true, http2: true });
    expect(text.headers['content-type']).toBe('application/grpc-web-text+proto');
    expect(text.messages).toEqual([{ text: 'hello', padding: '' }]);
  });

  it('to a GRPC destination behind an HTTP port nothing is bridged: the answer comes back as gRPC', async () => {
    const { port } = await setup('HTTP', 'GRPC');
    // grpc-js takes any content type starting application/grpc, so it answers, in gRPC's terms.
    const r = await call(port, {});
    expect(r.headers['content-type']).toBe('application/grpc+proto');
    expect(r.messages).toEqual([{ text: 'hello', padding: '' }]);
    // gRPC's trailers cannot reach an HTTP/1.1 client, and no trailers frame was made.
    expect(r.trailers).toBeNull();
  });
});

async function plainUpstream(): Promise<{ port: number }> {
  const s = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('plain');
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return { port: (s.address() as { port: number }).port };
}

/** A text call whose body is exactly `base64` (not a valid encoding, on purpose). */
function rawTextCall(port: number, base64: string): Promise<RawAnswer> {
  return rawCall(
    port,
    UNARY,
    { 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text' },
    base64,
  );
}

interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly raw: Buffer;
}

function rawCall(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { host: HOST, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * gRPC through the gateway (issue 11 item 7; DP-9, DP-3, DP-7, VS-22): a real grpc-js client
 * and a real grpc-js server, the gateway between them speaking HTTP/2 both ways because the
 * ServiceEntry port says GRPC. Unary and bidirectional calls, trailers both ways, error
 * statuses, grpc-timeout, local replies in gRPC's trailers-only form, and the gRPC metrics.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Registry } from 'prom-client';
import {
  startGatewayFromYaml,
  startMeteredGateway,
  startRecordingGateway,
  type TestGateway,
} from '../support/gateway.ts';
import { entryRouteYaml } from '../support/upstream-route.ts';
import {
  echoClient,
  grpcStatus,
  startEchoServer,
  TRAILER,
  unary,
  type EchoClient,
  type EchoReply,
  type EchoServer,
} from '../support/grpc.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { parsePrometheus, sumOf } from '../support/observability.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const HOST = 'grpc.example.com';

function configYaml(serverPort: number, opts: { protocol?: string; timeout?: string } = {}): string {
  return entryRouteYaml({
    host: 'echo.internal',
    upstreamPort: serverPort,
    port: { number: 50051, name: 'grpc', protocol: opts.protocol ?? 'GRPC' },
    hosts: `[${HOST}]`,
    rule: `match: [{ uri: { prefix: /sluice.test.Echo/ } }], ${opts.timeout !== undefined ? `timeout: ${opts.timeout}, ` : ''}`,
  });
}

interface Setup {
  readonly server: EchoServer;
  readonly gw: TestGateway;
  readonly client: EchoClient;
  readonly done: RequestContext[];
  readonly registry: Registry;
}

async function setup(opts: { protocol?: string; timeout?: string } = {}): Promise<Setup> {
  const server = await startEchoServer();
  cleanups.push(() => server.close());
  const { done, registry, ...gw } = await startMeteredGateway(configYaml(server.port, opts));
  cleanups.push(() => gw.close());
  const client = echoClient(`127.0.0.1:${gw.port()}`, HOST);
  cleanups.push(() => client.close());
  return { server, gw, client, done, registry };
}

describe('gRPC upstreams over HTTP/2 (DP-9)', () => {
  it('a unary call reaches the server over h2c and its trailing metadata comes back', async () => {
    const { server, client } = await setup();
    const r = await unary(client, { text: 'hello' });
    expect(r.error).toBeNull();
    expect(r.value).toMatchObject({ text: 'hello' });
    expect(r.trailers[TRAILER.name]).toBe(TRAILER.value);
    expect(server.calls).toHaveLength(1);
    // DP-1 headers still go upstream over HTTP/2.
    expect(server.calls[0]!.metadata['x-forwarded-proto']).toBe('http');
    expect(server.calls[0]!.metadata['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a bidirectional stream: each message answered while the stream stays open, trailers at the end', async () => {
    const { client } = await setup();
    const call = client.Chat();
    const replies: EchoReply[] = [];
    const trailers: Record<string, string> = {};
    let code = -1;
    call.on('data', (r: EchoReply) => replies.push(r));
    const ended = new Promise<void>((resolve) =>
      call.on('status', (s) => {
        code = s.code;
        for (const [k, v] of Object.entries(s.metadata.getMap())) trailers[k] = String(v);
        resolve();
      }),
    );
    for (let i = 0; i < 5; i++) {
      call.write({ text: `m${i}` });
      // Interleaved: reply i arrives before message i+1 is sent, so nothing is buffered whole.
      await until(() => (replies.length === i + 1 ? true : null), { timeoutMs: 5000 });
    }
    call.end();
    await ended;
    expect(code).toBe(grpcStatus.OK);
    expect(replies.map((r) => r.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(trailers[TRAILER.name]).toBe(TRAILER.value);
  });
});

describe('gRPC statuses, deadlines and failures', () => {
  it("an upstream's error status and details reach the client with its trailing metadata", async () => {
    const { client, registry } = await setup();
    const r = await unary(client, { text: 'nope', failCode: grpcStatus.NOT_FOUND });
    expect(r.error?.code).toBe(grpcStatus.NOT_FOUND);
    expect(r.error?.details).toBe('failed as asked: nope');
    expect(r.trailers[TRAILER.name]).toBe(TRAILER.value);
    const samples = parsePrometheus(await registry.metrics());
    expect(
      sumOf(samples, 'istio_requests_total', {
        request_protocol: 'grpc',
        response_code: '200',
        grpc_response_status: '5',
      }),
    ).toBe(1);
  });

  it('VS-22: the gateway ends a call at its grpc-timeout, capped by the route timeout', async () => {
    const { server, gw, done } = await setup({ timeout: '10s' });
    // A raw HTTP/2 client: no deadline of its own, so only the gateway can end the call.
    const { connect } = await import('node:http2');
    const session = connect(`http://127.0.0.1:${gw.port()}`);
    cleanups.push(() => void session.destroy());
    const started = performance.now();
    const answer = await new Promise<{ headers: Record<string, unknown>; flags: number }>(
      (resolve, reject) => {
        const st = session.request(
          {
            ':method': 'POST',
            ':path': '/sluice.test.Echo/Unary',
            ':authority': HOST,
            'content-type': 'application/grpc',
            te: 'trailers',
            'grpc-timeout': '300m',
          },
          { endStream: false },
        );
        st.on('response', (headers, flags) => resolve({ headers, flags }));
        st.on('error', reject);
        // EchoRequest{text: "slow", delay_ms: 5000}: field 1 (len 4), field 2 varint.
        const msg = Buffer.from([0x0a, 4, ...Buffer.from('slow'), 0x10, 0x88, 0x27]);
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(msg.length, 1);
        st.end(Buffer.concat([prefix, msg]));
        st.resume();
      },
    );
    const elapsed = performance.now() - started;
    // DP-3: a local reply to a gRPC request is trailers-only: 200, grpc-status, grpc-message.
    expect(answer.flags & 1).toBe(1);
    expect(answer.headers[':status']).toBe(200);
    expect(answer.headers['grpc-status']).toBe('14');
    expect(answer.headers['grpc-message']).toBe('upstream request timeout');
    expect(answer.headers['content-type']).toBe('application/grpc');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(3000);
    await until(() => server.calls[0]?.cancelled === true, { what: 'the server saw the call cancelled' });
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UT');
    expect(done[0]!.status).toBe(504);
  });

  it('VS-22: the route timeout caps a longer grpc-timeout', async () => {
    const { client, done } = await setup({ timeout: '300ms' });
    const started = performance.now();
    // The client's own deadline is far away; the gateway's route timeout answers first.
    const r = await unary(client, { text: 'slow', delayMs: 5000 }, 20_000);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(r.error?.code).toBe(grpcStatus.UNAVAILABLE);
    expect(r.error?.details).toBe('upstream request timeout');
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UT');
  });

  it('DP-3: a request no route takes gets trailers-only UNIMPLEMENTED (404 NR)', async () => {
    const server = await startEchoServer();
    cleanups.push(() => server.close());
    const done: RequestContext[] = [];
    const yaml = configYaml(server.port).replace(
      'prefix: /sluice.test.Echo/',
      'exact: /sluice.test.Echo/Chat',
    );
    const gw = await startGatewayFromYaml(yaml, { onRequestDone: (ctx) => done.push(ctx) });
    cleanups.push(() => gw.close());
    const client = echoClient(`127.0.0.1:${gw.port()}`, HOST);
    cleanups.push(() => client.close());
    const r = await unary(client, { text: 'x' });
    expect(r.error?.code).toBe(grpcStatus.UNIMPLEMENTED);
    expect(server.calls).toHaveLength(0);
    await until(() => done.length === 1);
    expect(done[0]!.status).toBe(404);
    expect(done[0]!.responseFlags).toBe('NR');
  });

  it('DP-3: a direct response or a redirect to a gRPC call is trailers-only, as Envoy sends its local replies', async () => {
    const server = await startEchoServer();
    cleanups.push(() => server.close());
    const done: RequestContext[] = [];
    const yaml = configYaml(server.port).replace(
      /http: \[\{ (.*) \}\]$/m,
      `http:
  - match: [{ uri: { exact: /sluice.test.Echo/Unary }, headers: { x-case: { exact: direct } } }]
    directResponse: { status: 503, body: { string: "down for maintenance" } }
  - match: [{ uri: { exact: /sluice.test.Echo/Unary }, headers: { x-case: { exact: redirect } } }]
    redirect: { authority: other.example.com }
  - { $1 }`,
    );
    const gw = await startGatewayFromYaml(yaml, { onRequestDone: (ctx) => done.push(ctx) });
    cleanups.push(() => gw.close());
    const client = echoClient(`127.0.0.1:${gw.port()}`, HOST);
    cleanups.push(() => client.close());

    const direct = await unary(client, { text: 'x' }, undefined, { 'x-case': 'direct' });
    expect(direct.error?.code).toBe(grpcStatus.UNAVAILABLE);
    expect(direct.error?.details).toBe('down for maintenance');
    // A redirect is a 301 local reply: HTTP 3xx maps to UNKNOWN, the Location stays a header.
    const moved = await unary(client, { text: 'x' }, undefined, { 'x-case': 'redirect' });
    expect(moved.error?.code).toBe(grpcStatus.UNKNOWN);
    expect(server.calls).toHaveLength(0);
    // Without the header the route still forwards.
    expect((await unary(client, { text: 'ok' })).error).toBeNull();
    await until(() => done.length === 3);
    expect(done.slice(0, 2).map((c) => [c.status, c.responseDetails])).toEqual([
      [503, 'direct_response'],
      [301, 'direct_response'],
    ]);
  });

  it("DP-3: an upstream that refuses connections is UNAVAILABLE with Envoy's reason as grpc-message", async () => {
    const server = await startEchoServer();
    const port = server.port;
    await server.close();
    const gw = await startRecordingGateway(configYaml(port));
    cleanups.push(() => gw.close());
    const done = gw.done;
    const client = echoClient(`127.0.0.1:${gw.port()}`, HOST);
    cleanups.push(() => client.close());
    const r = await unary(client, { text: 'x' });
    expect(r.error?.code).toBe(grpcStatus.UNAVAILABLE);
    // Istio's default retry policy retries connect failures once (VS-23).
    expect(r.error?.details).toBe(
      'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure',
    );
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UF,URX');
  });

  it('an upstream killed mid-stream ends the call with an error, not a hang (UC/UR after the response started)', async () => {
    const { server, client, done } = await setup();
    const call = client.Chat();
    const got: EchoReply[] = [];
    call.on('data', (r: EchoReply) => got.push(r));
    const status = new Promise<number>((resolve) => call.on('status', (s) => resolve(s.code)));
    call.on('error', () => undefined);
    call.write({ text: 'first' });
    await until(() => (got.length === 1 ? true : null));
    server.kill();
    const code = await status;
    expect(code).not.toBe(grpcStatus.OK);
    await until(() => done.length === 1);
    expect(['UC', 'UR']).toContain(done[0]!.responseFlags);
  });
});

describe('gRPC metrics (DP-7)', () => {
  it('counts messages each way and the grpc-status of each call', async () => {
    const { client, registry, done } = await setup();
    const call = client.Chat();
    const got: EchoReply[] = [];
    call.on('data', (r: EchoReply) => got.push(r));
    const ended = new Promise<void>((resolve) => call.on('status', () => resolve()));
    for (let i = 0; i < 7; i++) call.write({ text: `m${i}`, replyBytes: i === 3 ? 200_000 : 0 });
    call.end();
    await ended;
    expect(got).toHaveLength(7);
    // A large message crosses many DATA frames and still counts once.
    expect(got[3]!.padding).toHaveLength(200_000);
    await unary(client, { text: 'one' });
    await until(() => done.length === 2);
    const samples = parsePrometheus(await registry.metrics());
    const grpcOk = { request_protocol: 'grpc', grpc_response_status: '0' };
    expect(sumOf(samples, 'istio_requests_total', grpcOk)).toBe(2);
    expect(sumOf(samples, 'istio_request_messages_total', grpcOk)).toBe(8);
    expect(sumOf(samples, 'istio_response_messages_total', grpcOk)).toBe(8);
  });
});

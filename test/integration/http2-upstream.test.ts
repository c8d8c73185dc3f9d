/**
 * HTTP/2 to upstreams (issue 11 item 7; DP-9, DR-6): which requests go upstream over HTTP/2
 * (port protocol, h2UpgradePolicy, useClientProtocol, MeshConfig, Service appProtocol), what
 * they carry (:authority, te: trailers, trailers both ways), how an HTTP/2 upstream's failures
 * are answered (RST_STREAM, an upstream that is not HTTP/2), and the connection settings
 * (maxConcurrentStreams, maxRequestsPerConnection, idleTimeout, http2KeepAlive), against real
 * node:http2 servers on loopback.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  connect,
  constants,
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
} from 'node:http2';
import { startRecordingGateway } from '../support/gateway.ts';
import { entryRouteYaml } from '../support/upstream-route.ts';
import { getWithHost } from '../support/tls-upstream.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface SeenH2 {
  readonly headers: IncomingHttpHeaders;
  readonly session: number;
  trailers: IncomingHttpHeaders | null;
  body: string;
}

interface H2Upstream {
  readonly port: number;
  readonly seen: SeenH2[];
  readonly sessions: ServerHttp2Session[];
  pings: number;
  /** Requests to /slow wait until this is called. */
  release(): void;
}

/**
 * An h2c upstream. Paths: /trailers answers with trailers, /refuse resets the stream before
 * answering, /slow answers when released, anything else answers 200 with the protocol it saw.
 */
async function h2Upstream(): Promise<H2Upstream> {
  const server: Http2Server = createServer();
  const waiting: (() => void)[] = [];
  const up: H2Upstream = {
    port: 0,
    seen: [],
    sessions: [],
    pings: 0,
    release: () => {
      for (const w of waiting.splice(0)) w();
    },
  };
  server.on('session', (s) => {
    up.sessions.push(s);
    s.on('ping', () => (up.pings += 1));
  });
  server.on('stream', (stream, headers) => {
    const seen: SeenH2 = {
      headers,
      session: up.sessions.indexOf(stream.session as ServerHttp2Session),
      trailers: null,
      body: '',
    };
    up.seen.push(seen);
    stream.on('trailers', (t) => (seen.trailers = t));
    stream.on('error', () => undefined);
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (seen.body += d));
    const path = headers[':path'];
    stream.on('end', () => {
      if (path === '/refuse') {
        stream.close(constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      const answer = (): void => {
        if (stream.destroyed) return;
        if (path === '/big') {
          // 1 MiB then trailers: the trailers arrive while a slow client still has data to read.
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'big' }));
          for (let i = 0; i < 64; i++) stream.write(Buffer.alloc(16_384, i));
          stream.end();
          return;
        }
        if (path === '/trailers') {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
          stream.end('with trailers');
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end('h2 ok');
      };
      if (path === '/slow') waiting.push(answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (up as { port: number }).port = (server.address() as { port: number }).port;
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of up.sessions) s.destroy();
        server.close(() => resolve());
      }),
  );
  return up;
}

function configYaml(port: number, opts: { protocol?: string; pool?: string; mesh?: string } = {}): string {
  return `${entryRouteYaml({ host: 'up.internal', upstreamPort: port, port: { number: 80, name: 'web', protocol: opts.protocol ?? 'HTTP' } })}
${
  opts.pool === undefined
    ? ''
    : `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: up, namespace: default }
spec:
  host: up.internal
  trafficPolicy:
    connectionPool:
      ${opts.pool}
`
}${opts.mesh === undefined ? '' : `---\napiVersion: sluice.dev/v1alpha1\nkind: MeshConfig\nmetadata: { name: mesh, namespace: istio-system }\nspec: ${opts.mesh}\n`}`;
}

async function gateway(yaml: string): Promise<{ port: number; done: RequestContext[] }> {
  const gw = await startRecordingGateway(yaml);
  cleanups.push(() => gw.close());
  return { port: gw.port(), done: gw.done };
}

interface H2Answer {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: IncomingHttpHeaders | null;
}

/** One HTTP/2 request to the gateway (h2c), optionally with a body and trailers. */
function h2Request(
  port: number,
  headers: Record<string, string>,
  body?: { data: string; trailers?: Record<string, string> },
): Promise<H2Answer> {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  cleanups.push(() => void session.destroy());
  return new Promise((resolve, reject) => {
    const st = session.request(
      { ':method': body === undefined ? 'GET' : 'POST', ':authority': 'shop.example.com', ...headers },
      { endStream: body === undefined, waitForTrailers: body?.trailers !== undefined },
    );
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | null = null;
    let text = '';
    st.setEncoding('utf8');
    st.on('response', (h) => (head = h));
    st.on('trailers', (t) => (trailers = t));
    st.on('data', (d: string) => (text += d));
    st.on('end', () => resolve({ headers: head, body: text, trailers }));
    st.on('error', reject);
    if (body !== undefined) {
      if (body.trailers !== undefined) st.on('wantTrailers', () => st.sendTrailers(body.trailers!));
      st.end(body.data);
    }
  });
}

describe('which requests go upstream over HTTP/2 (DP-9)', () => {
  it('a plain HTTP port stays HTTP/1.1 whatever the client speaks', async () => {
    const up = await startEcho({ name: 'h1' });
    cleanups.push(() => up.close());
    const { port } = await gateway(configYaml(up.port));
    expect((await h2Request(port, { ':path': '/' })).headers[':status']).toBe(200);
    expect(up.seen).toHaveLength(1);
  });

  for (const protocol of ['HTTP2', 'GRPC', 'GRPC-WEB']) {
    it(`port protocol ${protocol}: HTTP/2 (h2c) even for an HTTP/1.1 client`, async () => {
      const up = await h2Upstream();
      const { port } = await gateway(configYaml(up.port, { protocol }));
      const r = await getWithHost(port, 'shop.example.com', '/x?y=1');
      expect(r.status).toBe(200);
      expect(r.body).toBe('h2 ok');
      expect(up.seen[0]!.headers).toMatchObject({
        ':authority': 'shop.example.com',
        ':path': '/x?y=1',
        ':scheme': 'http',
      });
      expect(up.seen[0]!.headers['x-forwarded-proto']).toBe('http');
    });
  }

  it('h2UpgradePolicy: UPGRADE on an HTTP port; DO_NOT_UPGRADE keeps HTTP/1.1 against a mesh-wide UPGRADE', async () => {
    const up = await h2Upstream();
    const upgraded = await gateway(configYaml(up.port, { pool: 'http: { h2UpgradePolicy: UPGRADE }' }));
    expect((await getWithHost(upgraded.port, 'shop.example.com')).body).toBe('h2 ok');
    const mesh = await gateway(configYaml(up.port, { mesh: '{ h2UpgradePolicy: UPGRADE }' }));
    expect((await getWithHost(mesh.port, 'shop.example.com')).body).toBe('h2 ok');
    expect(up.seen).toHaveLength(2);
    const h1 = await startEcho({ name: 'h1' });
    cleanups.push(() => h1.close());
    const kept = await gateway(
      configYaml(h1.port, {
        pool: 'http: { h2UpgradePolicy: DO_NOT_UPGRADE }',
        mesh: '{ h2UpgradePolicy: UPGRADE }',
      }),
    );
    expect((await getWithHost(kept.port, 'shop.example.com')).status).toBe(200);
    expect(h1.seen).toHaveLength(1);
  });

  it('useClientProtocol: HTTP/2 clients reach the upstream over HTTP/2, HTTP/1.1 clients over HTTP/1.1', async () => {
    const pool = 'http: { useClientProtocol: true }';
    // An HTTP/2-only upstream answers the HTTP/2 client and fails the HTTP/1.1 one …
    const h2 = await h2Upstream();
    const a = await gateway(configYaml(h2.port, { protocol: 'HTTP2', pool }));
    expect((await h2Request(a.port, { ':path': '/' })).body).toBe('h2 ok');
    expect((await getWithHost(a.port, 'shop.example.com')).status).toBeGreaterThanOrEqual(502);
    expect(h2.seen).toHaveLength(1);
    // … and an HTTP/1.1-only one the other way round, even on a port that says HTTP2.
    const h1 = await startEcho({ name: 'h1' });
    cleanups.push(() => h1.close());
    const b = await gateway(configYaml(h1.port, { protocol: 'HTTP2', pool }));
    expect((await getWithHost(b.port, 'shop.example.com')).status).toBe(200);
    expect(h1.seen).toHaveLength(1);
    expect(Number((await h2Request(b.port, { ':path': '/' })).headers[':status'])).toBeGreaterThanOrEqual(
      502,
    );
  });

  it('a Service port with appProtocol kubernetes.io/h2c is HTTP/2', async () => {
    const up = await h2Upstream();
    const yaml = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: default }
spec:
  ports: [{ name: web, port: 80, targetPort: ${up.port}, appProtocol: kubernetes.io/h2c }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: api-1, namespace: default, labels: { kubernetes.io/service-name: api } }
addressType: IPv4
ports: [{ name: web, port: ${up.port} }]
endpoints: [{ addresses: [127.0.0.1] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: all, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: api, port: { number: 80 } } }] }]
`;
    const { port } = await gateway(yaml);
    expect((await getWithHost(port, 'shop.example.com')).body).toBe('h2 ok');
  });
});

describe('what crosses an HTTP/2 hop', () => {
  it('request trailers reach the upstream, response trailers reach the client, te: trailers is kept', async () => {
    const up = await h2Upstream();
    const { port } = await gateway(configYaml(up.port, { protocol: 'HTTP2' }));
    const r = await h2Request(
      port,
      { ':path': '/trailers', te: 'trailers', 'content-type': 'text/plain' },
      { data: 'payload', trailers: { 'x-request-checksum': 'r1' } },
    );
    expect(r.headers[':status']).toBe(200);
    expect(r.body).toBe('with trailers');
    expect(r.trailers).toMatchObject({ 'x-checksum': 'abc123' });
    expect(up.seen[0]!.body).toBe('payload');
    expect(up.seen[0]!.trailers).toMatchObject({ 'x-request-checksum': 'r1' });
    expect(up.seen[0]!.headers['te']).toBe('trailers');
  });

  it("a slow client gets every byte before the trailers (the response ends on the stream's end)", async () => {
    const up = await h2Upstream();
    const { port } = await gateway(configYaml(up.port, { protocol: 'HTTP2' }));
    const session = connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    cleanups.push(() => void session.destroy());
    const got = await new Promise<{ bytes: number; trailers: IncomingHttpHeaders | null; last: number }>(
      (resolve, reject) => {
        const st = session.request({ ':method': 'GET', ':path': '/big', ':authority': 'shop.example.com' });
        let bytes = 0;
        let last = -1;
        let trailers: IncomingHttpHeaders | null = null;
        st.on('trailers', (t) => (trailers = t));
        st.on('data', (c: Buffer) => {
          bytes += c.length;
          last = c[c.length - 1]!;
          // Stop reading near the end, long enough for the upstream's trailers to reach the gateway.
          if (bytes >= 900_000 && bytes - c.length < 900_000) {
            st.pause();
            setTimeout(() => st.resume(), 300);
          }
        });
        st.on('end', () => resolve({ bytes, trailers, last }));
        st.on('error', reject);
      },
    );
    expect(got.bytes).toBe(64 * 16_384);
    expect(got.last).toBe(63);
    expect(got.trailers).toMatchObject({ 'x-checksum': 'big' });
  });

  it('an HTTP/1.1 client gets no trailers (Envoy drops them without enable_trailers), the body intact', async () => {
    const up = await h2Upstream();
    const { port } = await gateway(configYaml(up.port, { protocol: 'HTTP2' }));
    const r = await getWithHost(port, 'shop.example.com', '/trailers');
    expect(r.status).toBe(200);
    expect(r.body).toBe('with trailers');
    expect(r.headers['x-checksum']).toBeUndefined();
  });

  it('an upstream RST_STREAM before the response is 503 UR "remote reset"', async () => {
    const up = await h2Upstream();
    const { port, done } = await gateway(configYaml(up.port, { protocol: 'HTTP2' }));
    const r = await getWithHost(port, 'shop.example.com', '/refuse');
    expect(r.status).toBe(503);
    expect(r.body).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
    );
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UR');
  });

  it('an HTTP/1.1-only server on an HTTP2 port: 502 UPE, the gateway keeps serving', async () => {
    const h1 = await startEcho({ name: 'h1' });
    cleanups.push(() => h1.close());
    const { port, done } = await gateway(configYaml(h1.port, { protocol: 'HTTP2' }));
    const r = await getWithHost(port, 'shop.example.com');
    expect(r.status).toBe(502);
    expect(r.body).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: protocol error',
    );
    await until(() => done.length === 1);
    expect(done[0]!.responseFlags).toBe('UPE');
    expect((await getWithHost(port, 'shop.example.com')).status).toBe(r.status);
  });
});

describe('HTTP/2 connection settings (DR-6)', () => {
  async function concurrent(port: number, n: number): Promise<Promise<unknown>[]> {
    return Array.from({ length: n }, () => getWithHost(port, 'shop.example.com', '/slow'));
  }

  it('streams share one connection; maxConcurrentStreams: 1 opens one per request in flight', async () => {
    const shared = await h2Upstream();
    const a = await gateway(configYaml(shared.port, { protocol: 'HTTP2' }));
    const inflight = await concurrent(a.port, 3);
    await until(() => shared.seen.length === 3);
    shared.release();
    await Promise.all(inflight);
    expect(shared.sessions).toHaveLength(1);

    const capped = await h2Upstream();
    const b = await gateway(
      configYaml(capped.port, { protocol: 'HTTP2', pool: 'http: { maxConcurrentStreams: 1 }' }),
    );
    const more = await concurrent(b.port, 3);
    await until(() => capped.seen.length === 3);
    capped.release();
    await Promise.all(more);
    expect(new Set(capped.seen.map((s) => s.session)).size).toBe(3);
  });

  it('maxRequestsPerConnection: 2 retires a connection after two streams', async () => {
    const up = await h2Upstream();
    const { port } = await gateway(
      configYaml(up.port, { protocol: 'HTTP2', pool: 'http: { maxRequestsPerConnection: 2 }' }),
    );
    for (let i = 0; i < 5; i++) expect((await getWithHost(port, 'shop.example.com')).status).toBe(200);
    expect(up.seen.map((s) => s.session)).toEqual([0, 0, 1, 1, 2]);
  });

  it('idleTimeout closes an unused connection; http2KeepAlive PINGs a live one', async () => {
    const idle = await h2Upstream();
    const a = await gateway(
      configYaml(idle.port, { protocol: 'HTTP2', pool: 'http: { idleTimeout: 200ms }' }),
    );
    expect((await getWithHost(a.port, 'shop.example.com')).status).toBe(200);
    await until(() => idle.sessions[0]!.closed || idle.sessions[0]!.destroyed, {
      what: 'the idle connection closed',
    });

    const pinged = await h2Upstream();
    const b = await gateway(
      configYaml(pinged.port, {
        protocol: 'HTTP2',
        pool: 'http: { http2KeepAlive: { interval: 100ms, timeout: 1s } }',
      }),
    );
    expect((await getWithHost(b.port, 'shop.example.com')).status).toBe(200);
    await until(() => pinged.pings >= 2, { what: 'two keep-alive PINGs' });
  });
});

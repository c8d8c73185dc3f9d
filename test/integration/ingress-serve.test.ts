/**
 * networking.k8s.io/v1 Ingress served natively with ingress-nginx's meaning, end to end: real
 * upstreams on loopback behind Services + EndpointSlices, the gateway built through the same
 * Ingress translation the providers run. The guide's demo-receive/demo-order case first.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import nodePath from 'node:path';
import { Readable } from 'node:stream';
import { connect as http2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { EchoBody } from '../support/upstreams.ts';
import {
  compileIngressYaml,
  ingressYaml,
  path,
  sendIngress as send,
  serviceYaml,
  useIngressUpstreams,
} from '../support/ingress.ts';
import { freePorts } from '../support/pebble.ts';
import { startServeInProcess } from '../support/serve-in-process.ts';
import { until } from '../support/until.ts';
import { rsaLeaf, tlsSecretYaml } from '../support/certs.ts';
import { httpsGet } from '../support/tls-client.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';

const bench = useIngressUpstreams(['demo-receive', 'demo-order']);
const start = bench.start;
const seenBy = (name: string) => bench.up.get(name)!.seen;

const DEMO = `${ingressYaml({
  name: 'demo-receive',
  annotations: { 'rewrite-target': '/$2' },
  paths: [path('/receiveapi(/|$)(.*)', 'ImplementationSpecific', 'demo-receive')],
})}---
${ingressYaml({ name: 'demo-order', paths: [path('/orders', 'Prefix', 'demo-order', 'http')] })}`;

describe('the guide’s demo-receive / demo-order Ingresses, as ingress-nginx serves them', () => {
  it('rewrites /receiveapi with and without a slash, and regex mode spreads to /orders case-insensitively', async () => {
    const gw = await start(DEMO);
    const cases: [string, string, string][] = [
      ['/receiveapi', 'demo-receive', '/'],
      ['/receiveapi/', 'demo-receive', '/'],
      ['/receiveapi/orders?id=7', 'demo-receive', '/orders?id=7'],
      ['/RECEIVEAPI/a/b', 'demo-receive', '/a/b'],
      ['/orders', 'demo-order', '/orders'],
      ['/ORDERS/7', 'demo-order', '/ORDERS/7'],
      // `~* "^/orders"`: the exact location added for Prefix /orders is a regex prefix too.
      ['/ordersX', 'demo-order', '/ordersX'],
    ];
    for (const [path, upstream, seen] of cases) {
      const a = await send(gw, path);
      expect({ path, status: a.status, name: a.echo?.name, url: a.echo?.url }).toEqual({
        path,
        status: 200,
        name: upstream,
        url: seen,
      });
    }
    expect((await send(gw, '/receive')).status).toBe(404);
    expect((await send(gw, '/orders', { host: 'other.example.com' })).status).toBe(404);
  });

  it('names the Ingress and path in the compiled routes', () => {
    const { snapshot } = compileIngressYaml(DEMO);
    const routes = snapshot.listeners.get(80)!.httpTable!.exact.get('demo.example.com')!.routes;
    expect(routes.map((r) => r.name)).toEqual([
      'Ingress default/demo-receive path /receiveapi(/|$)(.*)',
      'Ingress default/demo-order path /orders',
    ]);
  });
});

const PATHS = ingressYaml({
  name: 'paths',
  paths: [
    path('/foo', 'Prefix', 'demo-order'),
    path('/foo/exact', 'Exact', 'demo-receive'),
    path('/bar', 'ImplementationSpecific', 'demo-receive'),
    path('/baz/', 'Prefix', 'demo-receive'),
  ],
});

describe('pathType without regex mode (nginx prefix and exact locations)', () => {
  it('Prefix matches by segment, ImplementationSpecific by string prefix, Exact wins, case-sensitive', async () => {
    const gw = await start(PATHS);
    const expectations: [string, number, string | null][] = [
      ['/foo', 200, 'demo-order'],
      ['/foo/', 200, 'demo-order'],
      ['/foo/a', 200, 'demo-order'],
      ['/foobar', 404, null],
      ['/FOO', 404, null],
      ['/foo/exact', 200, 'demo-receive'],
      ['/foo/exact/more', 200, 'demo-order'],
      ['/bar', 200, 'demo-receive'],
      ['/barx', 200, 'demo-receive'],
      ['/baz/1', 200, 'demo-receive'],
      ['/baz/', 200, 'demo-receive'],
    ];
    for (const [path, status, name] of expectations) {
      const a = await send(gw, path);
      expect({ path, status: a.status, name: a.echo?.name ?? null }).toEqual({ path, status, name });
    }
  });

  it('sends defaultBackend what no path matches, on its hosts and on any host', async () => {
    const gw = await start(
      ingressYaml({
        name: 'fallback',
        spec: '  defaultBackend: {service: {name: demo-receive, port: {number: 80}}}\n',
        paths: [path('/orders', 'Prefix', 'demo-order')],
      }),
    );
    expect((await send(gw, '/orders/1')).echo?.name).toBe('demo-order');
    expect((await send(gw, '/elsewhere')).echo?.name).toBe('demo-receive');
    expect((await send(gw, '/x', { host: 'unknown.example.com' })).echo?.name).toBe('demo-receive');
  });

  it('answers 503 for a Service port name the Service does not have, and says so', async () => {
    const yaml = ingressYaml({ name: 'badport', paths: [path('/', 'Prefix', 'demo-order', 'grpc')] });
    const gw = await start(yaml);
    expect((await send(gw, '/x')).status).toBe(503);
    expect(seenBy('demo-order')).toHaveLength(0);
    const { diagnostics } = compileIngressYaml(yaml);
    expect(diagnostics.map(formatDiagnostic).join('\n')).toContain(
      'Service default/demo-order is not in the config, so port "grpc" cannot be resolved',
    );
  });
});

describe('ingress class', () => {
  const ingress = (className: string | null, annotations: Record<string, string> = {}): string =>
    ingressYaml({ name: 'c', className, annotations, paths: [path('/', 'Prefix', 'demo-order')] });
  it('serves its own class only; --ingress-class nginx takes over ingress-nginx’s Ingresses', async () => {
    const nginx = ingress('nginx');
    const served = (yaml: string, cls?: string) =>
      compileIngressYaml(yaml, cls === undefined ? {} : { ingressClass: cls }).snapshot.listeners.has(80);
    expect(served(nginx)).toBe(false);
    expect(served(nginx, 'nginx')).toBe(true);
    const legacy = ingress('sluice', { 'kubernetes.io/ingress.class': 'nginx' });
    // ingress-nginx reads the legacy annotation first.
    expect(served(legacy)).toBe(false);
    expect(served(legacy, 'nginx')).toBe(true);
    const none = ingress(null);
    expect(served(none)).toBe(false);
    const defaultClass = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: sluice, annotations: {ingressclass.kubernetes.io/is-default-class: "true"}}
spec: {controller: sluice.dev/ingress}
---
`;
    expect(served(defaultClass + none)).toBe(true);
    const gw = await start(defaultClass + none);
    expect((await send(gw, '/any')).echo?.name).toBe('demo-order');
  });
});

describe('TLS, redirects and ingress-nginx defaults', () => {
  const tls = (annotations: Record<string, string> = {}): string => `${ingressYaml({
    name: 'secure',
    annotations,
    spec: '  tls: [{hosts: [demo.example.com], secretName: demo-tls}]\n',
    paths: [path('/', 'Prefix', 'demo-order')],
  })}---
${tlsSecretYaml('demo-tls', rsaLeaf(['demo.example.com']), { namespace: 'default' })}`;

  it('serves tls hosts on the HTTPS port with the Secret and redirects plain HTTP with 308', async () => {
    const gw = await start(tls());
    const r = await send(gw, '/a/b?x=1');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://demo.example.com/a/b?x=1');
    expect(seenBy('demo-order')).toHaveLength(0);
    const s = await httpsGet(gw.port(443), 'demo.example.com', { path: '/over/tls' });
    expect(s.error).toBeNull();
    expect(s.status).toBe(200);
    expect((JSON.parse(s.body) as EchoBody).url).toBe('/over/tls');
  });

  it('keeps plain HTTP with ssl-redirect "false"; force-ssl-redirect redirects without tls', async () => {
    const gw = await start(tls({ 'ssl-redirect': 'false' }));
    expect((await send(gw, '/a')).echo?.name).toBe('demo-order');
    const forced = await start(
      ingressYaml({
        name: 'forced',
        annotations: { 'force-ssl-redirect': 'true' },
        paths: [path('/', 'Prefix', 'demo-order')],
      }),
    );
    const r = await send(forced, '/p');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://demo.example.com/p');
  });

  it('puts the configured HTTPS port in the redirect when it is not 443', async () => {
    const gw = await start(tls(), { httpPort: 8080, httpsPort: 8443 });
    const r = await send(gw, '/a', { port: 8080 });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://demo.example.com:8443/a');
  });

  it('refuses request bodies over proxy-body-size (1m by default) with 413 before the upstream', async () => {
    const gw = await start(tls({ 'ssl-redirect': 'false' }));
    const big = Buffer.alloc(1024 * 1024 + 1, 'a');
    const r = await send(gw, '/upload', { method: 'POST', body: big });
    expect(r.status).toBe(413);
    expect(seenBy('demo-order')).toHaveLength(0);
    const ok = await send(gw, '/upload', { method: 'POST', body: Buffer.alloc(1024 * 1024, 'a') });
    expect(ok.status).toBe(200);
    expect(ok.echo?.body.length).toBe(1024 * 1024);
  });

  it('applies proxy-body-size to chunked bodies too, and 0 lifts the limit', async () => {
    const gw = await start(tls({ 'ssl-redirect': 'false', 'proxy-body-size': '8k' }));
    const chunks = (n: number): Readable =>
      Readable.from(Array.from({ length: n }, () => Buffer.alloc(1024, 'b')));
    const tooBig = await request(gw.url('/c', 80), {
      method: 'POST',
      headers: { host: 'demo.example.com' },
      body: chunks(9),
    });
    expect(tooBig.statusCode).toBe(413);
    await tooBig.body.text();
    const fits = await request(gw.url('/c', 80), {
      method: 'POST',
      headers: { host: 'demo.example.com' },
      body: chunks(8),
    });
    expect(fits.statusCode).toBe(200);
    expect(((await fits.body.json()) as EchoBody).body.length).toBe(8192);
    // HTTP/2 (h2c) bodies without content-length are limited alike.
    expect(await h2cPostStatus(gw.url('/c', 80), 9)).toBe(413);
    expect(await h2cPostStatus(gw.url('/c', 80), 8)).toBe(200);
    const unlimited = await start(tls({ 'ssl-redirect': 'false', 'proxy-body-size': '0' }));
    const r = await send(unlimited, '/u', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 'c') });
    expect(r.status).toBe(200);
  });
});

describe('an HTTP/2 upload answered before it is sent whole', () => {
  it('gets the complete 413, then RST_STREAM NO_ERROR, instead of a stream left open', async () => {
    const gw = await start(
      ingressYaml({
        name: 'upload',
        annotations: { 'proxy-body-size': '8k' },
        paths: [path('/', 'Prefix', 'demo-order')],
      }),
    );
    const s = http2Connect(new URL(gw.url('/', 80)).origin);
    try {
      const st = s.request({ ':method': 'POST', ':path': '/up', ':authority': 'demo.example.com' });
      st.on('error', () => undefined);
      const answer = new Promise<{ status: number; body: string }>((resolve) => {
        st.on('response', (h) => {
          let body = '';
          st.setEncoding('utf8');
          st.on('data', (c: string) => (body += c));
          st.on('end', () => resolve({ status: Number(h[':status']), body }));
        });
      });
      const closed = new Promise<number>((resolve) => st.on('close', () => resolve(st.rstCode ?? -1)));
      // Over the limit, and still sending: the client never ends its request.
      for (let i = 0; i < 9; i++) st.write(Buffer.alloc(1024, 'b'));
      const more = setInterval(() => {
        if (!st.closed && !st.destroyed) st.write(Buffer.alloc(1024, 'b'));
      }, 20);
      try {
        const r = await answer;
        expect(r.status).toBe(413);
        expect(r.body.length).toBeGreaterThan(0);
        expect(await closed).toBe(constants.NGHTTP2_NO_ERROR);
      } finally {
        clearInterval(more);
      }
      // The session is still good for the next request.
      expect(await h2cPostStatus(gw.url('/c', 80), 1, s)).toBe(200);
    } finally {
      s.destroy();
    }
  });
});

describe('sluice serve on Ingress files', () => {
  it('serves an Ingress-only config (its listener counts as a bound server) and reloads an edited Ingress', async () => {
    const dir = await mkdtemp(nodePath.join(tmpdir(), 'sluice-ingress-serve-'));
    const [port] = await freePorts(1);
    const upstream = bench.up.get('demo-order')!;
    const write = (p: string) =>
      writeFile(
        nodePath.join(dir, 'ingress.yaml'),
        [
          ingressYaml({
            name: 'web',
            annotations: { 'limit-rate': '5' },
            paths: [path(p, 'Prefix', 'demo-order')],
          }),
          serviceYaml('demo-order', upstream.port),
        ].join('---\n'),
      );
    await write('/v1');
    const running = await startServeInProcess(dir, ['--ingress-http-port', String(port)]);
    try {
      const ask = async (p: string) =>
        (await request(`http://127.0.0.1:${port}${p}`, { headers: { host: 'demo.example.com' } })).statusCode;
      expect(running.isReady()).toBe(true);
      expect(await ask('/v1/a')).toBe(200);
      // The unsupported annotation is counted as every unsupported field is.
      const metrics = await (
        await fetch(`http://127.0.0.1:${running.metricsServer.port}/stats/prometheus`)
      ).text();
      expect(metrics).toContain('sluice_config_unsupported_total{kind="Ingress",field="limit-rate"} 1');
      expect(await ask('/v2/a')).toBe(404);
      await write('/v2');
      await until(async () => (await ask('/v2/a')) === 200, {
        timeoutMs: 5000,
        what: 'the edited Ingress served',
      });
      expect(await ask('/v1/a')).toBe(404);
    } finally {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** POST `kib` KiB in 1 KiB DATA frames, no content-length, over h2c prior knowledge: the status. */
/** The status of a POST of `kib` KiB over h2c: on `session` when given (left open), else a new one. */
function h2cPostStatus(url: string, kib: number, session?: ClientHttp2Session): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const s = session ?? http2Connect(u.origin);
    s.on('error', reject);
    const st = s.request({ ':method': 'POST', ':path': u.pathname, ':authority': 'demo.example.com' });
    st.on('response', (h) => {
      st.resume();
      st.on('close', () => {
        if (session === undefined) s.close();
        resolve(Number(h[':status']));
      });
    });
    st.on('error', () => undefined);
    for (let i = 0; i < kib; i++) st.write(Buffer.alloc(1024, 'b'));
    st.end();
  });
}

/**
 * ingress-nginx's external authentication (auth-url and companions) on natively served Ingresses,
 * against a real auth service on loopback: what the auth service is asked, what the upstream
 * gets, what the client gets for each of the service's answers.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../support/gateway.ts';
import {
  compileIngressYaml,
  ingressYaml,
  path,
  sendIngress as send,
  serviceYaml,
  useIngressUpstreams,
} from '../support/ingress.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';

interface Check {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const checks: Check[] = [];
let auth: Server;
let authPort = 0;

/** The auth service answers by the client's `x-token`, as an oauth2-proxy would by its cookie. */
beforeAll(async () => {
  auth = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      checks.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      switch (req.headers['x-token']) {
        case 'good':
          res.writeHead(200, {
            'x-auth-user': 'alice',
            'x-auth-groups': 'admins',
            'set-cookie': 'session=s1; Path=/',
          });
          return res.end('ok');
        case 'good-anonymous':
          res.writeHead(202);
          return res.end();
        case 'forbidden':
          res.writeHead(403, { 'set-cookie': 'seen=1' });
          return res.end('no');
        case 'broken':
          res.writeHead(502);
          return res.end('upstream of auth is down');
        case 'moved':
          res.writeHead(302, { location: '/elsewhere' });
          return res.end();
        default:
          res.writeHead(401, { 'www-authenticate': 'Bearer realm="demo"', 'set-cookie': 'csrf=c1' });
          return res.end('who are you');
      }
    });
  });
  await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve));
  authPort = (auth.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => auth.close(() => resolve())));
beforeEach(() => void (checks.length = 0));

const bench = useIngressUpstreams(['main']);
const AUTH_URL = 'http://authsvc.default.svc.cluster.local/verify?from=ingress';

function protectedIngress(annotations: Record<string, string> = {}): Promise<TestGateway> {
  return bench.start(
    [
      ingressYaml({
        name: 'web',
        annotations: { 'auth-url': AUTH_URL, ...annotations },
        paths: [path('/', 'Prefix', 'main')],
      }),
      serviceYaml('authsvc', authPort),
    ].join('---\n'),
  );
}

describe('auth-url', () => {
  it('asks the auth service with a GET and ingress-nginx’s headers, without the body', async () => {
    const gw = await protectedIngress();
    const r = await send(gw, '/app/x?y=1', {
      method: 'POST',
      body: 'payload',
      headers: {
        'x-token': 'good',
        cookie: 'session=s0',
        'x-forwarded-proto': 'https',
        'x-original-url': 'http://spoofed/',
      },
    });
    expect(r.status).toBe(200);
    expect(checks).toHaveLength(1);
    const c = checks[0]!;
    expect(c.method).toBe('GET');
    expect(c.url).toBe('/verify?from=ingress');
    expect(c.body).toBe('');
    expect(c.headers['content-length']).toBeUndefined();
    expect(c.headers).toMatchObject({
      host: 'authsvc.default.svc.cluster.local',
      'x-original-url': 'http://demo.example.com/app/x?y=1',
      'x-original-method': 'POST',
      'x-sent-from': 'nginx-ingress-controller',
      'x-real-ip': '127.0.0.1',
      'x-forwarded-for': '127.0.0.1',
      'x-auth-request-redirect': '/app/x?y=1',
      cookie: 'session=s0',
      'x-token': 'good',
    });
    expect(c.headers['x-forwarded-proto']).toBeUndefined();
    expect(c.headers['x-original-uri']).toBeUndefined();
    // The upstream got the request itself, body and all.
    expect(r.echo?.method).toBe('POST');
    expect(r.echo?.body).toBe('payload');
  });

  it('auth-response-headers are copied to the upstream request; a client cannot supply them', async () => {
    const gw = await protectedIngress({ 'auth-response-headers': 'X-Auth-User, X-Auth-Groups' });
    const ok = await send(gw, '/p', { headers: { 'x-token': 'good', 'x-auth-user': 'mallory' } });
    expect(ok.echo?.headers['x-auth-user']).toBe('alice');
    expect(ok.echo?.headers['x-auth-groups']).toBe('admins');
    // The auth service's Set-Cookie reaches the client (auth_request_set $auth_cookie).
    expect(ok.headers['set-cookie']).toBe('session=s1; Path=/');
    const anon = await send(gw, '/p', {
      headers: { 'x-token': 'good-anonymous', 'x-auth-user': 'mallory', 'x-auth-groups': 'admins' },
    });
    expect(anon.status).toBe(200);
    expect(anon.echo?.headers['x-auth-user']).toBeUndefined();
    expect(anon.echo?.headers['x-auth-groups']).toBeUndefined();
  });

  it('401 and 403 go back to the client; any other answer is 500; the upstream sees none of them', async () => {
    const gw = await protectedIngress();
    const none = await send(gw, '/p');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="demo"');
    expect(none.text).not.toContain('who are you');
    expect((await send(gw, '/p', { headers: { 'x-token': 'forbidden' } })).status).toBe(403);
    expect((await send(gw, '/p', { headers: { 'x-token': 'broken' } })).status).toBe(500);
    expect((await send(gw, '/p', { headers: { 'x-token': 'moved' } })).status).toBe(500);
    expect(bench.up.get('main')!.seen).toHaveLength(0);
  });

  it('auth-signin turns 401 into a 302 with rd= the original URL (or fills $host / $escaped_request_uri)', async () => {
    const gw = await protectedIngress({ 'auth-signin': 'https://login.example.com/start' });
    const r = await send(gw, '/app/x?y=1');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(
      'https://login.example.com/start?rd=http://demo.example.com%2Fapp%2Fx%3Fy%3D1',
    );
    expect(r.headers['set-cookie']).toBe('csrf=c1');
    expect((await send(gw, '/p', { headers: { 'x-token': 'forbidden' } })).status).toBe(403);
    const vars = await protectedIngress({
      'auth-signin': 'https://$host/oauth2/start?rd=$escaped_request_uri',
    });
    // $request_uri is the URI as sent (`/a%20b`), and set_escape_uri escapes its `%` too.
    expect((await send(vars, '/a b?c=d')).headers.location).toBe(
      'https://demo.example.com/oauth2/start?rd=%2Fa%2520b%3Fc%3Dd',
    );
  });

  it('auth-method and auth-request-redirect change the check as in ingress-nginx', async () => {
    const gw = await protectedIngress({
      'auth-method': 'POST',
      'auth-request-redirect': 'https://app.example/',
    });
    await send(gw, '/q?z=2', { headers: { 'x-token': 'good' } });
    expect(checks[0]).toMatchObject({
      method: 'POST',
      headers: {
        'x-original-uri': '/q?z=2',
        'x-scheme': 'http',
        'x-auth-request-redirect': 'https://app.example/',
      },
    });
  });

  it('an auth service that cannot be reached is 500, never a pass', async () => {
    const gw = await bench.start(
      [
        ingressYaml({
          name: 'web',
          annotations: { 'auth-url': 'http://authsvc.default.svc.cluster.local/verify' },
          paths: [path('/', 'Prefix', 'main')],
        }),
        serviceYaml('authsvc', 1),
      ].join('---\n'),
    );
    expect((await send(gw, '/p', { headers: { 'x-token': 'good' } })).status).toBe(500);
    expect(bench.up.get('main')!.seen).toHaveLength(0);
  });

  it('refuses the config for an auth-url, auth-method or header name ingress-nginx would deny', () => {
    for (const [extra, text] of [
      [{ 'auth-url': 'ftp://x/' }, '"ftp://x/" is not an http or https URL'],
      [{ 'auth-method': 'FETCH' }, '"FETCH" is not an HTTP method'],
      [{ 'auth-response-headers': 'X-Ok, Bad Header' }, '"Bad Header" is not a header name'],
      [{ 'auth-url': 'http://$host/auth' }, 'uses nginx variables'],
    ] as const) {
      const { diagnostics, snapshot } = compileIngressYaml(
        ingressYaml({
          name: 'web',
          annotations: { 'auth-url': AUTH_URL, ...extra },
          paths: [path('/', 'Prefix', 'main')],
        }),
      );
      const errors = diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(text);
      expect(snapshot.listeners.size === 0 || errors[0]!.includes('VirtualService')).toBe(true);
    }
  });
});

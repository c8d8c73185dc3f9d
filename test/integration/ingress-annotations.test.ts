/**
 * ingress-nginx annotations on natively served Ingresses, each with real requests through the
 * gateway to loopback upstreams: what the upstream sees, what the client gets.
 */
import { createHash } from 'node:crypto';
import apacheMd5 from 'apache-md5';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import type { TestGateway } from '../support/gateway.ts';
import { startEcho } from '../support/upstreams.ts';
import {
  compileIngressYaml,
  serviceYaml,
  startIngressGateway,
  ingressYaml,
  path,
  sendIngress as send,
  useIngressUpstreams,
} from '../support/ingress.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';

const bench = useIngressUpstreams(['main', 'canary']);
const start = (...ingresses: string[]): Promise<TestGateway> => bench.start(ingresses.join('---\n'));

const one = (annotations: Record<string, string>, p = path('/', 'Prefix', 'main')): string =>
  ingressYaml({ name: 'web', annotations, paths: [p] });

describe('redirect annotations', () => {
  it('permanent-redirect answers 301 (or -code) to the URL; temporal-redirect 302', async () => {
    const gw = await start(one({ 'permanent-redirect': 'https://new.example.com/landing?from=old' }));
    const r = await send(gw, '/anything');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('https://new.example.com/landing?from=old');
    const coded = await start(
      one({ 'permanent-redirect': 'https://new.example.com/', 'permanent-redirect-code': '308' }),
    );
    expect((await send(coded, '/x')).status).toBe(308);
    const temporal = await start(one({ 'temporal-redirect': 'http://maint.example.com/down' }));
    const t = await send(temporal, '/x');
    expect(t.status).toBe(302);
    expect(t.headers.location).toBe('http://maint.example.com/down');
    expect(bench.up.get('main')!.seen).toHaveLength(0);
  });

  it('app-root redirects / with 302 and leaves other paths alone', async () => {
    const gw = await start(one({ 'app-root': '/app1' }));
    const r = await send(gw, '/');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('http://demo.example.com/app1');
    expect((await send(gw, '/app1/page')).echo?.url).toBe('/app1/page');
  });

  it('from-to-www-redirect sends www.<host> to <host> with 308, path kept', async () => {
    const gw = await start(one({ 'from-to-www-redirect': 'true' }));
    const r = await send(gw, '/a?b=1', { host: 'www.demo.example.com' });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('http://demo.example.com/a?b=1');
  });
});

describe('upstream request annotations', () => {
  it('upstream-vhost sets the Host the upstream sees; x-forwarded-prefix adds the header', async () => {
    const gw = await start(one({ 'upstream-vhost': 'internal.svc', 'x-forwarded-prefix': '/shop' }));
    const r = await send(gw, '/cart');
    expect(r.echo?.headers.host).toBe('internal.svc');
    expect(r.echo?.headers['x-forwarded-prefix']).toBe('/shop');
  });

  it('server-alias serves the same paths on another host', async () => {
    const gw = await start(one({ 'server-alias': 'alias.example.com' }));
    expect((await send(gw, '/p', { host: 'alias.example.com' })).echo?.name).toBe('main');
  });

  it('rewrite-target without captures replaces the whole path, as nginx rewrite does', async () => {
    const gw = await start(one({ 'rewrite-target': '/' }, path('/api', 'Prefix', 'main')));
    expect((await send(gw, '/api/v1/items?x=1')).echo?.url).toBe('/?x=1');
    expect((await send(gw, '/API')).echo?.url).toBe('/');
  });

  it('use-regex alone makes paths case-insensitive regex prefixes, for every Ingress of the host', async () => {
    const gw = await start(
      one({ 'use-regex': 'true' }, path('/items/[0-9]+', 'ImplementationSpecific', 'main')),
      ingressYaml({ name: 'other', paths: [path('/exact', 'Exact', 'canary')] }),
    );
    expect((await send(gw, '/ITEMS/42/detail')).echo?.name).toBe('main');
    expect((await send(gw, '/items/x')).status).toBe(404);
    // Exact on a regex host is `~* "^/exact"`: a prefix.
    expect((await send(gw, '/Exact/more')).echo?.name).toBe('canary');
  });
});

describe('timeouts', () => {
  it('proxy-read-timeout answers 504 when the upstream sends no headers in time; 60 s by default', async () => {
    // Far beyond the 1 s timeout, so a loaded machine cannot let the answer arrive first.
    const slow = await startEcho({ name: 'slow', delayMs: 4000 });
    try {
      const yaml = (annotations: Record<string, string>) =>
        [one(annotations, path('/', 'Prefix', 'slow')), serviceYaml('slow', slow.port)].join('---\n');
      const gw = await startIngressGateway(yaml({ 'proxy-read-timeout': '1' }));
      try {
        const r = await send(gw, '/late');
        expect(r.status).toBe(504);
      } finally {
        await gw.close();
      }
      const { snapshot } = compileIngressYaml(yaml({}));
      const route = snapshot.listeners.get(80)!.httpTable!.exact.get('demo.example.com')!.routes[0]!;
      expect(route.action.kind === 'forward' && route.action.readTimeoutMs).toBe(60_000);
    } finally {
      await slow.close();
    }
  });
});

describe('proxy-next-upstream (+ -tries)', () => {
  /** An upstream that resets the first `resets` requests, then answers `status`. */
  async function flaky(resets: number, status = 200) {
    let n = 0;
    const up = await startEcho({
      name: 'flaky',
      handle: (req, res) => {
        n++;
        if (n <= resets) req.socket.destroy();
        else res.writeHead(status).end('ok');
      },
    });
    return up;
  }
  async function serveFlaky(up: Awaited<ReturnType<typeof flaky>>, annotations: Record<string, string>) {
    const gw = await startIngressGateway(
      [one(annotations, path('/', 'Prefix', 'flaky')), serviceYaml('flaky', up.port)].join('---\n'),
    );
    return gw;
  }

  it('retries a reset connection by default (error timeout, 3 tries) but never a 503 answer', async () => {
    const up = await flaky(2);
    const down = await flaky(0, 503);
    const gw = await serveFlaky(up, {});
    const gw2 = await serveFlaky(down, {});
    try {
      expect((await send(gw, '/x')).status).toBe(200);
      expect(up.seen).toHaveLength(3);
      expect((await send(gw2, '/x')).status).toBe(503);
      expect(down.seen).toHaveLength(1);
    } finally {
      await gw.close();
      await gw2.close();
      await up.close();
      await down.close();
    }
  });

  it('http_503 with -tries 2 retries a 503 once; off retries nothing', async () => {
    const down = await flaky(0, 503);
    const reset = await flaky(1);
    const gw = await serveFlaky(down, {
      'proxy-next-upstream': 'error timeout http_503',
      'proxy-next-upstream-tries': '2',
    });
    const off = await serveFlaky(reset, { 'proxy-next-upstream': 'off' });
    try {
      expect((await send(gw, '/x')).status).toBe(503);
      expect(down.seen).toHaveLength(2);
      expect((await send(off, '/x')).status).toBe(503);
      expect(reset.seen).toHaveLength(1);
    } finally {
      await gw.close();
      await off.close();
      await down.close();
      await reset.close();
    }
  });
});

describe('CORS (enable-cors)', () => {
  it('answers preflights with ingress-nginx defaults and adds allow-origin to responses', async () => {
    const gw = await start(one({ 'enable-cors': 'true' }));
    const pre = await send(gw, '/api', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'PUT' },
    });
    expect(pre.status).toBe(200);
    expect(pre.headers['access-control-allow-methods']).toBe('GET,PUT,POST,DELETE,PATCH,OPTIONS');
    expect(pre.headers['access-control-allow-credentials']).toBe('true');
    expect(pre.headers['access-control-max-age']).toBe('1728000');
    const actual = await send(gw, '/api', { headers: { origin: 'https://app.example' } });
    expect(actual.headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('honours cors-allow-origin', async () => {
    const gw = await start(
      one({ 'enable-cors': 'true', 'cors-allow-origin': 'https://a.example, https://b.example' }),
    );
    const ok = await send(gw, '/', { headers: { origin: 'https://b.example' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://b.example');
    const no = await send(gw, '/', { headers: { origin: 'https://c.example' } });
    expect(no.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('canary Ingresses', () => {
  const canaryOf = (annotations: Record<string, string>): string =>
    ingressYaml({
      name: 'web-canary',
      annotations: { canary: 'true', ...annotations },
      paths: [path('/', 'Prefix', 'canary')],
    });
  const names = async (gw: TestGateway, n: number, headers: Record<string, string> = {}) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push((await send(gw, '/p', { headers })).echo?.name ?? 'none');
    return new Set(seen);
  };

  it('canary-by-header: always → canary, never → main, else the weight', async () => {
    const gw = await start(one({}), canaryOf({ 'canary-by-header': 'X-Canary', 'canary-weight': '100' }));
    expect(await names(gw, 3, { 'x-canary': 'always' })).toEqual(new Set(['canary']));
    expect(await names(gw, 3, { 'x-canary': 'never' })).toEqual(new Set(['main']));
    expect(await names(gw, 3)).toEqual(new Set(['canary']));
  });

  it('canary-by-header-value routes only that value to the canary', async () => {
    const gw = await start(
      one({}),
      canaryOf({ 'canary-by-header': 'x-region', 'canary-by-header-value': 'eu' }),
    );
    expect(await names(gw, 2, { 'x-region': 'eu' })).toEqual(new Set(['canary']));
    expect(await names(gw, 2, { 'x-region': 'us' })).toEqual(new Set(['main']));
    expect(await names(gw, 2, { 'x-region': 'always' })).toEqual(new Set(['main']));
  });

  it('canary-by-cookie: always → canary, never → main', async () => {
    const gw = await start(one({}), canaryOf({ 'canary-by-cookie': 'beta', 'canary-weight': '100' }));
    expect(await names(gw, 2, { cookie: 'a=1; beta=always' })).toEqual(new Set(['canary']));
    expect(await names(gw, 2, { cookie: 'beta=never' })).toEqual(new Set(['main']));
  });

  it('canary-weight splits traffic; 0 sends none', async () => {
    const split = await start(one({}), canaryOf({ 'canary-weight': '50' }));
    expect(await names(split, 60)).toEqual(new Set(['main', 'canary']));
    const none = await start(one({}), canaryOf({ 'canary-weight': '0' }));
    expect(await names(none, 10)).toEqual(new Set(['main']));
  });
});

describe('session affinity', () => {
  it('affinity: cookie issues session-cookie-name with its max-age and path', async () => {
    const gw = await start(
      one({
        affinity: 'cookie',
        'session-cookie-name': 'route',
        'session-cookie-max-age': '3600',
        'session-cookie-path': '/',
      }),
    );
    const r = await send(gw, '/');
    const cookie = String(r.headers['set-cookie']);
    expect(cookie).toMatch(/^route=[^;]+; Max-Age=3600; Path=\/; HttpOnly/);
    expect(r.echo?.name).toBe('main');
  });
});

describe('source ranges (nginx allow/deny)', () => {
  it('whitelist-source-range lets only those clients through; others get 403 before the upstream', async () => {
    const open = await start(one({ 'whitelist-source-range': '10.0.0.0/8, 127.0.0.1/32' }));
    expect((await send(open, '/x')).echo?.name).toBe('main');
    bench.up.get('main')!.seen.length = 0;
    const closed = await start(one({ 'whitelist-source-range': '10.0.0.0/8' }));
    const r = await send(closed, '/x');
    expect(r.status).toBe(403);
    expect(bench.up.get('main')!.seen).toHaveLength(0);
  });

  it('denylist-source-range refuses those clients', async () => {
    const gw = await start(one({ 'denylist-source-range': '127.0.0.0/8' }));
    expect((await send(gw, '/x')).status).toBe(403);
    const other = await start(one({ 'denylist-source-range': '192.168.0.0/16' }));
    expect((await send(other, '/x')).status).toBe(200);
  });

  it('refuses a malformed range rather than serving the path unrestricted', () => {
    const { diagnostics } = compileIngressYaml(one({ 'whitelist-source-range': '10.0.0.0/33' }));
    expect(diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([
      'error   test.yaml#1 Ingress default/web: metadata.annotations[nginx.ingress.kubernetes.io/whitelist-source-range]: "10.0.0.0/33" is not an IP address or CIDR range; refused rather than served unrestricted [SLUICE_INGRESS_REFUSED]',
    ]);
  });
});

describe('basic authentication (auth-type basic)', () => {
  const htpasswd = [
    `alice:${bcrypt.hashSync('wonderland', 4).replace(/^\$2b\$/, '$2y$')}`,
    `bob:${apacheMd5('builder')}`,
    `carol:{SHA}${createHash('sha1').update('singer').digest('base64')}`,
    'dave:XyZ12abCdEfGh',
  ].join('\n');
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  const secret = (name: string, data: Record<string, string>) =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: default}\ntype: Opaque\ndata:\n${Object.entries(
      data,
    )
      .map(([k, v]) => `  ${k}: ${b64(v)}`)
      .join('\n')}\n`;
  const basic = (user: string, pw: string) => ({ authorization: `Basic ${b64(`${user}:${pw}`)}` });
  const protectedYaml = (extra: Record<string, string> = {}) =>
    [
      one({ 'auth-type': 'basic', 'auth-secret': 'users', 'auth-realm': 'Staff only', ...extra }),
      secret('users', { auth: htpasswd }),
      secret('users-map', { erin: `{PLAIN}plain-pw` }),
    ].join('---\n');

  it('answers 401 with WWW-Authenticate without valid credentials, and lets bcrypt, apr1 and {SHA} users in', async () => {
    const gw = await start(protectedYaml());
    const none = await send(gw, '/private');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="Staff only"');
    expect((await send(gw, '/private', { headers: basic('alice', 'wrong') })).status).toBe(401);
    expect((await send(gw, '/private', { headers: basic('mallory', 'x') })).status).toBe(401);
    // crypt(3) DES is not verified: that user is refused, never let in.
    expect((await send(gw, '/private', { headers: basic('dave', 'anything') })).status).toBe(401);
    for (const [u, p] of [
      ['alice', 'wonderland'],
      ['bob', 'builder'],
      ['carol', 'singer'],
    ] as const) {
      const ok = await send(gw, '/private', { headers: basic(u, p) });
      expect({ u, status: ok.status }).toEqual({ u, status: 200 });
      expect(ok.echo?.headers.authorization).toBe(basic(u, p).authorization);
    }
    expect(bench.up.get('main')!.seen).toHaveLength(3);
  });

  it('reads auth-map Secrets (user → hash)', async () => {
    const gw = await start(protectedYaml({ 'auth-secret': 'users-map', 'auth-secret-type': 'auth-map' }));
    expect((await send(gw, '/', { headers: basic('erin', 'plain-pw') })).status).toBe(200);
    expect((await send(gw, '/', { headers: basic('erin', 'nope') })).status).toBe(401);
  });

  it('refuses the config when the Secret is missing or the type is digest, rather than serving open', () => {
    for (const [extra, text] of [
      [{ 'auth-secret': 'absent' }, 'Secret default/absent is not in the config'],
      [{ 'auth-type': 'digest' }, '"digest" authentication is not supported (only basic)'],
    ] as const) {
      const { diagnostics, snapshot } = compileIngressYaml(protectedYaml(extra));
      const errors = diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(text);
      expect(snapshot.listeners.size).toBe(0);
    }
  });
});

describe('annotations sluice does not act on, and refused ones', () => {
  it('refuses security annotations it cannot enforce yet instead of serving the Ingress open', () => {
    for (const a of ['auth-tls-match-cn']) {
      const { diagnostics, snapshot } = compileIngressYaml(one({ [a]: 'x' }));
      const errors = diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`nginx.ingress.kubernetes.io/${a}]:`);
      expect(errors[0]).toContain('the config is refused [SLUICE_INGRESS_REFUSED]');
      expect(snapshot.listeners.size).toBe(0);
    }
  });

  it('warns per Ingress for each unsupported annotation, naming it and its effect', () => {
    const { diagnostics } = compileIngressYaml(one({ 'limit-rate': '5', 'some-future-thing': 'x' }));
    const lines = diagnostics.map(formatDiagnostic);
    expect(lines).toContain(
      'warning test.yaml#1 Ingress default/web: metadata.annotations[nginx.ingress.kubernetes.io/limit-rate]: not supported yet: response bandwidth per request is not limited [SLUICE_INGRESS_ANNOTATION]',
    );
    expect(lines).toContain(
      'warning test.yaml#1 Ingress default/web: metadata.annotations[nginx.ingress.kubernetes.io/some-future-thing]: not supported by sluice; it has no effect [SLUICE_INGRESS_ANNOTATION]',
    );
    expect(diagnostics.find((d) => d.code === 'SLUICE_INGRESS_ANNOTATION')?.unsupported).toBeDefined();
  });

  it('refuses configuration-snippet and server-snippet with an error naming them', () => {
    const { diagnostics, snapshot } = compileIngressYaml(
      one({ 'configuration-snippet': 'more_set_headers "X: y";', 'server-snippet': 'location /x {}' }),
    );
    const errors = diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain(
      'nginx.ingress.kubernetes.io/configuration-snippet]: raw nginx configuration',
    );
    expect(errors[1]).toContain('nginx.ingress.kubernetes.io/server-snippet]');
    expect(snapshot.listeners.size).toBe(0);
  });
});

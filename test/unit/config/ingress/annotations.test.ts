import { describe, expect, it } from 'vitest';
import { parseNginxSize, readAnnotations } from '../../../../src/config/ingress/annotations.ts';
import { formatDiagnostic } from '../../../../src/errors/diagnostic.ts';
import { compileIngressYaml, ingressYaml, path, serviceYaml } from '../../../support/ingress.ts';

const P = 'nginx.ingress.kubernetes.io/';
const read = (a: Record<string, string>) =>
  readAnnotations(Object.fromEntries(Object.entries(a).map(([k, v]) => [P + k, v])));

describe('ingress-nginx annotations', () => {
  it('parses nginx sizes: bytes, k, m, g, 0; refuses anything else', () => {
    expect(parseNginxSize('0')).toBe(0);
    expect(parseNginxSize('8')).toBe(8);
    expect(parseNginxSize('512k')).toBe(512 * 1024);
    expect(parseNginxSize('1m')).toBe(1024 * 1024);
    expect(parseNginxSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseNginxSize('1.5m')).toBeNull();
    expect(parseNginxSize('10mb')).toBeNull();
  });

  it("keeps ingress-nginx's defaults when nothing is set", () => {
    const { value, problems } = read({});
    expect(problems).toEqual([]);
    expect(value).toMatchObject({
      useRegex: false,
      rewriteTarget: null,
      sslRedirect: true,
      forceSslRedirect: false,
      backendProtocol: 'HTTP',
      connectTimeoutSeconds: 5,
      readTimeoutSeconds: 60,
      sendTimeoutSeconds: 60,
      maxBodyBytes: 1024 * 1024,
      cors: null,
      canary: null,
      hash: null,
      basicAuth: null,
    });
  });

  it('permanent-redirect wins over temporal-redirect; a bad code falls back to 301 with a warning', () => {
    const { value, problems } = read({
      'permanent-redirect': 'https://a.example/',
      'permanent-redirect-code': '305',
      'temporal-redirect': 'https://b.example/',
    });
    expect(value.redirect).toEqual({
      url: 'https://a.example/',
      code: 301,
      annotation: 'permanent-redirect',
    });
    expect(problems.map((p) => p.annotation)).toEqual(['permanent-redirect-code']);
  });

  it('reads upstream-hash-by variables Istio can hash on and warns about the rest', () => {
    expect(read({ 'upstream-hash-by': '$remote_addr' }).value.hash).toEqual({ kind: 'source-ip' });
    expect(read({ 'upstream-hash-by': '$http_x_user_id' }).value.hash).toEqual({
      kind: 'header',
      name: 'x-user-id',
    });
    expect(read({ 'upstream-hash-by': '$arg_session' }).value.hash).toEqual({
      kind: 'query',
      name: 'session',
    });
    const uri = read({ 'upstream-hash-by': '$request_uri' });
    expect(uri.value.hash).toBeNull();
    expect(uri.problems[0]?.level).toBe('warning');
  });

  it('reads session-cookie-expires and -max-age together; max-age wins', () => {
    const { value, problems } = read({
      affinity: 'cookie',
      'session-cookie-expires': '100',
      'session-cookie-max-age': '200',
    });
    expect(problems).toEqual([]);
    expect(value.hash).toEqual({ kind: 'cookie', name: 'INGRESSCOOKIE', ttlSeconds: 200, path: null });
  });

  it('refuses snippets and unenforceable security annotations; warns about unknown ones', () => {
    const { problems } = read({
      'server-snippet': 'x',
      'auth-tls-match-cn': 'CN=x',
      'limit-rate': '5',
      'made-up': 'y',
      'proxy-body-size': 'lots',
    });
    expect(problems.map((p) => `${p.level} ${p.annotation}`).sort()).toEqual([
      'error auth-tls-match-cn',
      'error server-snippet',
      'warning limit-rate',
      'warning made-up',
      'warning proxy-body-size',
    ]);
  });

  it("auth-secret is namespace/name: the Ingress's namespace when written without one", () => {
    const basic = (secret: string, namespace?: string) =>
      readAnnotations({ [P + 'auth-type']: 'basic', [P + 'auth-secret']: secret }, namespace).value.basicAuth;
    expect(basic('users')).toEqual({ secret: 'default/users', secretType: 'auth-file', realm: '' });
    expect(basic('users', 'shop')?.secret).toBe('shop/users');
    expect(basic('staff/users', 'shop')?.secret).toBe('staff/users');
  });

  it('proxy-send-timeout is an integer of seconds, as ingress-nginx reads it; anything else keeps 60', () => {
    expect(read({ 'proxy-send-timeout': '30' }).value.sendTimeoutSeconds).toBe(30);
    expect(read({ 'proxy-send-timeout': ' 120 ' }).value.sendTimeoutSeconds).toBe(120);
    for (const bad of ['30s', '1m', '0', '-5', '1.5', 'soon', '']) {
      const { value, problems } = read({ 'proxy-send-timeout': bad });
      expect(value.sendTimeoutSeconds, bad).toBe(60);
      expect(problems, bad).toEqual([
        {
          level: 'warning',
          annotation: 'proxy-send-timeout',
          message: `must be an integer 1..86400, got "${bad}"; 60 is used`,
        },
      ]);
    }
  });

  it('an invalid proxy-send-timeout is a warning naming the Ingress and the annotation', () => {
    const { snapshot, diagnostics } = compileIngressYaml(
      ingressYaml({
        name: 'web',
        annotations: { 'proxy-send-timeout': '30s' },
        paths: [path('/', 'Prefix', 'main')],
      }) +
        '---\n' +
        serviceYaml('main', 8080),
    );
    expect(diagnostics.filter((d) => d.subject?.kind === 'Ingress').map(formatDiagnostic)).toEqual([
      'warning test.yaml#1 Ingress default/web: metadata.annotations[nginx.ingress.kubernetes.io/proxy-send-timeout]: must be an integer 1..86400, got "30s"; 60 is used [SLUICE_INGRESS_ANNOTATION]',
    ]);
    const route = snapshot.listeners.get(80)!.httpTable!.exact.get('demo.example.com')!.routes[0]!;
    expect(route.action.kind === 'forward' && route.action.sendTimeoutMs).toBe(60_000);
  });

  it('custom-http-errors: codes 400..599 in the order written, duplicates dropped; anything else drops the annotation', () => {
    expect(
      read({ 'custom-http-errors': '404, 503,404', 'default-backend': 'errors' }).value.errorPages,
    ).toEqual({
      codes: [404, 503],
      defaultBackend: 'errors',
      upstreamResponses: true,
    });
    const bad = read({ 'custom-http-errors': '404,302' });
    expect(bad.value.errorPages).toBeNull();
    expect(bad.problems.map((p) => `${p.level} ${p.annotation}`)).toEqual(['warning custom-http-errors']);
    expect(read({ 'default-backend': 'errors' }).value.errorPages).toEqual({
      codes: [],
      defaultBackend: 'errors',
      upstreamResponses: true,
    });
    expect(
      read({ 'custom-http-errors': '503', 'disable-proxy-intercept-errors': 'true' }).value.errorPages
        ?.upstreamResponses,
    ).toBe(false);
    expect(read({ 'disable-proxy-intercept-errors': 'true' }).problems[0]?.message).toBe(
      'without custom-http-errors it has no effect',
    );
    const badName = read({ 'default-backend': 'Not_A/Service' });
    expect(badName.value.errorPages).toBeNull();
    expect(badName.problems[0]?.annotation).toBe('default-backend');
  });
});

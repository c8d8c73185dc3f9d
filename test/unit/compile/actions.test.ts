import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, parseRetryOn } from '../../../src/compile/actions.ts';
import type { ForwardAction, Route } from '../../../src/snapshot/types.ts';
import { compileYaml, routeOf, vsYaml } from '../../simulate/compile-yaml.ts';

const SVC = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  ports: [{name: http, port: 9090}]`;

function route(http: string, path = '/'): Route {
  const c = compileYaml(vsYaml(http, { extra: SVC }));
  const r = routeOf(c.snapshot, 8080, 'a.example.com', path);
  if (!r) throw new Error(`no route for ${path}:\n${c.messages.join('\n')}`);
  return r;
}

function forward(http: string, path = '/'): ForwardAction {
  const a = route(http, path).action;
  if (a.kind !== 'forward') throw new Error(`not forward: ${a.kind}`);
  return a;
}

describe('actions', () => {
  it('VS-20 a single destination takes everything whatever its weight', () => {
    const a = forward('  - route: [{destination: {host: web}, weight: 10}]');
    expect(a.destinations.map((d) => d.weight)).toEqual([1]);
    expect(a.totalWeight).toBe(1);
  });

  it('VS-20 weights are shares of their sum; weight 0 gets nothing (Istio drops it)', () => {
    const a = forward(
      '  - route: [{destination: {host: web}, weight: 3}, {destination: {host: api}, weight: 1}, {destination: {host: nothing}, weight: 0}]',
    );
    expect(a.destinations.map((d) => [d.clusterName, d.weight])).toEqual([
      ['outbound|80||web.default.svc.cluster.local', 3],
      ['outbound|9090||api.default.svc.cluster.local', 1],
    ]);
    expect(a.totalWeight).toBe(4);
  });

  it('VS-12 rewrite.uri on a prefix match replaces that prefix', () => {
    const a = forward(
      '  - match: [{uri: {prefix: /foo}}]\n    rewrite: {uri: /bar}\n    route: [{destination: {host: web}}]',
      '/foo/x',
    );
    expect(a.rewrite).toEqual({ kind: 'prefix', prefix: '/foo', ignoreCase: false, replacement: '/bar' });
  });

  it('VS-12 rewrite.uri on an exact or regex match replaces the whole path', () => {
    expect(
      forward(
        '  - match: [{uri: {exact: /a}}]\n    rewrite: {uri: /b}\n    route: [{destination: {host: web}}]',
        '/a',
      ).rewrite,
    ).toEqual({ kind: 'full', replacement: '/b' });
    expect(
      forward(
        '  - match: [{uri: {regex: "/a.*"}}]\n    rewrite: {uri: /b}\n    route: [{destination: {host: web}}]',
        '/abc',
      ).rewrite,
    ).toEqual({ kind: 'full', replacement: '/b' });
  });

  it('VS-12 a rule without uri match rewrites as prefix "/" (/api → /v2api trap)', () => {
    expect(forward('  - rewrite: {uri: /v2}\n    route: [{destination: {host: web}}]').rewrite).toEqual({
      kind: 'prefix',
      prefix: '/',
      ignoreCase: false,
      replacement: '/v2',
    });
  });

  it('VS-13 uriRegexRewrite compiles an RE2 replace-all with \\1 groups', () => {
    const a = forward(
      '  - rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\\\2/instance/\\\\1"}}\n    route: [{destination: {host: web}}]',
    );
    expect(a.rewrite?.kind).toBe('regex');
    if (a.rewrite?.kind !== 'regex') return;
    expect(a.rewrite.pattern.replaceAll('/service/foo/v1/api', a.rewrite.replacement)).toBe(
      '/v1/api/instance/foo',
    );
  });

  it('VS-14 rewrite.authority', () => {
    expect(
      forward('  - rewrite: {authority: new.io}\n    route: [{destination: {host: web}}]').authority,
    ).toBe('new.io');
  });

  it.each([
    [undefined, 301],
    [0, 301],
    [302, 302],
    [303, 303],
    [307, 307],
    [308, 308],
  ])('VS-15 redirectCode %s → %s', (code, want) => {
    const r = route(`  - redirect: {uri: /x${code === undefined ? '' : `, redirectCode: ${code}`}}`);
    expect(r.action).toMatchObject({ kind: 'redirect', code: want, uri: '/x', httpsRedirect: false });
  });

  it('VS-17 direct response with a string body and with base64 bytes', () => {
    const s = route('  - directResponse: {status: 503, body: {string: "down"}}').action;
    expect(s.kind === 'direct' && new TextDecoder().decode(s.body ?? new Uint8Array())).toBe('down');
    const b = route('  - directResponse: {status: 200, body: {bytes: "aGVsbG8="}}').action;
    expect(b.kind === 'direct' && new TextDecoder().decode(b.body ?? new Uint8Array())).toBe('hello');
    const e = route('  - directResponse: {status: 204}').action;
    expect(e).toEqual({ kind: 'direct', status: 204, body: null });
  });

  it('VS-21 route and destination header operations', () => {
    const r = route(
      '  - headers: {request: {set: {X-A: "1"}, add: {x-b: "2"}, remove: [X-C]}, response: {set: {x-r: r}}}\n    route: [{destination: {host: web}, headers: {request: {set: {x-d: d}}}}]',
    );
    expect(r.requestHeaders).toEqual({ remove: ['x-c'], set: [['x-a', '1']], add: [['x-b', '2']] });
    expect(r.responseHeaders).toEqual({ remove: [], set: [['x-r', 'r']], add: [] });
    expect(r.action.kind === 'forward' && r.action.destinations[0]?.requestHeaders).toEqual({
      remove: [],
      set: [['x-d', 'd']],
      add: [],
    });
  });

  it('VS-21 header values: %% unescaped at compile time, operators kept as a template', () => {
    const r = route(
      '  - headers: {request: {set: {x-a: "100%%", x-b: "ip=%DOWNSTREAM_REMOTE_ADDRESS%", x-c: "%REQ(x-user?x-id):8%"}}}\n    route: [{destination: {host: web}}]',
    );
    const set = r.requestHeaders?.set ?? [];
    expect(set[0]).toEqual(['x-a', '100%']);
    expect(set[1]).toEqual([
      'x-b',
      {
        text: 'ip=%DOWNSTREAM_REMOTE_ADDRESS%',
        parts: ['ip=', { name: 'DOWNSTREAM_REMOTE_ADDRESS', args: null, maxLength: null }],
      },
    ]);
    expect(set[2]?.[1]).toMatchObject({ parts: [{ name: 'REQ', args: 'x-user?x-id', maxLength: 8 }] });
  });

  it.each([
    ['a lone percent', '50%', 'starts no command operator'],
    ['an unknown operator', '%DYNAMIC_METADATA(x)%', 'not a command operator sluice substitutes'],
    ['REQ without a header', '%REQ()%', 'needs an argument'],
    ['an argument where none is taken', '%HOSTNAME(x)%', 'takes no argument'],
  ])(
    'VS-21 %s in a header value is an error naming the field; the rest of the route stays',
    (_n, value, want) => {
      const c = compileYaml(
        vsYaml(
          `  - headers: {response: {set: {x-ok: fine, x-bad: "${value}"}}}\n    route: [{destination: {host: web}}]`,
          {
            extra: SVC,
          },
        ),
      );
      const d = c.diagnostics.find((x) => x.path === 'spec.http[0].headers.response.set.x-bad');
      expect(d?.level, c.messages.join('\n')).toBe('error');
      expect(d?.message).toContain(want);
      const r = routeOf(c.snapshot, 8080, 'a.example.com', '/');
      expect(r?.responseHeaders?.set).toEqual([['x-ok', 'fine']]);
    },
  );

  it('VS-22 timeout default none; 10s → 10000 ms; 0s = none', () => {
    expect(forward('  - route: [{destination: {host: web}}]').timeoutMs).toBeNull();
    expect(forward('  - timeout: 10s\n    route: [{destination: {host: web}}]').timeoutMs).toBe(10_000);
    expect(forward('  - timeout: 0s\n    route: [{destination: {host: web}}]').timeoutMs).toBeNull();
  });

  it('VS-23 default retries: 2 attempts, connect-failure and refused-stream, no status codes', () => {
    const a = forward('  - route: [{destination: {host: web}}]');
    expect(a.retry).toBe(DEFAULT_RETRY);
    expect(a.retry.attempts).toBe(2);
    expect(a.retry.retryOn.statusCodes.size).toBe(0);
    expect(a.retry.retryOn.fiveXx).toBe(false);
    expect(a.retry.backoffBaseMs).toBe(25);
    expect(a.retry.backoffMaxMs).toBe(250);
  });

  it('VS-23 attempts 0 disables retries; attempts set keeps the default retryOn', () => {
    expect(
      forward('  - retries: {attempts: 0}\n    route: [{destination: {host: web}}]').retry.attempts,
    ).toBe(0);
    const a = forward(
      '  - retries: {attempts: 5, perTryTimeout: 2s}\n    route: [{destination: {host: web}}]',
    );
    expect(a.retry.attempts).toBe(5);
    expect(a.retry.perTryTimeoutMs).toBe(2000);
    expect(a.retry.retryOn.connectFailure).toBe(true);
  });

  it('VS-25 perTryTimeout at or above timeout is ignored', () => {
    expect(
      forward(
        '  - timeout: 1s\n    retries: {attempts: 2, perTryTimeout: 2s}\n    route: [{destination: {host: web}}]',
      ).retry.perTryTimeoutMs,
    ).toBeNull();
  });

  it('VS-24 retryOn tokens; bare numbers become status codes', () => {
    const { retryOn, unknown } = parseRetryOn(
      '5xx,gateway-error,reset,retriable-4xx,503,429,cancelled,bogus',
    );
    expect(retryOn.fiveXx && retryOn.gatewayError && retryOn.reset && retryOn.retriable4xx).toBe(true);
    expect(retryOn.connectFailure).toBe(false);
    expect([...retryOn.statusCodes]).toEqual([503, 429]);
    expect(unknown).toEqual(['bogus']);
    const a = forward(
      '  - retries: {attempts: 3, retryOn: "connect-failure,503"}\n    route: [{destination: {host: web}}]',
    );
    expect([...a.retry.retryOn.statusCodes]).toEqual([503]);
  });
});

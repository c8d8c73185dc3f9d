import { describe, expect, it } from 'vitest';
import { compileCors, compileFault, perMillionOf } from '../../../src/compile/route-filters.ts';
import type { MatchBuildProblem } from '../../../src/compile/match.ts';
import type { ForwardAction, Route } from '../../../src/snapshot/types.ts';
import { compileYaml, routeOf, vsYaml } from '../../simulate/compile-yaml.ts';

function route(http: string, path = '/'): Route {
  const c = compileYaml(vsYaml(http));
  const r = routeOf(c.snapshot, 8080, 'a.example.com', path);
  if (!r) throw new Error(`no route for ${path}:\n${c.messages.join('\n')}`);
  return r;
}

describe('VS-26 fault as Istio TranslateFault writes it', () => {
  const problems: MatchBuildProblem[] = [];

  it('percentages become millionths, truncated to 0.0001 % steps', () => {
    expect(perMillionOf({ value: 100 })).toBe(1_000_000);
    expect(perMillionOf({ value: 0.0001 })).toBe(1);
    expect(perMillionOf({ value: 12.34567 })).toBe(123_456);
    expect(perMillionOf({})).toBe(0);
  });

  it('a delay without percentage uses the legacy percent; neither means never', () => {
    expect(compileFault({ delay: { fixedDelay: '2s', percent: 30 } }, 'f', problems)?.delay).toEqual({
      ms: 2000,
      perMillion: 300_000,
    });
    expect(
      compileFault({ delay: { fixedDelay: '2s', percent: 30, percentage: { value: 1 } } }, 'f', problems)
        ?.delay,
    ).toEqual({ ms: 2000, perMillion: 10_000 });
    expect(compileFault({ delay: { fixedDelay: '2s' } }, 'f', problems)?.delay?.perMillion).toBe(0);
  });

  it('an abort without percentage never fires; gRPC aborts are HTTP 200 with the code', () => {
    expect(compileFault({ abort: { httpStatus: 503 } }, 'f', problems)?.abort).toEqual({
      httpStatus: 503,
      grpcStatus: null,
      perMillion: 0,
    });
    expect(
      compileFault({ abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 50 } } }, 'f', problems)
        ?.abort,
    ).toEqual({ httpStatus: 200, grpcStatus: 7, perMillion: 500_000 });
  });

  it('an abort with neither status injects nothing (Istio drops it)', () => {
    expect(compileFault({ abort: { percentage: { value: 50 } } }, 'f', problems)).toBeNull();
    expect(problems).toEqual([]);
  });

  it('the route gets [fault, cors] in Istio order; a route without either has no filters at all', () => {
    const r = route(
      `  - match: [{uri: {prefix: /x}}]
    corsPolicy: {allowOrigins: [{exact: https://a.example.com}]}
    fault: {abort: {httpStatus: 500, percentage: {value: 1}}}
    route: [{destination: {host: a.default.svc.cluster.local}}]
  - route: [{destination: {host: a.default.svc.cluster.local}}]`,
      '/x',
    );
    expect(r.filters?.map((f) => f.kind)).toEqual(['fault', 'cors']);
    expect('filters' in route(`  - route: [{destination: {host: a.default.svc.cluster.local}}]`)).toBe(false);
  });
});

describe('VS-28/VS-29 corsPolicy as Istio TranslateCORSPolicy writes it', () => {
  it('joins lists with "," and gives maxAge in whole seconds', () => {
    const problems: MatchBuildProblem[] = [];
    const c = compileCors(
      {
        allowOrigins: [{ exact: 'https://a' }],
        allowMethods: ['GET', 'POST'],
        allowHeaders: ['x-a', 'x-b'],
        exposeHeaders: ['x-c'],
        maxAge: '1500ms',
        allowCredentials: true,
      },
      'c',
      problems,
    );
    expect([c.allowMethods, c.allowHeaders, c.exposeHeaders, c.maxAge, c.allowCredentials]).toEqual([
      'GET,POST',
      'x-a,x-b',
      'x-c',
      '1',
      true,
    ]);
    expect(c.forwardUnmatchedPreflights).toBe(true);
    expect(problems).toEqual([]);
  });

  it('origin matchers are case-sensitive; regexes are full matches; a "*" matcher allows all', () => {
    const c = compileCors(
      {
        allowOrigins: [
          { exact: 'https://a.example.com' },
          { prefix: 'https://b' },
          { regex: 'https://.+\\.c' },
        ],
      },
      'c',
      [],
    );
    const test = (o: string) => c.allowOrigins.some((m) => m.test(o));
    expect(test('https://a.example.com')).toBe(true);
    expect(test('https://A.example.com')).toBe(false);
    expect(test('https://bee')).toBe(true);
    expect(test('https://x.c')).toBe(true);
    expect(test('https://x.c.evil')).toBe(false);
    expect(c.anyOrigin).toBe(false);
    expect(compileCors({ allowOrigins: [{ prefix: '*' }] }, 'c', []).anyOrigin).toBe(true);
    expect(compileCors({ allowOrigins: [{ regex: '.*' }] }, 'c', []).anyOrigin).toBe(true);
  });

  it('legacy allowOrigin is a list of exact origins, used only without allowOrigins', () => {
    expect(compileCors({ allowOrigin: ['https://old'] }, 'c', []).allowOrigins.map((m) => m.kind)).toEqual([
      'exact',
    ]);
    expect(compileCors({ allowOrigin: ['https://old'], allowOrigins: [] }, 'c', []).allowOrigins).toEqual([]);
    expect(compileCors({ unmatchedPreflights: 'IGNORE' }, 'c', []).forwardUnmatchedPreflights).toBe(false);
  });
});

describe('VS-27 mirrors on the forward action', () => {
  function forward(http: string): ForwardAction {
    const a = route(http).action;
    if (a.kind !== 'forward') throw new Error('not forward');
    return a;
  }
  const dest = `    route: [{destination: {host: a.default.svc.cluster.local}}]\n`;

  it('mirror is 100 % by default; mirrorPercentage wins over the legacy mirrorPercent; 0 mirrors nothing', () => {
    expect(forward(`  - mirror: {host: m.default.svc.cluster.local}\n${dest}`).mirrors?.[0]?.perMillion).toBe(
      1_000_000,
    );
    expect(
      forward(`  - mirror: {host: m.default.svc.cluster.local}\n    mirrorPercent: 40\n${dest}`).mirrors?.[0]
        ?.perMillion,
    ).toBe(400_000);
    expect(
      forward(
        `  - mirror: {host: m.default.svc.cluster.local}\n    mirrorPercent: 40\n    mirrorPercentage: {value: 2.5}\n${dest}`,
      ).mirrors?.[0]?.perMillion,
    ).toBe(25_000);
    expect(
      forward(`  - mirror: {host: m.default.svc.cluster.local}\n    mirrorPercentage: {value: 0}\n${dest}`)
        .mirrors,
    ).toBeUndefined();
    expect(forward(dest.replace('    ', '  - ')).mirrors).toBeUndefined();
  });

  it('mirrors[] entries keep their order and their own percentage; the Host suffix is off by default', () => {
    const m = forward(`  - mirrors:
    - destination: {host: m1.default.svc.cluster.local}
    - destination: {host: m2.default.svc.cluster.local}
      percentage: {value: 10}
${dest}`).mirrors!;
    expect(m.map((x) => [x.clusterName, x.perMillion, x.shadowHostSuffix])).toEqual([
      ['outbound|8080||m1.default.svc.cluster.local', 1_000_000, false],
      ['outbound|8080||m2.default.svc.cluster.local', 100_000, false],
    ]);
  });
});

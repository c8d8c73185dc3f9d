import { describe, expect, it } from 'vitest';
import { compileMatch, isCatchAllMatch, parseClaimKey } from '../../../src/compile/match.ts';
import type { HTTPMatchRequest } from '../../../src/model/networking.ts';
import type { RequestView } from '../../../src/snapshot/types.ts';
import { requestView } from '../../simulate/compile-yaml.ts';

function matches(m: HTTPMatchRequest, req: RequestView): boolean {
  const problems: { path: string; message: string }[] = [];
  const conditions = compileMatch(m, 'spec.http[0].match[0]', problems);
  expect(problems).toEqual([]);
  if (conditions === null) throw new Error('match did not compile');
  return conditions.every((c) => c.test(req));
}

interface Case {
  readonly name: string;
  readonly match: HTTPMatchRequest;
  readonly req: Parameters<typeof requestView>[0];
  readonly want: boolean;
}

const cases: Case[] = [
  {
    name: 'VS-7 prefix has no segment boundary',
    match: { uri: { prefix: '/foo' } },
    req: { path: '/foobar' },
    want: true,
  },
  {
    name: 'VS-7 prefix ignores the query',
    match: { uri: { prefix: '/foo' } },
    req: { path: '/foo', query: 'x=1' },
    want: true,
  },
  {
    name: 'VS-7 prefix is case-sensitive',
    match: { uri: { prefix: '/foo' } },
    req: { path: '/FOO' },
    want: false,
  },
  {
    name: 'VS-7 exact compares the path without query',
    match: { uri: { exact: '/a' } },
    req: { path: '/a', query: 'b=c' },
    want: true,
  },
  { name: 'VS-7 exact is not a prefix', match: { uri: { exact: '/a' } }, req: { path: '/ab' }, want: false },
  {
    name: 'VS-7 regex is a full match',
    match: { uri: { regex: '/v[0-9]+' } },
    req: { path: '/v12/x' },
    want: false,
  },
  {
    name: 'VS-7 regex full match succeeds',
    match: { uri: { regex: '/v[0-9]+/.*' } },
    req: { path: '/v12/x' },
    want: true,
  },
  {
    name: 'VS-7 ignoreUriCase on exact',
    match: { uri: { exact: '/Admin' }, ignoreUriCase: true },
    req: { path: '/aDMIN' },
    want: true,
  },
  {
    name: 'VS-7 ignoreUriCase on prefix',
    match: { uri: { prefix: '/API' }, ignoreUriCase: true },
    req: { path: '/api/x' },
    want: true,
  },
  {
    name: 'VS-7 ignoreUriCase makes a regex (?i)',
    match: { uri: { regex: '/abc' }, ignoreUriCase: true },
    req: { path: '/ABC' },
    want: true,
  },
  {
    name: 'VS-8 method is case-sensitive',
    match: { method: { exact: 'get' } },
    req: { method: 'GET' },
    want: false,
  },
  { name: 'VS-8 method exact', match: { method: { exact: 'POST' } }, req: { method: 'POST' }, want: true },
  {
    name: 'VS-8 authority sees the port',
    match: { authority: { exact: 'a.io' } },
    req: { authority: 'a.io:8080' },
    want: false,
  },
  {
    name: 'VS-8 authority prefix with port',
    match: { authority: { prefix: 'a.io' } },
    req: { authority: 'a.io:8080' },
    want: true,
  },
  { name: 'VS-8 scheme', match: { scheme: { exact: 'https' } }, req: { scheme: 'http' }, want: false },
  {
    name: 'VS-9 header exact',
    match: { headers: { 'x-env': { exact: 'dev' } } },
    req: { headers: { 'x-env': 'dev' } },
    want: true,
  },
  {
    name: 'VS-9 header absent fails exact',
    match: { headers: { 'x-env': { exact: '' } } },
    req: {},
    want: false,
  },
  {
    name: 'VS-9 {} means present, even empty',
    match: { headers: { 'x-env': {} } },
    req: { headers: { 'x-env': '' } },
    want: true,
  },
  { name: 'VS-9 {} fails when absent', match: { headers: { 'x-env': {} } }, req: {}, want: false },
  {
    name: 'VS-9 regex "*" means present',
    match: { headers: { 'x-env': { regex: '*' } } },
    req: { headers: { 'x-env': 'q' } },
    want: true,
  },
  {
    name: 'VS-9 header regex is a full match',
    match: { headers: { 'x-v': { regex: 'v[12]' } } },
    req: { headers: { 'x-v': 'v12' } },
    want: false,
  },
  {
    name: 'VS-9 :method pseudo-header',
    match: { headers: { ':method': { exact: 'PUT' } } },
    req: { method: 'PUT' },
    want: true,
  },
  {
    name: 'VS-9 :authority pseudo-header',
    match: { headers: { ':authority': { exact: 'a.io:81' } } },
    req: { authority: 'a.io:81' },
    want: true,
  },
  {
    name: 'VS-9 :path pseudo-header includes the query',
    match: { headers: { ':path': { exact: '/a?b=1' } } },
    req: { path: '/a', query: 'b=1' },
    want: true,
  },
  {
    name: 'VS-9 :scheme pseudo-header',
    match: { headers: { ':scheme': { exact: 'https' } } },
    req: { scheme: 'https' },
    want: true,
  },
  {
    name: 'VS-9 keys uri/method/... are ignored',
    match: { headers: { uri: { exact: '/nope' } } },
    req: { path: '/x' },
    want: true,
  },
  {
    name: 'VS-9 repeated headers compare comma-joined',
    match: { headers: { 'x-a': { exact: '1,2' } } },
    req: { headers: { 'x-a': ['1', '2'] } },
    want: true,
  },
  {
    name: 'VS-10 withoutHeaders: missing counts as empty',
    match: { withoutHeaders: { 'x-a': { exact: 'a' } } },
    req: {},
    want: true,
  },
  {
    name: 'VS-10 withoutHeaders excludes a match',
    match: { withoutHeaders: { 'x-a': { exact: 'a' } } },
    req: { headers: { 'x-a': 'a' } },
    want: false,
  },
  {
    name: 'VS-10 withoutHeaders exact "" excludes a missing header',
    match: { withoutHeaders: { 'x-a': { exact: '' } } },
    req: {},
    want: false,
  },
  {
    name: 'VS-10 withoutHeaders {} means absent',
    match: { withoutHeaders: { 'x-a': {} } },
    req: {},
    want: true,
  },
  {
    name: 'VS-10 withoutHeaders {} fails when present',
    match: { withoutHeaders: { 'x-a': {} } },
    req: { headers: { 'x-a': '' } },
    want: false,
  },
  {
    name: 'VS-11 query exact',
    match: { queryParams: { v: { exact: '2' } } },
    req: { query: 'a=1&v=2' },
    want: true,
  },
  {
    name: 'VS-11 exact "" matches ?key',
    match: { queryParams: { debug: { exact: '' } } },
    req: { query: 'debug' },
    want: true,
  },
  {
    name: 'VS-11 exact "" matches key=',
    match: { queryParams: { debug: { exact: '' } } },
    req: { query: 'debug=' },
    want: true,
  },
  {
    name: 'VS-11 missing key fails',
    match: { queryParams: { debug: { exact: '' } } },
    req: { query: 'other=1' },
    want: false,
  },
  {
    name: 'VS-11 regex full match',
    match: { queryParams: { id: { regex: '[0-9]+' } } },
    req: { query: 'id=12a' },
    want: false,
  },
  {
    name: 'VS-11 prefix',
    match: { queryParams: { id: { prefix: 'ab' } } },
    req: { query: 'id=abc' },
    want: true,
  },
  { name: 'VS-11 {} means present', match: { queryParams: { id: {} } }, req: { query: 'id' }, want: true },
  {
    name: 'VS-11 repeated key keeps the first value',
    match: { queryParams: { v: { exact: '1' } } },
    req: { query: 'v=1&v=2' },
    want: true,
  },
  {
    name: 'VS-11 values are percent-decoded',
    match: { queryParams: { q: { exact: 'a b' } } },
    req: { query: 'q=a%20b' },
    want: true,
  },
  {
    name: 'VS-9 fields AND together',
    match: { uri: { prefix: '/api' }, method: { exact: 'GET' }, headers: { 'x-a': { exact: '1' } } },
    req: { path: '/api', method: 'GET', headers: { 'x-a': '2' } },
    want: false,
  },
  {
    name: 'VS-9 @request.auth.claims matches a JWT claim',
    match: { headers: { '@request.auth.claims.groups': { exact: 'admin' } } },
    req: { claims: { groups: ['dev', 'admin'] } },
    want: true,
  },
  {
    name: 'VS-9 @request.auth.claims[a][b] nested claim',
    match: { headers: { '@request.auth.claims[org][team]': { prefix: 'pay' } } },
    req: { claims: { org: { team: 'payments' } } },
    want: true,
  },
  {
    name: 'VS-9 claims without a token fail',
    match: { headers: { '@request.auth.claims.sub': {} } },
    req: {},
    want: false,
  },
];

describe('match conditions', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(matches(c.match, requestView(c.req))).toBe(c.want);
  });

  it('VS-7 no match fields = matches everything', () => {
    expect(compileMatch(undefined, 'p', [])).toEqual([]);
    expect(matches({}, requestView({ path: '/anything' }))).toBe(true);
  });

  it('conditions carry field and expected text for explain', () => {
    const c = compileMatch(
      { uri: { prefix: '/api' }, headers: { 'x-a': {} }, withoutHeaders: { 'x-b': { exact: 'z' } } },
      'p',
      [],
    );
    expect(c?.map((x) => `${x.field} ${x.expected}`)).toEqual([
      'uri prefix /api',
      'headers[x-a] present',
      'withoutHeaders[x-b] not exact z',
    ]);
  });

  it('VS-8 an invalid regex is a problem and the match does not compile', () => {
    const problems: { path: string; message: string }[] = [];
    expect(compileMatch({ uri: { regex: '(a' } }, 'spec.http[0].match[0]', problems)).toBeNull();
    expect(problems[0]?.path).toBe('spec.http[0].match[0].uri.regex');
  });

  it.each([
    [undefined, true],
    [{}, true],
    [{ uri: { prefix: '/' } }, true],
    [{ uri: { regex: '.*' } }, true],
    [{ uri: { prefix: '/' }, ignoreUriCase: true }, true],
    [{ uri: { prefix: '/api' } }, false],
    [{ uri: { exact: '/' } }, false],
    [{ uri: { prefix: '/' }, method: { exact: 'GET' } }, false],
    [{ uri: { prefix: '/' }, headers: { a: {} } }, false],
    [{ uri: { prefix: '/' }, withoutHeaders: { a: {} } }, false],
    [{ uri: { prefix: '/' }, queryParams: { a: {} } }, false],
    [{ authority: { exact: 'x' } }, false],
  ] as [HTTPMatchRequest | undefined, boolean][])('VS-4 catch-all %j: %s', (m, want) => {
    expect(isCatchAllMatch(m)).toBe(want);
  });

  it('parses claim keys', () => {
    expect(parseClaimKey('@request.auth.claims.sub')).toEqual(['sub']);
    expect(parseClaimKey('@request.auth.claims[a][b]')).toEqual(['a', 'b']);
    expect(parseClaimKey('x-header')).toBeNull();
  });
});

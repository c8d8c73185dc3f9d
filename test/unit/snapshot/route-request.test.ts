import { describe, expect, it } from 'vitest';
import {
  admitRequest,
  hostKeyOf,
  INVALID_AUTHORITY,
  INVALID_URL,
  MISSING_HOST,
  CODEC_ERROR,
  undecidedRequest,
  type RoutedRequest,
} from '../../../src/snapshot/route-request.ts';
import { compileYaml, vsYaml } from '../../simulate/compile-yaml.ts';

describe('GW-10 host key', () => {
  it('lowercases and drops the port and a trailing dot; keeps an IPv6 literal bracketed', () => {
    expect(hostKeyOf('Foo.Example.com:12345')).toBe('foo.example.com');
    expect(hostKeyOf('a.example.com')).toBe('a.example.com');
    expect(hostKeyOf('[::1]:8080')).toBe('[::1]');
    expect(hostKeyOf('[::1]')).toBe('[::1]');
    expect(hostKeyOf('a.example.com.')).toBe('a.example.com');
    expect(hostKeyOf('A.example.com.:80')).toBe('a.example.com');
  });

  it.each([
    'a b',
    'a}',
    'a{b',
    ': a',
    'a@b',
    'a/b',
    'a\\b',
    'a"b',
    'a\tb',
    'a\u00e9b',
    'a<b',
    'a|b',
    'a^b',
    'a`b',
  ])('no key for %j: bytes outside RFC 3986 host and port', (authority) =>
    expect(hostKeyOf(authority)).toBeNull(),
  );

  it("admits RFC 3986 sub-delims, percent-encoding and Envoy's other host characters", () => {
    expect(hostKeyOf("a-b_c~d!$&'()*+,;=%41:80")).toBe("a-b_c~d!$&'()*+,;=%41");
  });
});

describe('admitRequest', () => {
  const { snapshot } = compileYaml(vsYaml('  - directResponse: {status: 200}', { vsHosts: '["*"]' }));
  const fresh = (): RoutedRequest => undecidedRequest('GET', 'http', 8080, {});

  it('absolute form: the target authority replaces Host, the path and query are split', () => {
    const r = fresh();
    expect(admitRequest(r, snapshot, 'http://B.example.com:81/x/../y?q=1', 'a.example.com', '')).toBeNull();
    expect(r).toMatchObject({
      authority: 'B.example.com:81',
      host: 'b.example.com',
      path: '/y',
      query: 'q=1',
    });
    expect(r.table?.name).toBe('http.8080');
  });

  it.each([
    ['no Host', '/', '', MISSING_HOST],
    ['two Hosts', '/', null, CODEC_ERROR],
    ['asterisk form', '*', 'a', INVALID_URL],
    ['fragment', '/a#b', 'a', INVALID_URL],
    ['invalid Host', '/', 'a b', INVALID_AUTHORITY],
    ['invalid absolute-form authority', 'http://a@b/', 'a', INVALID_AUTHORITY],
  ] as const)('%s → %s', (_name, target, host, want) => {
    expect(admitRequest(fresh(), snapshot, target, host, '')).toBe(want);
  });
});

import { describe, expect, it } from 'vitest';
import { compileRe2, MAX_REGEX_LENGTH, parseRewrite } from '../../../src/util/re2.ts';

function re(source: string, flags?: { ignoreCase?: boolean }) {
  const r = compileRe2(source, flags);
  if (!r.ok) throw new Error(r.error);
  return r.regex;
}

describe('compileRe2', () => {
  it('matches the whole input only (VS-7 full match)', () => {
    const r = re('/api/v[0-9]+');
    expect(r.fullMatch('/api/v1')).toBe(true);
    expect(r.fullMatch('/api/v1/users')).toBe(false);
    expect(r.fullMatch('x/api/v1')).toBe(false);
    expect(r.source).toBe('/api/v[0-9]+');
  });

  it('ignoreCase', () => {
    expect(re('/Foo').fullMatch('/foo')).toBe(false);
    expect(re('/Foo', { ignoreCase: true }).fullMatch('/FOO')).toBe(true);
    expect(re('(?i)/foo').fullMatch('/FoO')).toBe(true);
  });

  it('replaceAll with \\1 back-references (VS-13 uriRegexRewrite)', () => {
    const r = re('^/service/([^/]+)(/.*)$');
    expect(r.replaceAll('/service/foo/v1/api', '\\2/instance/\\1')).toBe('/v1/api/instance/foo');
    expect(re('a').replaceAll('banana', 'o')).toBe('bonono');
    expect(re('(x)?b').replaceAll('ab', '[\\1]')).toBe('a[]');
    expect(re('a').replaceAll('a', '\\\\')).toBe('\\');
  });

  it.each([
    ['lookahead', 'foo(?=bar)'],
    ['lookbehind', '(?<=a)b'],
    ['back-reference', '(a)\\1'],
    ['unbalanced', '(abc'],
    ['bad class', '[z-a]'],
  ])('rejects %s', (_what, source) => {
    const r = compileRe2(source);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/not a valid RE2 regex/);
  });

  it(`rejects patterns longer than ${MAX_REGEX_LENGTH} characters`, () => {
    expect(compileRe2('a'.repeat(MAX_REGEX_LENGTH)).ok).toBe(true);
    const r = compileRe2('a'.repeat(MAX_REGEX_LENGTH + 1));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('1025 characters');
  });

  it('runs in linear time: (a+)+$ against 100k a\'s and a "!" (ReDoS)', () => {
    const r = re('(a+)+$');
    const input = 'a'.repeat(100_000) + '!';
    const start = performance.now();
    expect(r.fullMatch(input)).toBe(false);
    expect(re('(a|aa)+b').fullMatch(input)).toBe(false);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('parseRewrite', () => {
  it('splits literals and groups', () => {
    expect(parseRewrite('/x/\\1/\\2', 2)).toEqual({ ok: true, template: ['/x/', 1, '/', 2] });
  });
  it('rejects a group the regex lacks and a stray backslash', () => {
    expect(parseRewrite('\\3', 2).ok).toBe(false);
    expect(parseRewrite('a\\b', 2).ok).toBe(false);
  });
});

describe('compileRe2 keeps what it compiled', () => {
  it('gives the same compiled regex for the same source and flags, another for other flags', () => {
    const a = compileRe2('/kept/[0-9]+');
    const b = compileRe2('/kept/[0-9]+');
    const i = compileRe2('/kept/[0-9]+', { ignoreCase: true });
    expect(a.ok && b.ok && i.ok).toBe(true);
    if (!a.ok || !b.ok || !i.ok) return;
    expect(b.regex).toBe(a.regex);
    expect(i.regex).not.toBe(a.regex);
    expect(a.regex.fullMatch('/KEPT/1')).toBe(false);
    expect(i.regex.fullMatch('/KEPT/1')).toBe(true);
  });

  it('keeps failures too, with the same message', () => {
    const a = compileRe2('(unclosed');
    expect(a.ok).toBe(false);
    expect(compileRe2('(unclosed')).toEqual(a);
  });
});

import { describe, expect, it } from 'vitest';
import { normalisePath } from '../../../src/util/normalise-path.ts';

describe('AP-9 path normalisation', () => {
  const cases: [mode: Parameters<typeof normalisePath>[1], input: string, out: string | null][] = [
    ['BASE', '/a/b/c', '/a/b/c'],
    ['BASE', '/a/./b', '/a/b'],
    ['BASE', '/a/b/../c', '/a/c'],
    ['BASE', '/../../etc', '/etc'],
    ['BASE', '/a/b/..', '/a/'],
    ['BASE', '/a/.', '/a/'],
    ['BASE', '/..', '/'],
    ['BASE', '/a\\b', '/a/b'],
    ['BASE', '/%61dmin', '/admin'],
    ['BASE', '/a/%2e%2E/b', '/b'],
    ['BASE', '/a/%2e/b', '/a/b'],
    ['BASE', '/%7Euser', '/~user'],
    ['BASE', '/a%2Fb', '/a%2Fb'],
    ['BASE', '/a%20b', '/a%20b'],
    ['BASE', '/a//b', '/a//b'],
    ['BASE', '/a%zz', '/a%zz'],
    ['BASE', '/a%', '/a%'],
    ['BASE', '/a%00b', null],
    ['BASE', '/.hidden/x', '/.hidden/x'],
    ['BASE', '/a..b/c', '/a..b/c'],
    ['MERGE_SLASHES', '/a//b///c', '/a/b/c'],
    ['MERGE_SLASHES', '//admin', '/admin'],
    ['MERGE_SLASHES', '/a\\\\b', '/a/b'],
    ['MERGE_SLASHES', '/a%2Fb', '/a%2Fb'],
    ['DECODE_AND_MERGE_SLASHES', '/a%2Fb', '/a/b'],
    ['DECODE_AND_MERGE_SLASHES', '/a%2f%2Fb', '/a/b'],
    ['DECODE_AND_MERGE_SLASHES', '/a%5Cb', '/a/b'],
    ['DECODE_AND_MERGE_SLASHES', '/a%2F..%2Fb', '/b'],
    ['NONE', '/a/../b//c', '/a/../b//c'],
    ['NONE', '/%61', '/%61'],
    ['NONE', '/a%00', null],
  ];
  for (const [mode, input, out] of cases) {
    it(`${mode} ${input} → ${out}`, () => {
      expect(normalisePath(input, mode)).toBe(out);
    });
  }

  it('returns the same string for a clean path (no allocation)', () => {
    const p = '/api/v1/items';
    expect(normalisePath(p, 'MERGE_SLASHES')).toBe(p);
  });
});

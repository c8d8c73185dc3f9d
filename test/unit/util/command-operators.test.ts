import { describe, expect, it } from 'vitest';
import { parseCommandOperators } from '../../../src/util/command-operators.ts';

describe('Envoy command operators in a string', () => {
  it('splits literals and operators; %% is a literal percent', () => {
    expect(parseCommandOperators('a %%b %REQ(x-a?x-b):4% c %HOSTNAME%')).toEqual({
      ok: true,
      parts: [
        'a %b ',
        { name: 'REQ', args: 'x-a?x-b', maxLength: 4 },
        ' c ',
        { name: 'HOSTNAME', args: null, maxLength: null },
      ],
    });
    expect(parseCommandOperators('plain')).toEqual({ ok: true, parts: ['plain'] });
    expect(parseCommandOperators('%%%%')).toEqual({ ok: true, parts: ['%%'] });
  });

  it.each(['50%', '%REQ(x', '%lower%', 'a % b'])('%s is refused, as Envoy refuses it', (text) => {
    const r = parseCommandOperators(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toContain('write %% for a literal percent sign');
  });
});

import { describe, expect, it } from 'vitest';
import { operatorNames, parseCommandOperators } from '../../../src/util/command-operators.ts';

describe('Envoy command operators in a string', () => {
  it('splits literals and operators; %% is a literal percent', () => {
    expect(parseCommandOperators('a %%b %REQ(x-a?x-b):4% c %HOSTNAME%', 'header')).toEqual({
      errors: [],
      parts: [
        'a %b ',
        { name: 'REQ', args: 'x-a?x-b', maxLength: 4 },
        ' c ',
        { name: 'HOSTNAME', args: null, maxLength: null },
      ],
    });
    expect(parseCommandOperators('plain', 'header')).toEqual({ errors: [], parts: ['plain'] });
    expect(parseCommandOperators('%%%%', 'header')).toEqual({ errors: [], parts: ['%%'] });
  });

  it.each(['50%', '%REQ(x', '%lower%', 'a % b'])('%s is refused, as Envoy refuses it', (text) => {
    for (const use of ['header', 'access-log'] as const) {
      const r = parseCommandOperators(text, use);
      expect(r.errors[0]).toContain('write %% for a literal percent sign');
      // The rest still parses: the stray `%` stays text.
      expect(r.parts.join('')).toContain('%');
    }
  });

  it('one table for both uses: access-log-only operators are refused in header values', () => {
    expect(parseCommandOperators('%BYTES_SENT%', 'access-log').errors).toEqual([]);
    expect(parseCommandOperators('%BYTES_SENT%', 'header').errors[0]).toContain(
      'not a command operator sluice substitutes in header values',
    );
    expect(operatorNames('header')).toContain('DOWNSTREAM_REMOTE_ADDRESS');
    expect(operatorNames('header')).not.toContain('DURATION');
    expect(operatorNames('access-log')).toEqual(expect.arrayContaining(operatorNames('header')));
  });

  it('argument rules and unknown names, reported but kept as parts', () => {
    expect(parseCommandOperators('%REQ()%', 'access-log').errors).toEqual(['%REQ(...)% needs an argument']);
    expect(parseCommandOperators('%HOSTNAME(x)%', 'header').errors).toEqual([
      '%HOSTNAME% takes no argument here',
    ]);
    const unknown = parseCommandOperators('%NOPE% x', 'access-log');
    expect(unknown.errors).toEqual(['unknown command operator %NOPE%']);
    expect(unknown.parts).toEqual([{ name: 'NOPE', args: null, maxLength: null }, ' x']);
  });
});

import { describe, expect, it } from 'vitest';
import { connectionNominated } from '../../../src/util/connection-header.ts';

describe('connectionNominated (RFC 9110 §7.6.1)', () => {
  it('names nothing for an absent header or the usual connection options', () => {
    for (const v of [undefined, null, '', 'keep-alive', 'Keep-Alive', 'close', 'CLOSE', 'Upgrade'])
      expect(connectionNominated(v)).toBeNull();
    expect(connectionNominated('close, keep-alive ,upgrade')).toBeNull();
    expect(connectionNominated(['keep-alive', 'close'])).toBeNull();
  });

  it('lowercases and trims tokens, skips empty ones and repeats', () => {
    expect(connectionNominated(' X-Secret ,, x-b,\tX-C ,')).toEqual(['x-secret', 'x-b', 'x-c']);
    expect(connectionNominated('keep-alive, X-Secret')).toEqual(['x-secret']);
    expect(connectionNominated('x-a, X-A, x-a')).toEqual(['x-a']);
    expect(connectionNominated(', ,\t,')).toBeNull();
  });

  it('reads repeated Connection headers as one list', () => {
    expect(connectionNominated(['x-a', 'Keep-Alive, X-B', ''])).toEqual(['x-a', 'x-b']);
    expect(connectionNominated(['close', 'X-Private'])).toEqual(['x-private']);
  });

  it('keeps a token that is not a header name as written: it matches no header', () => {
    expect(connectionNominated('x a, x-b;q=1')).toEqual(['x a', 'x-b;q=1']);
  });
});

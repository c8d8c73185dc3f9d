import { describe, expect, it } from 'vitest';
import { hostKeyOf } from '../../../src/dataplane/handle-request.ts';

describe('GW-10 host key', () => {
  it('lowercases and drops the port', () => {
    expect(hostKeyOf('Foo.Example.com:12345')).toBe('foo.example.com');
    expect(hostKeyOf('a.example.com')).toBe('a.example.com');
    expect(hostKeyOf('[::1]:8080')).toBe('[::1]');
    expect(hostKeyOf('a.example.com.')).toBe('a.example.com');
  });
});

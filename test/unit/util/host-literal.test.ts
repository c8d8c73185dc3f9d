import { describe, expect, it } from 'vitest';
import { classifyHost, isInternalAddress, normaliseHostName } from '../../../src/util/host-literal.ts';

describe('normaliseHostName', () => {
  it('lowercases and removes one trailing dot, no more', () => {
    expect(normaliseHostName('API.Example.COM.')).toBe('api.example.com');
    expect(normaliseHostName('a.com..')).toBeNull();
    expect(normaliseHostName('.')).toBeNull();
  });
});

describe('classifyHost', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1', true],
    ['2130706433', '127.0.0.1', false],
    ['0177.0.0.1', '127.0.0.1', false],
    ['0x7f.0.0.1', '127.0.0.1', false],
    ['127.1', '127.0.0.1', false],
    ['127.0.0.01', '127.0.0.1', false],
    ['0x7f000001', '127.0.0.1', false],
    ['a.b.0x10', null, false],
  ])('%s is the IPv4 address %s (canonical: %s)', (host, address, canonical) => {
    const c = classifyHost(host);
    if (address === null) expect(c.kind).toBe('invalid');
    else expect(c).toEqual({ kind: 'ip', address, family: 4, canonical });
  });

  it('IPv6: compressed form is canonical; IPv4-mapped forms are unwrapped and never canonical', () => {
    expect(classifyHost('::1')).toEqual({ kind: 'ip', address: '::1', family: 6, canonical: true });
    expect(classifyHost('0:0::1')).toEqual({ kind: 'ip', address: '::1', family: 6, canonical: false });
    expect(classifyHost('::ffff:127.0.0.1')).toEqual({
      kind: 'ip',
      address: '127.0.0.1',
      family: 4,
      canonical: false,
    });
    expect(classifyHost('::ffff:7f00:1')).toEqual({
      kind: 'ip',
      address: '127.0.0.1',
      family: 4,
      canonical: false,
    });
    expect(classifyHost('fe80::1%eth0').kind).toBe('invalid');
  });

  it('names: DNS characters only', () => {
    expect(classifyHost('api.example.com')).toEqual({ kind: 'name', name: 'api.example.com' });
    expect(classifyHost('1password.com')).toEqual({ kind: 'name', name: '1password.com' });
    for (const bad of [
      'a b.com',
      'a%2e.com',
      'a/b',
      '*.example.com',
      '-a.com',
      'a..com',
      'exa\u0131mple.com',
    ])
      expect(classifyHost(bad).kind).toBe('invalid');
  });
});

describe('isInternalAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['::1', true],
    ['::', true],
    ['fd00:ec2::254', true],
    ['fe80::1', true],
    ['::ffff:10.0.0.1', true],
    ['8.8.8.8', false],
    ['192.0.2.1', false],
    ['2001:4860:4860::8888', false],
  ])('%s → %s', (address, internal) => {
    expect(isInternalAddress(address)).toBe(internal);
  });
});

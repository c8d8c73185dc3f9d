import { describe, expect, it } from 'vitest';
import { named, res, run } from './fixtures.ts';

function se(name: string, spec: Record<string, unknown>, namespace = 'default') {
  return res('ServiceEntry', name, { hosts: ['example.com'], resolution: 'DNS', ...spec }, { namespace });
}

describe('service entries (IST0134, IST0177)', () => {
  it('IST0134 for TCP or unset protocol ports without addresses', () => {
    const ds = run([
      se('https', { ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }] }),
      se('unset', { ports: [{ number: 443, name: 'https' }] }),
      se('tcp', { ports: [{ number: 22, name: 'tcp', protocol: 'TCP' }] }),
      se('tcp-addr', { addresses: ['10.0.0.1'], ports: [{ number: 22, name: 'tcp', protocol: 'TCP' }] }),
    ]);
    expect(named(ds, 'IST0134')).toEqual([
      'IST0134 ServiceEntry default/unset',
      'IST0134 ServiceEntry default/tcp',
    ]);
  });

  it('IST0177 for one host and port with two protocols, once per ServiceEntry', () => {
    const ds = run([
      se('se-https', { ports: [{ number: 13835, name: 'a', protocol: 'HTTPS' }] }),
      se('se-http', { ports: [{ number: 13835, name: 'b', protocol: 'HTTP' }] }),
      se('same', { hosts: ['other.com'], ports: [{ number: 443, name: 'c', protocol: 'HTTPS' }] }),
      se('same2', { hosts: ['other.com'], ports: [{ number: 443, name: 'c', protocol: 'HTTPS' }] }),
    ]);
    expect(named(ds, 'IST0177').sort()).toEqual([
      'IST0177 ServiceEntry default/se-http',
      'IST0177 ServiceEntry default/se-https',
    ]);
    expect(ds.find((d) => d.istioCode === 'IST0177')!.message).toContain('[HTTP, HTTPS]');
  });

  it('IST0177 ignores ServiceEntries exported to disjoint namespaces', () => {
    const ds = run([
      se('a', { exportTo: ['.'], ports: [{ number: 8080, name: 'a', protocol: 'HTTP' }] }, 'ns1'),
      se('b', { exportTo: ['.'], ports: [{ number: 8080, name: 'b', protocol: 'HTTPS' }] }, 'ns2'),
    ]);
    expect(named(ds, 'IST0177')).toEqual([]);
  });
});

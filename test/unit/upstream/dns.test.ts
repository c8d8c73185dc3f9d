import { afterEach, describe, expect, it } from 'vitest';
import {
  DNS_RETRY_MS,
  DNS_TTL_MS,
  cachedAnswer,
  freshAnswer,
  setDnsResolverForTests,
  settledAnswer,
  type DnsRecord,
} from '../../../src/upstream/dns.ts';

afterEach(() => setDnsResolverForTests(null));

/** A resolver answering `records` for every name. */
function scripted(records: readonly DnsRecord[]): void {
  setDnsResolverForTests(async () => records);
}

describe('DNS answers (SE-2: DNS follows TTL)', () => {
  it('an answer is kept for the smallest TTL of its records', async () => {
    scripted([
      { address: '192.0.2.1', ttl: 120 },
      { address: '192.0.2.2', ttl: 7 },
    ]);
    const before = Date.now();
    const a = await settledAnswer('a.example.test');
    expect(a.addresses).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(a.refreshAtMs - before).toBeGreaterThanOrEqual(7_000);
    expect(a.refreshAtMs - Date.now()).toBeLessThanOrEqual(7_000);
  });

  it('no TTL (the hosts file) or a TTL of 0 keeps the answer for the refresh rate', async () => {
    scripted(['192.0.2.3', { address: '192.0.2.4', ttl: 0 }]);
    const a = await settledAnswer('b.example.test');
    expect(a.refreshAtMs - Date.now()).toBeGreaterThan(DNS_TTL_MS - 1_000);
    expect(a.refreshAtMs - Date.now()).toBeLessThanOrEqual(DNS_TTL_MS);
  });

  it('within the TTL no question is asked; past it, the proxy waits for the fresh answer', async () => {
    const asked: string[] = [];
    let n = 0;
    setDnsResolverForTests(async (name) => {
      asked.push(name);
      n += 1;
      return [{ address: `192.0.2.${n}`, ttl: 10 }];
    });
    const first = await freshAnswer('c.example.test', Date.now());
    expect(first.addresses).toEqual(['192.0.2.1']);
    expect(freshAnswer('c.example.test', first.refreshAtMs - 1)).toBe(first);
    expect(asked).toEqual(['c.example.test']);
    const later = freshAnswer('c.example.test', first.refreshAtMs);
    expect(later).toBeInstanceOf(Promise);
    expect((await later).addresses).toEqual(['192.0.2.2']);
    expect(asked).toEqual(['c.example.test', 'c.example.test']);
  });

  it('a failed refresh keeps the last answer and is retried after 60 s', async () => {
    let fail = false;
    setDnsResolverForTests(async () => {
      if (fail) throw Object.assign(new Error('SERVFAIL'), { code: 'ESERVFAIL' });
      return [{ address: '192.0.2.9', ttl: 1 }];
    });
    const a = await settledAnswer('d.example.test');
    const version = a.version;
    fail = true;
    const again = await freshAnswer('d.example.test', a.refreshAtMs);
    expect(again.addresses).toEqual(['192.0.2.9']);
    expect(again.version).toBe(version);
    expect(again.refreshAtMs - Date.now()).toBeGreaterThan(DNS_RETRY_MS - 1_000);
    expect(cachedAnswer('d.example.test', Date.now()).pending).toBeNull();
  });
});

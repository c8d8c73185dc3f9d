import { afterEach, describe, expect, it } from 'vitest';
import {
  AD_HOC_DNS_NAMES,
  DNS_RETRY_MS,
  DNS_TTL_MS,
  cachedAnswer,
  dnsCacheSizesForTests,
  freshAnswer,
  keepDnsNames,
  releaseDnsNames,
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

describe('DNS answers: configured names and the names clients ask for', () => {
  /** Every name answers 127.0.0.1 for a minute; returns how often each name was asked. */
  function counting(): Map<string, number> {
    const asked = new Map<string, number>();
    setDnsResolverForTests(async (name) => {
      asked.set(name, (asked.get(name) ?? 0) + 1);
      return [{ address: '127.0.0.1', ttl: 60 }];
    });
    return asked;
  }

  /** What a client of the proxy does: one fresh answer for each of `count` new names. */
  async function askAdHoc(prefix: string, count: number): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++)
      waits.push(Promise.resolve(freshAnswer(`${prefix}${i}.adhoc.test`, Date.now())));
    await Promise.all(waits);
  }

  it('a client filling the ad-hoc budget neither drops a configured name nor grows the cache past it', async () => {
    const asked = counting();
    keepDnsNames({}, new Set(['svc.configured.test']));
    const configured = await settledAnswer('svc.configured.test');
    await settledAnswer('early.adhoc.test');
    await askAdHoc('n', AD_HOC_DNS_NAMES + 100);
    expect(dnsCacheSizesForTests()).toEqual({ configured: 1, adHoc: AD_HOC_DNS_NAMES });
    // Still cached: the same answer, and no second question.
    expect(freshAnswer('svc.configured.test', Date.now())).toBe(configured);
    expect(asked.get('svc.configured.test')).toBe(1);
    // An ad-hoc name asked before the flood was dropped (oldest first) and is asked again.
    await freshAnswer('early.adhoc.test', Date.now());
    expect(asked.get('early.adhoc.test')).toBe(2);
    expect(dnsCacheSizesForTests().adHoc).toBe(AD_HOC_DNS_NAMES);
  });

  it('a reload keeps a name a client asked first with its answer, and lets a dropped name go', async () => {
    const asked = counting();
    const owner = {};
    keepDnsNames(owner, new Set(['old.configured.test']));
    await settledAnswer('old.configured.test');
    const early = await settledAnswer('new.configured.test');
    keepDnsNames(owner, new Set(['new.configured.test']));
    expect(dnsCacheSizesForTests()).toEqual({ configured: 1, adHoc: 1 });
    expect(cachedAnswer('new.configured.test', Date.now())).toBe(early);
    await askAdHoc('m', AD_HOC_DNS_NAMES);
    expect(freshAnswer('new.configured.test', Date.now())).toBe(early);
    expect(asked.get('new.configured.test')).toBe(1);
    // The released name is an ad-hoc name again: the flood pushed it out.
    await freshAnswer('old.configured.test', Date.now());
    expect(asked.get('old.configured.test')).toBe(2);
  });

  it('a name stays configured while any running gateway keeps it', async () => {
    counting();
    const a = {};
    const b = {};
    keepDnsNames(a, new Set(['shared.configured.test']));
    keepDnsNames(b, new Set(['shared.configured.test', 'b.configured.test']));
    releaseDnsNames(a);
    expect(dnsCacheSizesForTests()).toEqual({ configured: 2, adHoc: 0 });
    releaseDnsNames(b);
    expect(dnsCacheSizesForTests()).toEqual({ configured: 0, adHoc: 2 });
  });
});

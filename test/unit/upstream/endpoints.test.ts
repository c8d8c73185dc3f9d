import { afterEach, describe, expect, it } from 'vitest';
import { hostSetOf, pickHost, warmEndpoints } from '../../../src/upstream/endpoints.ts';
import { closeAllPools, poolStatus } from '../../../src/upstream/pools.ts';
import { setDnsResolverForTests } from '../../../src/upstream/dns.ts';
import type { Cluster } from '../../../src/snapshot/types.ts';
import { staticCluster } from '../../support/snapshot-builder.ts';

afterEach(async () => {
  setDnsResolverForTests(null);
  await closeAllPools(true);
});

function dnsCluster(names: string[], roundRobin = false): Cluster {
  return staticCluster('dns.example.org', [], {
    key: `dns|${names.join(',')}|${roundRobin}`,
    endpoints: {
      kind: 'dns',
      roundRobin,
      endpoints: names.map((address) => ({ address, port: 80, weight: 1, labels: {} })),
    },
  });
}

describe('endpoints', () => {
  it('static endpoints are built once per cluster object and keep pools across clusters with the same key', () => {
    const c1 = staticCluster('s', [
      { address: '127.0.0.1', port: 1 },
      { address: '127.0.0.1', port: 2 },
    ]);
    const c2 = { ...c1 };
    const a = hostSetOf(c1);
    const b = hostSetOf(c2);
    expect(a).toBe(hostSetOf(c1));
    if (a instanceof Promise || b instanceof Promise) throw new Error('static sets are sync');
    expect(a.hosts.map((h) => h.hostPort)).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
    expect(b.hosts[0]).toBe(a.hosts[0]);
    expect(b.state).toBe(a.state);
  });

  it('a hash balancer builds its table on apply, not on the first request; other clusters stay lazy', () => {
    const eps = [
      { address: '127.0.0.1', port: 1 },
      { address: '127.0.0.1', port: 2 },
    ];
    const ring = staticCluster('ring', eps, { lb: 'RING_HASH', hashTableSize: 1024 });
    const maglev = staticCluster('maglev', eps, { lb: 'MAGLEV', hashTableSize: 65537 });
    const plain = staticCluster('plain', eps);
    warmEndpoints({}, new Map([ring, maglev, plain].map((c) => [c.name, c])));
    const r = hostSetOf(ring);
    const m = hostSetOf(maglev);
    if (r instanceof Promise || m instanceof Promise) throw new Error('static sets are sync');
    expect(r.view?.ring).not.toBeNull();
    expect(m.view?.maglev).not.toBeNull();
    // The request then uses that table rather than building another.
    const table = r.view!.ring;
    pickHost(r, null, { hi: 1, lo: 2, setCookie: null });
    expect(r.view!.ring).toBe(table);
    expect(poolStatus().some((p) => p.endpoint.endsWith(':1') && p.clusterKey === plain.key)).toBe(false);
  });

  it('SE-2 DNS: first use waits for the lookup; every address becomes an endpoint', async () => {
    setDnsResolverForTests(async () => ['10.0.0.1', '10.0.0.2']);
    const set = await hostSetOf(dnsCluster(['svc.example.org']));
    expect(set.hosts.map((h) => h.hostPort)).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('SE-2 DNS_ROUND_ROBIN uses the first address of the answer', async () => {
    setDnsResolverForTests(async () => ['10.0.0.1', '10.0.0.2']);
    const set = await hostSetOf(dnsCluster(['rr.example.org'], true));
    expect(set.hosts.map((h) => h.hostPort)).toEqual(['10.0.0.1:80']);
  });

  it('a name that does not resolve leaves no hosts (503 UH, as an Envoy DNS cluster with no answer)', async () => {
    setDnsResolverForTests(async () => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    });
    const set = await hostSetOf(dnsCluster(['missing.example.org']));
    expect(set.hosts).toHaveLength(0);
    expect(pickHost(set, null)).toBeNull();
  });

  it('skip previous hosts: a retry avoids the tried host when another exists', () => {
    const c = staticCluster(
      'r',
      [
        { address: '127.0.0.1', port: 11 },
        { address: '127.0.0.1', port: 12 },
      ],
      { lb: 'RANDOM' },
    );
    const set = hostSetOf(c);
    if (set instanceof Promise) throw new Error('sync');
    const tried = [set.hosts[0]!];
    let avoided = 0;
    for (let i = 0; i < 200; i++) if (pickHost(set, tried) !== tried[0]) avoided += 1;
    // 5 host-selection attempts: P(all 5 pick the tried one) = 1/32.
    expect(avoided).toBeGreaterThan(170);
  });
});

describe('SE-3 endpoint weights', () => {
  it('candidates repeat hosts in proportion to weight, interleaved', async () => {
    const { weightedCandidates } = await import('../../../src/upstream/endpoints.ts');
    const a = { key: 'a' } as never;
    const b = { key: 'b' } as never;
    expect(weightedCandidates([a, b], [1, 1])).toEqual([a, b]);
    const c = weightedCandidates([a, b], [1, 3]).map((h: { key: string }) => h.key);
    expect(c.sort()).toEqual(['a', 'b', 'b', 'b']);
    const d = weightedCandidates([a, b], [200, 400]).map((h: { key: string }) => h.key);
    expect(d).toHaveLength(3);
  });
});

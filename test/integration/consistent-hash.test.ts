/**
 * DR-4 consistentHash through the gateway against three real upstreams: the same key reaches the
 * same endpoint every time, different keys spread, a cookie is issued when absent and a ttl is
 * set (Envoy's Set-Cookie), at top, subset and port level, RING_HASH and MAGLEV.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGatewayFromYaml, type TestGateway } from '../support/gateway.ts';
import { startSteered, type SteeredUpstream } from '../support/upstreams.ts';
import { policyYaml } from '../support/policy-config.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

interface Answer {
  readonly status: number;
  readonly name: string;
  readonly setCookie: string[];
}

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { host: 'example.com', ...headers },
        localAddress,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            name: res.statusCode === 200 ? (JSON.parse(body) as { name: string }).name : '',
            setCookie: res.headers['set-cookie'] ?? [],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function setup(
  policy: string,
  opts: { subset?: string; port?: boolean } = {},
): Promise<{ gw: TestGateway; ups: SteeredUpstream[] }> {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => startSteered({ name })));
  for (const u of ups) cleanups.push(() => u.close());
  const gw = await startGatewayFromYaml(
    policyYaml({
      name: 'shop',
      ports: ups.map((u) => u.port),
      labels: 'version: v1',
      destination: `${opts.subset ? `, subset: ${opts.subset}` : ''}${opts.port ? ', port: { number: 80 }' : ''}`,
      rules: policy,
    }),
  );
  cleanups.push(() => gw.close());
  return { gw, ups };
}

/** 30 keys × 4 requests: each key always on one endpoint, the keys over at least two. */
async function expectAffinity(send: (key: string) => Promise<Answer>): Promise<void> {
  const where = new Map<string, string>();
  for (let round = 0; round < 4; round++) {
    for (let k = 0; k < 30; k++) {
      const a = await send(`key-${k}`);
      expect(a.status).toBe(200);
      const seen = where.get(`key-${k}`);
      if (seen === undefined) where.set(`key-${k}`, a.name);
      else expect(a.name, `key-${k}`).toBe(seen);
    }
  }
  expect(new Set(where.values()).size).toBeGreaterThanOrEqual(2);
}

describe('DR-4 consistentHash', () => {
  it('httpHeaderName: a header value sticks to one endpoint (ring hash, top level)', async () => {
    const { gw } = await setup(
      `  trafficPolicy:\n    loadBalancer: { consistentHash: { httpHeaderName: x-user } }`,
    );
    await expectAffinity((key) => get(gw.port(), '/', { 'x-user': key }));
  });

  it('httpQueryParameterName with maglev, at port level', async () => {
    const { gw } = await setup(
      `  trafficPolicy:\n    portLevelSettings:\n      - port: { number: 80 }\n        loadBalancer: { consistentHash: { httpQueryParameterName: u, maglev: { tableSize: 65537 } } }`,
      { port: true },
    );
    await expectAffinity((key) => get(gw.port(), `/?x=1&u=${key}`));
  });

  it('useSourceIp, at subset level: each client address sticks to one endpoint', async () => {
    const { gw } = await setup(
      `  subsets:\n    - name: v1\n      labels: { version: v1 }\n      trafficPolicy:\n        loadBalancer: { consistentHash: { useSourceIp: true } }`,
      { subset: 'v1' },
    );
    // Every 127.0.0.0/8 address is loopback on Linux: 30 client addresses.
    await expectAffinity((key) => get(gw.port(), '/', {}, `127.0.0.${10 + Number(key.slice(4))}`));
  });

  it('httpCookie with a ttl: an absent cookie is issued (Envoy format), then it sticks', async () => {
    const { gw } = await setup(`  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: { name: user, path: /shop, ttl: 3600s, attributes: [{ name: SameSite, value: Strict }, { name: Secure }] }`);
    const first = await get(gw.port(), '/');
    expect(first.status).toBe(200);
    expect(first.setCookie).toHaveLength(1);
    const cookie = first.setCookie[0]!;
    expect(cookie).toMatch(
      /^user="[0-9a-f]{16}"; Max-Age=3600; Path=\/shop; SameSite=Strict; Secure; HttpOnly$/,
    );
    const value = /^user="([0-9a-f]{16})"/.exec(cookie)![1]!;
    // The issued cookie picked the endpoint of the first answer; sent back, it keeps it.
    for (let i = 0; i < 10; i++) {
      const again = await get(gw.port(), '/', { cookie: `other=1; user=${value}` });
      expect(again.name).toBe(first.name);
      expect(again.setCookie).toEqual([]);
    }
    await expectAffinity((key) => get(gw.port(), '/', { cookie: `user=${key}` }));
  });

  it('httpCookie without a ttl issues nothing; ttl 0s issues a session cookie', async () => {
    const none = await setup(
      `  trafficPolicy:\n    loadBalancer: { consistentHash: { httpCookie: { name: user } } }`,
    );
    expect((await get(none.gw.port(), '/')).setCookie).toEqual([]);
    const session = await setup(
      `  trafficPolicy:\n    loadBalancer: { consistentHash: { httpCookie: { name: user, ttl: 0s } } }`,
    );
    expect((await get(session.gw.port(), '/')).setCookie[0]).toMatch(/^user="[0-9a-f]{16}"; HttpOnly$/);
  });

  it('a request without the key is spread at random', async () => {
    const { gw } = await setup(
      `  trafficPolicy:\n    loadBalancer: { consistentHash: { httpHeaderName: x-user } }`,
    );
    const names = new Set<string>();
    for (let i = 0; i < 60; i++) names.add((await get(gw.port(), '/')).name);
    // 60 picks over 3 endpoints: missing one has odds (2/3)^60 ≈ 3e-11.
    expect(names.size).toBe(3);
  });
});

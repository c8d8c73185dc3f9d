/**
 * ingress-nginx rate limits (limit-rps, limit-rpm, limit-burst-multiplier, limit-connections,
 * limit-whitelist) on natively served Ingresses: counted per client IP and per Ingress, nginx's
 * `burst + 1` admitted at once, 503 over the limit, before authentication; real requests to
 * loopback upstreams.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { TestGateway } from '../support/gateway.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import {
  compileIngressYaml,
  ingressYaml,
  path,
  sendIngress as send,
  serviceYaml,
  startIngressGateway,
  useIngressUpstreams,
} from '../support/ingress.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';

const bench = useIngressUpstreams(['main', 'other']);
const start = (...ingresses: string[]): Promise<TestGateway> => bench.start(ingresses.join('---\n'));

const web = (annotations: Record<string, string>, service = 'main'): string =>
  ingressYaml({ name: 'web', annotations, paths: [path('/', 'Prefix', service)] });

async function statuses(gw: TestGateway, paths: readonly string[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of paths) out.push((await send(gw, p)).status);
  return out;
}

describe('limit-rps / limit-rpm with limit-burst-multiplier', () => {
  it('admits limit × multiplier + 1 at once per client, shared by every path of the Ingress, then 503', async () => {
    const gw = await start(
      ingressYaml({
        name: 'web',
        annotations: { 'limit-rpm': '2', 'limit-burst-multiplier': '2' },
        paths: [path('/a', 'Prefix', 'main'), path('/b', 'Prefix', 'main')],
      }),
      ingressYaml({ name: 'free', paths: [path('/c', 'Prefix', 'other')] }),
    );
    // burst 2 × 2 = 4: nginx's limit_req admits burst + 1 = 5 before refusing.
    expect(await statuses(gw, ['/a', '/b', '/a/1', '/b/2', '/a'])).toEqual([200, 200, 200, 200, 200]);
    const over = await send(gw, '/b');
    expect(over.status).toBe(503);
    expect(over.headers['retry-after']).toBeUndefined();
    expect(over.headers['x-envoy-ratelimited']).toBeUndefined();
    expect(bench.up.get('main')!.seen).toHaveLength(5);
    // Another Ingress on the same host has no limit.
    expect(await statuses(gw, ['/c', '/c', '/c', '/c', '/c', '/c', '/c'])).toEqual(Array(7).fill(200));
  });

  it('limit-rps refills at the rate: refused, then admitted again a second later', async () => {
    const gw = await start(web({ 'limit-rps': '1', 'limit-burst-multiplier': '1' }));
    expect(await statuses(gw, ['/1', '/2', '/3'])).toEqual([200, 200, 503]);
    const t0 = Date.now();
    await until(async () => (await send(gw, '/again')).status === 200, { what: 'a token back' });
    expect(Date.now() - t0).toBeGreaterThan(300);
  });

  it('limit-whitelist clients are never counted', async () => {
    const gw = await start(
      web({
        'limit-rpm': '1',
        'limit-burst-multiplier': '1',
        'limit-whitelist': '10.0.0.0/8, 127.0.0.1',
      }),
    );
    expect(await statuses(gw, Array(6).fill('/x'))).toEqual(Array(6).fill(200));
  });

  it('counts before basic authentication, as nginx preaccess runs before access', async () => {
    const gw = await start(
      [
        web({
          'limit-rpm': '1',
          'limit-burst-multiplier': '1',
          'auth-type': 'basic',
          'auth-secret': 'users',
        }),
        `apiVersion: v1\nkind: Secret\nmetadata: {name: users, namespace: default}\ndata: {auth: ${Buffer.from('u:{PLAIN}p').toString('base64')}}\n`,
      ].join('---\n'),
    );
    expect(await statuses(gw, ['/', '/', '/'])).toEqual([401, 401, 503]);
  });

  it('refuses a malformed limit-whitelist rather than serving unlimited', () => {
    const { diagnostics, snapshot } = compileIngressYaml(
      web({ 'limit-rps': '5', 'limit-whitelist': '10.0.0.0/40' }),
    );
    expect(diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([
      'error   test.yaml#1 Ingress default/web: metadata.annotations[nginx.ingress.kubernetes.io/limit-whitelist]: "10.0.0.0/40" is not an IP address or CIDR range; refused rather than served unrestricted [SLUICE_INGRESS_REFUSED]',
    ]);
    expect(snapshot.listeners.size).toBe(0);
  });
});

describe('limit-connections', () => {
  it('caps the requests one client has in flight; 503 beyond, admitted again once one ends', async () => {
    const held: ServerResponse[] = [];
    const slow = await startEcho({
      name: 'slow',
      handle: (_req: IncomingMessage, res: ServerResponse) => {
        held.push(res);
      },
    });
    const gw = await startIngressGateway(
      [web({ 'limit-connections': '2' }, 'slow'), serviceYaml('slow', slow.port)].join('---\n'),
    );
    try {
      const first = send(gw, '/1');
      const second = send(gw, '/2');
      await until(() => held.length === 2, { what: 'two requests held at the upstream' });
      expect((await send(gw, '/3')).status).toBe(503);
      held[0]!.end('done');
      expect((await first).status).toBe(200);
      const third = send(gw, '/4');
      await until(() => held.length === 3, { what: 'a third request admitted' });
      for (const r of held.slice(1)) r.end('done');
      expect((await second).status).toBe(200);
      expect((await third).status).toBe(200);
    } finally {
      for (const r of held) if (!r.writableEnded) r.end();
      await gw.close();
      await slow.close();
    }
  });
});

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hostSetOf } from '../../src/upstream/endpoints.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import { requestOnCluster, type SideRequest } from '../../src/upstream/side-request.ts';
import type { Cluster } from '../../src/snapshot/types.ts';
import { staticCluster } from '../support/snapshot-builder.ts';

let server: Server;
let port: number;
let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();

beforeAll(async () => {
  server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => closeAllPools(true));

function ask(cluster: Cluster, over: Partial<SideRequest> = {}) {
  return requestOnCluster(cluster, {
    method: 'GET',
    path: '/check?x=1',
    headers: ['host', 'authz.example', 'x-asked', 'yes'],
    body: null,
    timeoutMs: 2_000,
    bodyLimit: () => 0,
    ...over,
  });
}

/** Requests the endpoint is counted in: back to 0 once every side request has ended. */
function activeOn(cluster: Cluster): number {
  const set = hostSetOf(cluster);
  if (set instanceof Promise) throw new Error('static sets are sync');
  return set.hosts[0]!.active;
}

describe('requestOnCluster (side requests for authorization checks)', () => {
  it('sends method, path, headers and body; answers status and headers, the body cut at the limit for its status', async () => {
    let seen: { method?: string; url?: string; asked?: string; body: string } = { body: '' };
    handle = (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { method: req.method, url: req.url, asked: req.headers['x-asked'] as string, body };
        res.writeHead(req.url === '/deny' ? 403 : 200, { 'x-answer': 'a', 'set-cookie': ['s=1', 't=2'] });
        // Many chunks, more than any limit below.
        for (let i = 0; i < 40; i++) res.write(Buffer.alloc(4096, 97 + (i % 26)));
        res.end();
      });
    };
    const cluster = staticCluster('authz.example', [{ address: '127.0.0.1', port }]);
    const limit = (status: number): number => (status === 403 ? 5_000 : 0);

    const allowed = await ask(cluster, { method: 'POST', body: Buffer.from('payload'), bodyLimit: limit });
    expect(seen).toEqual({ method: 'POST', url: '/check?x=1', asked: 'yes', body: 'payload' });
    expect(allowed.kind).toBe('answer');
    if (allowed.kind !== 'answer') return;
    expect(allowed.status).toBe(200);
    expect(allowed.headers['x-answer']).toBe('a');
    expect(allowed.headers['set-cookie']).toEqual(['s=1', 't=2']);
    expect(allowed.body.length).toBe(0);

    const denied = await ask(cluster, { path: '/deny', bodyLimit: limit });
    expect(denied.kind === 'answer' && denied.status).toBe(403);
    if (denied.kind !== 'answer') return;
    expect(denied.body.length).toBe(5_000);
    expect(denied.body.subarray(0, 4096).every((b) => b === 97)).toBe(true);
    expect(denied.body.subarray(4096).every((b) => b === 98)).toBe(true);
    expect(activeOn(cluster)).toBe(0);

    // A body within the limit is kept whole.
    handle = (_req, res) => res.end('short');
    const whole = await ask(cluster, { bodyLimit: () => 1_000 });
    expect(whole.kind === 'answer' && whole.body.toString()).toBe('short');
  });

  it('a slow answer is a timeout within the bound; a refused connection an error with its code', async () => {
    handle = (_req, res) => {
      const t = setTimeout(() => res.end(), 5_000);
      res.on('close', () => clearTimeout(t));
    };
    const cluster = staticCluster('slow.example', [{ address: '127.0.0.1', port }]);
    const t0 = Date.now();
    expect(await ask(cluster, { timeoutMs: 200 })).toEqual({ kind: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(activeOn(cluster)).toBe(0);

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await ask(staticCluster('gone.example', [{ address: '127.0.0.1', port: closedPort }]));
    expect(refused.kind === 'error' && refused.code).toBe('ECONNREFUSED');
  });

  it('a cluster without endpoints, or with an HTTP/2 port, answers without sending', async () => {
    expect(await ask(staticCluster('empty.example', []))).toEqual({ kind: 'no_endpoint' });
    let asked = false;
    handle = (_req, res) => {
      asked = true;
      res.end();
    };
    const h2 = staticCluster('h2.example', [{ address: '127.0.0.1', port }], { protocol: 'http2' });
    expect(await ask(h2)).toEqual({ kind: 'not_http1' });
    expect(asked).toBe(false);
    expect(activeOn(h2)).toBe(0);
  });
});

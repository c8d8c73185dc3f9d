/** DP-9: WebSocket upgrades are proxied with no config; a route timeout also ends them. */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createServer, type Server } from 'node:http';
import { startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { forwardTo, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function wsEcho(opts: { refuse?: boolean } = {}): Promise<{
  port: number;
  upgrades: Record<string, string | string[] | undefined>[];
}> {
  const server: Server = createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server, ...(opts.refuse ? { verifyClient: () => false } : {}) });
  const upgrades: Record<string, string | string[] | undefined>[] = [];
  wss.on('connection', (sock, req) => {
    upgrades.push(req.headers);
    sock.on('message', (data, isBinary) =>
      sock.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => r());
      }),
  );
  const a = server.address();
  return { port: typeof a === 'object' && a ? a.port : 0, upgrades };
}

async function gw(port: number, timeoutMs: number | null = null): Promise<TestGateway> {
  const c = staticCluster('ws.default.svc.cluster.local', [{ address: '127.0.0.1', port }]);
  const g = await startGatewayWithSnapshot(
    snapshotOf({
      vhosts: {
        'ws.example.com': [route('ws', [], forwardTo([[c, 100]], { timeoutMs }))],
      },
    }),
  );
  cleanups.push(() => g.close());
  return g;
}

function open(url: string, host: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { host } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
  });
}

describe('DP-9 WebSocket', () => {
  it('echoes text and binary frames through the gateway', async () => {
    const up = await wsEcho();
    const g = await gw(up.port);
    const ws = await open(`ws://127.0.0.1:${g.port()}/chat`, 'ws.example.com');
    cleanups.push(async () => ws.terminate());
    const got: string[] = [];
    ws.on('message', (d, isBinary) => got.push(isBinary ? `bin:${(d as Buffer).length}` : d.toString()));
    ws.send('hello');
    ws.send(Buffer.alloc(100_000, 7));
    await until(() => got.length === 2, { what: 'two echoes' });
    expect(got).toEqual(['echo:hello', 'bin:100000']);
    expect(up.upgrades[0]!['x-forwarded-for']).toBe('127.0.0.1');
    expect(up.upgrades[0]!['host']).toBe('ws.example.com');
  });

  it('an upgrade for a host with no route gets 404', async () => {
    const up = await wsEcho();
    const g = await gw(up.port);
    await expect(open(`ws://127.0.0.1:${g.port()}/`, 'nope.example.com')).rejects.toThrow('unexpected 404');
  });

  it('an upstream refusing the upgrade has its answer passed through', async () => {
    const up = await wsEcho({ refuse: true });
    const g = await gw(up.port);
    await expect(open(`ws://127.0.0.1:${g.port()}/`, 'ws.example.com')).rejects.toThrow('unexpected 401');
  });

  it('a route timeout also ends an established WebSocket (Istio behaviour)', async () => {
    const up = await wsEcho();
    const g = await gw(up.port, 300);
    const ws = await open(`ws://127.0.0.1:${g.port()}/`, 'ws.example.com');
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    expect(await closed).toBe(1006);
  });
});

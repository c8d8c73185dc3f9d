/**
 * A request handed to an idle upstream connection that closes before the request is written goes
 * to another connection as if it had just come (pools.ts resend), and is sent there as that
 * connection's state says: a connection's last request (maxRequestsPerConnection) says
 * `connection: close`, any other keeps the connection. The gateway runs in this process, so the
 * client's request and the upstream's close can be made to arrive in one poll of the event loop,
 * the request first: the gateway hands the request to the idle connection, then reads its close
 * before the request goes out.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startGatewayWithSnapshot } from '../support/gateway.ts';
import { forwardTo, route, snapshotOf, staticCluster } from '../support/snapshot-builder.ts';
import { until } from '../support/until.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Head {
  readonly connection: number;
  readonly path: string;
  readonly connectionHeader: string;
}

describe('a request resent after its idle connection closed at hand-off', () => {
  it('goes out on a new connection without the first connection’s connection: close', async () => {
    const heads: Head[] = [];
    const sockets: Socket[] = [];
    const server: Server = createServer((socket) => {
      const index = sockets.push(socket);
      socket.on('error', () => undefined);
      let pending = '';
      socket.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          const head = pending.slice(0, end);
          pending = pending.slice(end + 4);
          const header = /\r\nconnection: *([^\r]*)/i.exec(head)?.[1] ?? '';
          heads.push({
            connection: index,
            path: head.split(' ')[1]!,
            connectionHeader: header.toLowerCase(),
          });
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    );
    const port = (server.address() as { port: number }).port;
    // Two requests a connection: the second request given to the first connection is its last.
    const c = staticCluster('raw.default.svc.cluster.local', [{ address: '127.0.0.1', port }], {
      maxRequestsPerConnection: 2,
    });
    const g = await startGatewayWithSnapshot(
      snapshotOf({ vhosts: { '*': [route('all', [], forwardTo([[c, 100]]))] } }),
    );
    cleanups.push(() => g.close());

    const client = connect(g.port(), '127.0.0.1');
    cleanups.push(() => void client.destroy());
    let received = '';
    client.on('data', (b: Buffer) => (received += b.toString('latin1')));
    const answers = (): number => received.split('HTTP/1.1 200').length - 1;
    client.write('GET /one HTTP/1.1\r\nhost: raw.test\r\n\r\n');
    await until(() => answers() === 1, { what: 'the first answer' });
    expect(heads).toEqual([{ connection: 1, path: '/one', connectionHeader: 'keep-alive' }]);

    // In one turn: the request reaches the gateway, then the upstream's close of the idle
    // connection; the gateway reads both in its next poll, in that order.
    client.write('GET /two HTTP/1.1\r\nhost: raw.test\r\n\r\n');
    sockets[0]!.destroy();

    await until(() => answers() === 2, { what: 'the second answer' });
    // Resent: the first connection never saw /two, the second one did, and not as its last
    // request (it has carried one of its two).
    expect(heads).toEqual([
      { connection: 1, path: '/one', connectionHeader: 'keep-alive' },
      { connection: 2, path: '/two', connectionHeader: 'keep-alive' },
    ]);
    expect(sockets[1]!.destroyed).toBe(false);
  });
});

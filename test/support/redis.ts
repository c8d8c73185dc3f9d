/**
 * A real redis-server on a free loopback port (Debian package `redis-server`), one per test, with
 * an ioredis client connected to it. Fails loudly when it is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './pebble.ts';
import { until } from './until.ts';

export interface RedisServer {
  readonly port: number;
  /** redis://[:password@]127.0.0.1:<port> */
  readonly url: string;
  /** A client of the test's own (ready). */
  readonly client: Redis;
  close(): Promise<void>;
}

/**
 * `password` turns on AUTH (`--requirepass`); the URL and the client carry it. `port`: a port a
 * server of the test had before (a restart), else a free one.
 */
export async function startRedisServer(
  opts: { password?: string; port?: number } = {},
): Promise<RedisServer> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error !== undefined) {
    throw new Error(
      'redis-server is not installed; install it with: apt-get update && apt-get install -y redis-server',
    );
  }
  const port = opts.port ?? (await freePort());
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...(opts.password !== undefined ? ['--requirepass', opts.password] : []),
    ],
    { stdio: 'ignore' },
  );
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('close', () => resolve());
      child.kill('SIGTERM');
    });
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
    ...(opts.password !== undefined ? { password: opts.password } : {}),
  });
  client.on('error', () => undefined); // refused until the server is up; until() below waits for it
  const close = async (): Promise<void> => {
    await client.quit().catch(() => undefined);
    client.disconnect();
    await stop();
  };
  try {
    await until(async () => (await client.ping().catch(() => null)) === 'PONG', {
      timeoutMs: 5000,
      what: 'redis-server ping',
    });
  } catch (err) {
    await close();
    throw err;
  }
  const auth = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}@` : '';
  return { port, url: `redis://${auth}127.0.0.1:${port}`, client, close };
}

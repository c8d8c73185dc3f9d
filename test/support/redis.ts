/**
 * A real redis-server on a free loopback port (Debian package `redis-server`), one per test, with
 * an ioredis client connected to it. Fails loudly when it is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './pebble.ts';
import { until } from './until.ts';

/** PEM files of a TLS-only server (`--port 0 --tls-port N`); clients need no certificate. */
export interface RedisServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export interface RedisServer {
  /** The plaintext port, or the TLS port of a TLS-only server. */
  readonly port: number;
  /** The redis-server process (SIGSTOP/SIGCONT it to hang a server that stays connected). */
  readonly process: ChildProcess;
  /** redis://[:password@]127.0.0.1:<port>, or rediss://… for a TLS server */
  readonly url: string;
  /** A client of the test's own (ready). */
  readonly client: Redis;
  close(): Promise<void>;
}

/**
 * `password` turns on AUTH (`--requirepass`); the URL and the client carry it. `port`: a port a
 * server of the test had before (a restart), else a free one. `conf`: a config file read first
 * (a Sentinel's); `args`: more options (`--replicaof`, cluster mode, `--sentinel`). `tls`: TLS
 * only, no plaintext port; the test's own client trusts the CA without checking the name.
 */
export async function startRedisServer(
  opts: {
    password?: string;
    port?: number;
    conf?: string;
    args?: readonly string[];
    tls?: RedisServerTls;
  } = {},
): Promise<RedisServer> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error !== undefined) {
    throw new Error(
      'redis-server is not installed; install it with: apt-get update && apt-get install -y redis-server',
    );
  }
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const tls = opts.tls;
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          tls.certFile,
          '--tls-key-file',
          tls.keyFile,
          '--tls-ca-cert-file',
          tls.caFile,
          '--tls-auth-clients',
          'no',
        ];
  const child: ChildProcess = spawn(
    'redis-server',
    [
      ...(opts.conf !== undefined ? [opts.conf] : []),
      ...listen,
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      // A replica writes the master's data to disk whatever --save says: never into the repository.
      '--dir',
      dir,
      ...(opts.password !== undefined ? ['--requirepass', opts.password] : []),
      ...(opts.args ?? []),
    ],
    { stdio: 'ignore' },
  );
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('close', () => resolve());
      // A stopped (SIGSTOP) server would never act on SIGTERM.
      child.kill('SIGKILL');
    });
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...(tls !== undefined
      ? { tls: { ca: readFileSync(tls.caFile, 'utf8'), checkServerIdentity: () => undefined } }
      : {}),
  });
  client.on('error', () => undefined); // refused until the server is up; until() below waits for it
  const close = async (): Promise<void> => {
    await stop();
    client.disconnect();
    rmSync(dir, { recursive: true, force: true });
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
  const scheme = tls === undefined ? 'redis' : 'rediss';
  return { port, process: child, url: `${scheme}://${auth}127.0.0.1:${port}`, client, close };
}

import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { loadIoredis } from './load-ioredis.ts';
import { redactRedisUrl } from './redis-url.ts';

/**
 * Which Redis a MeshConfig names (`redis`): one server (`url`), a master found through Sentinel,
 * or a Redis Cluster, and where its password comes from. Plain data (the config model and the
 * snapshot carry it); the password itself is read only when a connection is made, so it is never
 * in a snapshot, a dump or a log.
 */
export interface RedisTarget {
  /** One server: `redis://[user:password@]host[:port][/db]` or `rediss://…`. */
  readonly url?: string;
  readonly sentinel?: {
    /** The master's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
    readonly masterName: string;
    /** Sentinels, `host:port`; one that answers is enough. */
    readonly nodes: readonly string[];
  };
  readonly cluster?: {
    /** Cluster nodes, `host:port`; one that answers is enough, the rest are discovered. */
    readonly nodes: readonly string[];
  };
  /** ACL user (Redis 6+); a user name is not a secret. */
  readonly username?: string;
  /** A file holding the password (a mounted Secret); trailing newlines are ignored. */
  readonly passwordFile?: string;
  /** An environment variable holding the password. */
  readonly passwordEnv?: string;
  /**
   * TLS for Sentinel (the Sentinels and the master) and Cluster (every node); with `url`, only
   * beside `rediss://`, whose scheme alone turns TLS on.
   */
  readonly tls?: RedisTls;
}

/** How TLS connections are verified; names as in DestinationRule `tls`. No key material here. */
export interface RedisTls {
  /** A file of PEM CA certificates (a mounted Secret) that replaces Node's trusted roots. */
  readonly caCertificates?: string;
  /** The name the certificate must carry, also sent as SNI; default each node's host. */
  readonly serverName?: string;
  /** Accept any certificate (a test or a migration, never production). */
  readonly insecureSkipVerify?: boolean;
}

/** What is wrong with `node` as `host:port` (`[v6]:port`); null when it is fine. */
export function redisNodeProblem(node: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/@]+):(\d{1,5})$/.exec(node);
  if (m === null) return 'must be host:port ([address]:port for IPv6)';
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? null : 'the port must be 1-65535';
}

function hostPort(node: string): { host: string; port: number } {
  const colon = node.lastIndexOf(':');
  const host = node.slice(0, colon);
  return {
    host: host.startsWith('[') ? host.slice(1, -1) : host,
    port: Number(node.slice(colon + 1)),
  };
}

/** The target for logs: the URL redacted, or the mode and its nodes; never a password. */
export function describeRedisTarget(t: RedisTarget): string {
  const tls = t.tls !== undefined ? ' (tls)' : '';
  if (t.sentinel !== undefined)
    return `sentinel ${t.sentinel.masterName}@${t.sentinel.nodes.join(',')}${tls}`;
  if (t.cluster !== undefined) return `cluster ${t.cluster.nodes.join(',')}${tls}`;
  return redactRedisUrl(t.url ?? '');
}

/** The same connection whatever the order of its fields: a store is replaced only when this changes. */
export function redisTargetKey(t: RedisTarget): string {
  return JSON.stringify([
    t.url ?? null,
    t.sentinel?.masterName ?? null,
    t.sentinel?.nodes ?? null,
    t.cluster?.nodes ?? null,
    t.username ?? null,
    t.passwordFile ?? null,
    t.passwordEnv ?? null,
    t.tls === undefined
      ? null
      : [t.tls.caCertificates ?? null, t.tls.serverName ?? null, t.tls.insecureSkipVerify ?? false],
  ]);
}

export class RedisSecretError extends Error {}

/** What a connection needs besides its target, read when it is made; never logged or dumped. */
export interface RedisCredentials {
  readonly password?: string;
  /** The PEM text of `tls.caCertificates`. */
  readonly caPem?: string;
}

/**
 * The password and CA certificates the target names. The error names the file or variable that
 * cannot be read, never what it holds.
 */
export function readRedisCredentials(t: RedisTarget, env: NodeJS.ProcessEnv = process.env): RedisCredentials {
  const password = readRedisPassword(t, env);
  const caFile = t.tls?.caCertificates;
  return {
    ...(password !== undefined ? { password } : {}),
    ...(caFile !== undefined ? { caPem: readRedisCa(caFile) } : {}),
  };
}

function readSecretFile(field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new RedisSecretError(`redis ${field} ${file}: ${code}`);
  }
}

function readRedisCa(file: string): string {
  const pem = readSecretFile('tls.caCertificates', file);
  // Node would otherwise trust nothing and every handshake would fail with a vaguer error.
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new RedisSecretError(`redis tls.caCertificates ${file} holds no PEM certificate`);
  return pem;
}

/**
 * The password `passwordFile` or `passwordEnv` names, undefined when neither is set. The error
 * names the file or variable, never what it holds.
 */
export function readRedisPassword(t: RedisTarget, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (t.passwordFile !== undefined) {
    const password = readSecretFile('passwordFile', t.passwordFile).replace(/[\r\n]+$/, '');
    if (password === '') throw new RedisSecretError(`redis passwordFile ${t.passwordFile} is empty`);
    return password;
  }
  if (t.passwordEnv !== undefined) {
    const password = env[t.passwordEnv];
    if (password === undefined || password === '')
      throw new RedisSecretError(`redis passwordEnv ${t.passwordEnv} is not set`);
    return password;
  }
  return undefined;
}

/** How a caller wants its client to behave; the connection options follow from the target. */
export interface RedisTuning {
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly lazyConnect?: boolean;
  /** false: a command fails at once while the connection is not ready instead of queueing. */
  readonly enableOfflineQueue?: boolean;
  readonly maxRetriesPerRequest: number;
  readonly autoResendUnfulfilledCommands?: boolean;
  /** Back-off between reconnection attempts (every mode). */
  readonly retryDelayMs: (attempt: number) => number;
}

export type RedisClient = Redis | Cluster;

/** Node's TLS options for `tls`, or undefined for plaintext. */
function tlsOptions(tls: RedisTls | undefined, caPem: string | undefined): ConnectionOptions | undefined {
  if (tls === undefined) return undefined;
  return {
    ...(caPem !== undefined ? { ca: caPem } : {}),
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    ...(tls.insecureSkipVerify === true ? { rejectUnauthorized: false } : {}),
  };
}

/**
 * An ioredis client for `target`: `Redis` for a URL, `Redis` with `sentinels` (ioredis asks the
 * Sentinels for the master, and again after a failover), or `Cluster`. `credentials` come from
 * readRedisCredentials; a password in the URL stays where it is.
 */
export function createRedisClient(
  target: RedisTarget,
  credentials: RedisCredentials,
  tuning: RedisTuning,
): RedisClient {
  const { Redis: RedisClass, Cluster: ClusterClass } = loadIoredis(); // about 27 MiB: on the first connection, not at start
  const { password, caPem } = credentials;
  const tls = tlsOptions(target.tls, caPem);
  const node: RedisOptions = {
    connectTimeout: tuning.connectTimeout,
    commandTimeout: tuning.commandTimeout,
    maxRetriesPerRequest: tuning.maxRetriesPerRequest,
    ...(tuning.autoResendUnfulfilledCommands !== undefined
      ? { autoResendUnfulfilledCommands: tuning.autoResendUnfulfilledCommands }
      : {}),
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(password !== undefined ? { password } : {}),
    // With a URL, rediss:// alone would mean TLS with Node's defaults; these refine it.
    ...(tls !== undefined ? { tls } : {}),
  };
  const offline = tuning.enableOfflineQueue ?? true;
  const lazy = tuning.lazyConnect ?? false;
  if (target.cluster !== undefined) {
    return new ClusterClass(target.cluster.nodes.map(hostPort), {
      lazyConnect: lazy,
      enableOfflineQueue: offline,
      redisOptions: node,
      clusterRetryStrategy: (times) => tuning.retryDelayMs(times),
      // A moved slot or a failed-over master is retried after this long, within the command's
      // own timeout (ioredis times the command from its first send, across redirections).
      retryDelayOnFailover: 20,
      retryDelayOnClusterDown: 20,
      retryDelayOnTryAgain: 20,
      slotsRefreshTimeout: Math.max(1000, tuning.connectTimeout),
      // ioredis resolves seed hostnames to addresses before connecting; over TLS that would
      // verify the certificate against the address instead of the name it was issued for.
      ...(tls !== undefined ? { dnsLookup: (host, done) => done(null, host) } : {}),
    });
  }
  const retryStrategy = (times: number): number => tuning.retryDelayMs(times);
  if (target.sentinel !== undefined) {
    return new RedisClass({
      ...node,
      lazyConnect: lazy,
      enableOfflineQueue: offline,
      sentinels: target.sentinel.nodes.map(hostPort),
      name: target.sentinel.masterName,
      role: 'master',
      retryStrategy,
      sentinelRetryStrategy: retryStrategy,
      sentinelCommandTimeout: Math.max(1000, tuning.connectTimeout),
      // One tls block covers the Sentinels and the master they name (`tls` above).
      ...(tls !== undefined ? { sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
      // Sentinel kills the demoted master's clients; a command that still reaches a replica
      // (READONLY) reconnects, which asks the Sentinels for the new master.
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
      failoverDetector: true,
    });
  }
  return new RedisClass(target.url ?? '', {
    ...node,
    lazyConnect: lazy,
    enableOfflineQueue: offline,
    retryStrategy,
  });
}

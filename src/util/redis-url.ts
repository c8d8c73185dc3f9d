import type { Cluster, Redis } from 'ioredis';

/**
 * The Redis URL a MeshConfig declares (`redis.url`): checked by the config schema, redacted
 * wherever it is shown (logs, /config_dump). Its password is a secret: no function here ever
 * returns it.
 */

/**
 * What is wrong with `url` as `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS),
 * the forms ioredis accepts; null when it is fine. The message never echoes the URL itself.
 */
export function redisUrlProblem(url: string): string | null {
  const shape = 'must be redis://[user:password@]host[:port][/db] or rediss://… (TLS)';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${shape}; it is not a URL`;
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    return `${shape}; got scheme ${JSON.stringify(parsed.protocol.slice(0, -1))}`;
  // ioredis reads the scheme case-sensitively: `REDISS://` would connect without TLS.
  if (!url.startsWith('redis://') && !url.startsWith('rediss://'))
    return `${shape}; write the scheme in lower case (an upper-case rediss:// would connect without TLS)`;
  if (parsed.hostname === '') return `${shape}; the host is missing`;
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d{1,5}$/.test(parsed.pathname))
    return `${shape}; the path must be a database number such as /0`;
  if (parsed.search !== '' || parsed.hash !== '')
    return `${shape}; query strings and fragments are not supported`;
  return null;
}

/** The URL with its password replaced by `***`, for logs and dumps; unparsable input is hidden whole. */
export function redactRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '***';
  }
  if (parsed.password !== '') parsed.password = '***';
  return parsed.href;
}

/** The URL carries a password (`redis://:secret@…`). */
export function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/** Closes an ioredis client without ever waiting long: QUIT for at most 1 s, then the socket. */
export async function closeRedisClient(
  client: Pick<Redis, 'status' | 'quit' | 'disconnect'> | Pick<Cluster, 'status' | 'quit' | 'disconnect'>,
): Promise<void> {
  // quit() on a client that never connected would connect first; on a dead server it would
  // wait for an answer that never comes.
  if (client.status === 'ready')
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, 1000).unref()),
    ]);
  client.disconnect();
}

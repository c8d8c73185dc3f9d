/** Request facts more than one output reads (access log, spans, header templates), read without building req.headers. */
import type { IncomingMessage } from 'node:http';

/** A request header by lowercase name from rawHeaders (repeats joined with ','). */
export function rawHeader(raw: readonly string[], name: string): string | null {
  let out: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && (n === name || n.toLowerCase() === name))
      out = out === null ? raw[i + 1]! : out + ',' + raw[i + 1]!;
  }
  return out;
}

/** The last value of `name` in a flat name/value list the gateway built (lowercase names). */
export function sentHeader(list: readonly string[] | undefined, name: string): string | null {
  if (list === undefined) return null;
  for (let i = list.length - 2; i >= 0; i -= 2) if (list[i] === name) return list[i + 1]!;
  return null;
}

/** A socket address without the IPv4-mapped IPv6 prefix (`::ffff:10.0.0.1` → `10.0.0.1`). */
export function unmapped(addr: string | undefined): string {
  if (addr === undefined) return '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

/** `host:port` as Envoy prints an address (`[v6]:port`); null for no address. */
export function withPort(addr: string, port: number | undefined): string | null {
  if (addr === '') return null;
  const host = addr.includes(':') ? '[' + addr + ']' : addr;
  return port === undefined ? host : host + ':' + port;
}

/** The connection's peer address ('' when the socket is gone). */
export function peerAddress(req: IncomingMessage): string {
  return unmapped(req.socket.remoteAddress);
}

/**
 * Envoy's trusted client address: the peer when no hops are trusted, else the Nth address from
 * the right of the incoming x-forwarded-for (the peer when the list is shorter), DP-1. This is
 * Envoy's downstream remote address once its connection manager has run.
 */
export function trustedClientAddress(xff: string | null, peer: string, trustedHops: number): string {
  if (trustedHops <= 0 || xff === null) return peer;
  const parts = xff.split(',');
  const i = parts.length - trustedHops;
  if (i < 0) return peer;
  const v = parts[i]!.trim();
  return v === '' ? peer : v;
}

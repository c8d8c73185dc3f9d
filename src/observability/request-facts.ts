/** Request facts more than one observability output reads, read without building req.headers. */
import type { FinishedRequest } from './finished-request.ts';

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

/** The x-request-id the upstream saw (the gateway may have generated it, DP-1), else the client's. */
export function requestIdOf(ctx: FinishedRequest): string | null {
  const sent = ctx.fwd?.headers;
  if (sent !== undefined) {
    for (let i = sent.length - 2; i >= 0; i -= 2) if (sent[i] === 'x-request-id') return sent[i + 1]!;
  }
  return rawHeader(ctx.req.rawHeaders, 'x-request-id');
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

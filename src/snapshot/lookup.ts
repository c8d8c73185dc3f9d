/**
 * The hot path's reads of a Snapshot: vhost by host, route by request. Only map lookups and
 * array scans over precompiled conditions; explain.ts walks the same structures.
 */
import type { RequestView, Route, RouteTable, TlsServer, VirtualHost } from './types.ts';

/**
 * GW-10/GW-11: exact host, then the longest wildcard suffix, then `*`. `host` is already
 * lowercased and without port. A wildcard's `*` covers at least one character (Envoy).
 */
export function findVirtualHost(table: RouteTable, host: string): VirtualHost | null {
  const exact = table.exact.get(host);
  if (exact !== undefined) return exact;
  const wildcards = table.wildcards;
  for (let i = 0; i < wildcards.length; i++) {
    const w = wildcards[i]!;
    if (host.length > w.suffix.length && host.endsWith(w.suffix)) return w.vhost;
  }
  return table.catchAll;
}

/** The first route whose conditions all hold (VS-4), or null (404 NR). */
export function findRoute(vhost: VirtualHost, req: RequestView): Route | null {
  const routes = vhost.routes;
  outer: for (let i = 0; i < routes.length; i++) {
    const route = routes[i]!;
    const conditions = route.conditions;
    for (let j = 0; j < conditions.length; j++) {
      if (!conditions[j]!.test(req)) continue outer;
    }
    return route;
  }
  return null;
}

const EMPTY_PARAMS: ReadonlyMap<string, string> = new Map();

function decodeComponent(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A header as Envoy sees it: pseudo-headers from the request line, repeats comma-joined (VS-9). */
export function headerValue(req: RequestView, name: string): string | undefined {
  switch (name) {
    case ':method':
      return req.method;
    case ':authority':
    case 'host':
      return req.authority;
    case ':path':
      return req.query === '' ? req.path : `${req.path}?${req.query}`;
    case ':scheme':
      return req.scheme;
  }
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

/**
 * VS-11: query parameters, parsed once per request on first use. `?key` has value ''; a repeated
 * key keeps its first value (Envoy's query parser does not overwrite).
 */
export function queryParamsOf(req: RequestView): ReadonlyMap<string, string> {
  const cached = req.queryParams;
  if (cached !== null) return cached;
  const q = req.query;
  if (q === '') {
    req.queryParams = EMPTY_PARAMS;
    return EMPTY_PARAMS;
  }
  const out = new Map<string, string>();
  let start = 0;
  while (start <= q.length) {
    let end = q.indexOf('&', start);
    if (end < 0) end = q.length;
    if (end > start) {
      const eq = q.indexOf('=', start);
      const hasValue = eq >= 0 && eq < end;
      const key = decodeComponent(q.slice(start, hasValue ? eq : end));
      if (!out.has(key)) out.set(key, hasValue ? decodeComponent(q.slice(eq + 1, end)) : '');
    }
    start = end + 1;
  }
  req.queryParams = out;
  return out;
}

/**
 * GW-14: the terminated server for a TLS SNI name: exact name, then the longest wildcard, then a
 * server with host `*` (which also takes clients sending no SNI, `sni` = ''). Null = abort the handshake.
 */
export function findTlsServer(servers: readonly TlsServer[], sni: string): TlsServer | null {
  const name = sni.toLowerCase();
  if (name !== '') {
    for (const s of servers) if (s.sniHosts.includes(name)) return s;
    let best: TlsServer | null = null;
    let bestLength = -1;
    for (const s of servers) {
      for (const h of s.sniHosts) {
        if (h.length < 2 || h.charCodeAt(0) !== 42) continue;
        const suffix = h.slice(1);
        if (name.length > suffix.length && name.endsWith(suffix) && suffix.length > bestLength) {
          best = s;
          bestLength = suffix.length;
        }
      }
    }
    if (best) return best;
  }
  for (const s of servers) if (s.sniHosts.includes('*')) return s;
  return null;
}

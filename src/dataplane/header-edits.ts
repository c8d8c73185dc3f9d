/**
 * Applies a filter's request header changes at once (jwt_authn outputs and token removal,
 * ext_authz headers), so later filters, route matching and the upstream all see them, as in
 * Envoy where filters edit the one header map. Both views change: rawHeaders (what forward copies
 * upstream) and Node's parsed `headers` object (what matchers and filters read).
 */
import type { IncomingMessage } from 'node:http';
import type { HeaderEdits } from './filters/filter.ts';

export function applyHeaderEdits(req: IncomingMessage, edits: HeaderEdits): void {
  const drop = new Set<string>(edits.remove);
  for (const [name] of edits.set) drop.add(name);
  // In place: both Node's HTTP/1 and HTTP/2 requests hand out the one array they hold, and a new
  // array (or redefining the property) would cost an allocation and a hidden-class change on every
  // request a token is stripped from.
  const raw = req.rawHeaders;
  let w = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (drop.has(n.toLowerCase())) continue;
    raw[w++] = n;
    raw[w++] = raw[i + 1]!;
  }
  raw.length = w;
  for (const [name, value] of edits.set) raw.push(name, value);
  const headers = req.headers as Record<string, string | string[] | undefined>;
  for (const name of drop) delete headers[name];
  for (const [name, value] of edits.set) headers[name] = value;
}

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
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (drop.has(n.toLowerCase())) continue;
    out.push(n, raw[i + 1]!);
  }
  for (const [name, value] of edits.set) out.push(name, value);
  Object.defineProperty(req, 'rawHeaders', { value: out, configurable: true, writable: true });
  const headers = req.headers as Record<string, string | string[] | undefined>;
  for (const name of drop) delete headers[name];
  for (const [name, value] of edits.set) headers[name] = value;
}

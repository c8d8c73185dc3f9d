/**
 * The header names a Connection header nominates, which an intermediary removes before it
 * forwards the message (RFC 9110 §7.6.1). Tokens are comma-separated, case-insensitive and may
 * carry whitespace; an empty one (`a,,b`, a trailing comma) names nothing. Repeated Connection
 * headers count as one list. `close` is a connection option, not a field (the Close field name is
 * reserved, RFC 9110 §18.4), and Keep-Alive and Upgrade are hop-by-hop headers every caller drops
 * anyway: none of the three is listed, so the usual values cost no allocation. Null when nothing
 * else is nominated.
 */
const NOT_NOMINATED: ReadonlySet<string> = new Set(['close', 'keep-alive', 'upgrade']);

export function connectionNominated(value: string | readonly string[] | null | undefined): string[] | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === 'string' ? value : value.join(',');
  if (text.length <= 10 && NOT_NOMINATED.has(text.toLowerCase())) return null;
  let names: string[] | null = null;
  for (const part of text.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '' || NOT_NOMINATED.has(token)) continue;
    if (names === null) names = [token];
    else if (!names.includes(token)) names.push(token);
  }
  return names;
}

/**
 * A JSON Web Key Set as text → its keys: a `{ "keys": [...] }` object, or one JWK on its own
 * (Istio's jwk.Parse takes both). Null when it is neither. The same reading for inline `jwks`
 * (compile) and fetched `jwksUri` documents (the data plane).
 */
export function parseJwks(text: string): Readonly<Record<string, unknown>>[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const o = parsed as Record<string, unknown>;
  if (typeof o['kty'] === 'string') return [o];
  const keys = o['keys'];
  if (!Array.isArray(keys)) return null;
  return keys.filter(
    (k): k is Record<string, unknown> => k !== null && typeof k === 'object' && !Array.isArray(k),
  );
}

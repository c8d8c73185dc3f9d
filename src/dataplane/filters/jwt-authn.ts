/**
 * jwt_authn as Istio configures Envoy's filter (RA-1..RA-7). Each provider extracts the tokens at
 * its locations and checks them (every token found must verify); one provider passes as Istio's
 * requirement `any(P1..Pn, all(any(Pi, allow_missing)))` spells it: a request with no token passes
 * unauthenticated, a token any provider accepts passes, anything else fails with the status
 * Envoy would report. CORS preflights are not checked (bypass_cors_preflight).
 *
 * Verified tokens are remembered per provider and key set (bounded), so a client that sends the
 * same token again costs a map lookup and the time checks, not a signature verification.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { JwtAuthnFilter, JwtProvider, RequestAuth } from '../../snapshot/types.ts';
import type { PreparedKeySet } from './jwt-verify.ts';
import { checkClaims, parseJwt, verifySignature, type JwtStatus, type ParsedJwt } from './jwt-verify.ts';
import type { JwksStore } from './jwks-store.ts';
import type { HeaderEdits } from './filter.ts';

/** What jwt_authn reads of a request. */
export interface JwtRequest {
  readonly method: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

export type JwtDecision =
  | {
      readonly kind: 'allow';
      /** null: no token anywhere (allowed unauthenticated), or a CORS preflight. */
      readonly auth: RequestAuth | null;
      readonly edits: HeaderEdits | null;
      /** For explain and debug logs; never contains a token or claim value. */
      readonly note: string;
    }
  | { readonly kind: 'deny'; readonly status: JwtStatus; readonly note: string };

interface Found {
  readonly token: string;
  /** Header the token came from (lowercase), null for a query parameter or cookie. */
  readonly header: string | null;
}

/** A run of base64url characters and dots; global so a search can start at `lastIndex`. */
const TOKEN_RUN = /[A-Za-z0-9_.-]+/g;

/**
 * Envoy's extractJWT: after the prefix, the first run of base64url characters and dots. A regex
 * search, not a loop over characters: a token is hundreds of them, on every request.
 */
function tokenAfter(value: string, from: number): string {
  TOKEN_RUN.lastIndex = from;
  const m = TOKEN_RUN.exec(value);
  return m === null ? '' : m[0];
}

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function queryParam(query: string, name: string): string | null {
  if (query === '') return null;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', start);
    if (eq >= 0 && eq < end && query.slice(start, eq) === name) {
      const raw = query.slice(eq + 1, end);
      try {
        return decodeURIComponent(raw.replaceAll('+', ' '));
      } catch {
        return raw;
      }
    }
    start = end + 1;
  }
  return null;
}

function cookie(headers: IncomingHttpHeaders, name: string): string | null {
  const all = headerString(headers, 'cookie');
  if (all === undefined) return null;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The tokens at a provider's locations (RA-2), in location order. */
export function extractTokens(req: JwtRequest, provider: JwtProvider): Found[] {
  const out: Found[] = [];
  const loc = provider.locations;
  for (const h of loc.headers) {
    const value = headerString(req.headers, h.name);
    if (value === undefined) continue;
    let token: string;
    if (h.prefix === '') token = tokenAfter(value, 0);
    else {
      const at = value.indexOf(h.prefix);
      if (at < 0) continue;
      token = tokenAfter(value, at + h.prefix.length);
    }
    if (token !== '') out.push({ token, header: h.name });
  }
  for (const p of loc.params) {
    const v = queryParam(req.query, p);
    if (v !== null && v !== '') out.push({ token: v, header: null });
  }
  for (const c of loc.cookies) {
    const v = cookie(req.headers, c);
    if (v !== null && v !== '') out.push({ token: v, header: null });
  }
  return out;
}

// ---------------------------------------------------------------- verification with a cache

const CACHE_PER_PROVIDER = 512;

interface CacheEntry {
  readonly keys: PreparedKeySet;
  readonly jwt: ParsedJwt;
}

const verified = new WeakMap<JwtProvider, Map<string, CacheEntry>>();

function remember(provider: JwtProvider, keys: PreparedKeySet, jwt: ParsedJwt): void {
  let m = verified.get(provider);
  if (m === undefined) {
    m = new Map();
    verified.set(provider, m);
  }
  // Oldest first out: Map iteration order is insertion order.
  if (m.size >= CACHE_PER_PROVIDER) m.delete(m.keys().next().value!);
  m.set(jwt.token, { keys, jwt });
}

type TokenResult =
  { readonly ok: true; readonly jwt: ParsedJwt } | { readonly ok: false; readonly status: JwtStatus };

function fail(status: JwtStatus): TokenResult {
  return { ok: false, status };
}

/** One token against one provider: the Envoy authenticator's checks in order. */
function verifyToken(
  token: string,
  provider: JwtProvider,
  store: JwksStore,
  nowMs: number,
): TokenResult | Promise<TokenResult> {
  const cached = verified.get(provider)?.get(token);
  if (cached !== undefined) {
    const keys = store.keysFor(provider);
    if (keys === cached.keys) {
      const status = checkClaims(cached.jwt, provider, nowMs);
      return status === null ? { ok: true, jwt: cached.jwt } : fail(status);
    }
  }
  const jwt = parseJwt(token);
  if (typeof jwt === 'string') return fail(jwt);
  const status = checkClaims(jwt, provider, nowMs);
  if (status !== null) return fail(status);
  const keys = store.keysFor(provider);
  if (keys instanceof Promise) return keys.then((k) => withKeys(jwt, provider, store, k));
  return withKeys(jwt, provider, store, keys);
}

async function withKeys(
  jwt: ParsedJwt,
  provider: JwtProvider,
  store: JwksStore,
  keys: PreparedKeySet | null,
): Promise<TokenResult> {
  // Never fetched: no key can match, as with istiod's placeholder key (RA-6).
  if (keys === null) return fail('JwksKidAlgMismatch');
  let status = await verifySignature(jwt, keys);
  if (status === 'JwksKidAlgMismatch') {
    // Rotated keys: fetch again (rate-limited) and try once more.
    const fresh = await store.refreshForUnknownKid(provider);
    if (fresh !== null) {
      keys = fresh;
      status = await verifySignature(jwt, keys);
    }
  }
  if (status !== null) return fail(status);
  remember(provider, keys, jwt);
  return { ok: true, jwt };
}

// ---------------------------------------------------------------- the filter

/** Envoy's bypass_cors_preflight: OPTIONS with non-empty Origin and Access-Control-Request-Method. */
function isCorsPreflight(req: JwtRequest): boolean {
  if (req.method !== 'OPTIONS') return false;
  const origin = headerString(req.headers, 'origin');
  const acrm = headerString(req.headers, 'access-control-request-method');
  return origin !== undefined && origin !== '' && acrm !== undefined && acrm !== '';
}

interface ProviderOutcome {
  readonly provider: JwtProvider;
  readonly found: readonly Found[];
  /** 'JwtMissed' when no token was found. */
  readonly status: JwtStatus | 'Ok';
  readonly jwt: ParsedJwt | null;
}

/** All of a provider's tokens must verify (Envoy: a bad token beside a good one fails). */
function checkProvider(
  req: JwtRequest,
  provider: JwtProvider,
  store: JwksStore,
  nowMs: number,
): ProviderOutcome | Promise<ProviderOutcome> {
  const found = extractTokens(req, provider);
  if (found.length === 0) return { provider, found, status: 'JwtMissed', jwt: null };
  const results = found.map((f) => verifyToken(f.token, provider, store, nowMs));
  const settle = (rs: readonly TokenResult[]): ProviderOutcome => {
    for (const r of rs) if (!r.ok) return { provider, found, status: r.status, jwt: null };
    return { provider, found, status: 'Ok', jwt: (rs[0] as { jwt: ParsedJwt }).jwt };
  };
  if (results.some((r) => r instanceof Promise)) return Promise.all(results).then(settle);
  return settle(results as TokenResult[]);
}

/**
 * Envoy's AnyVerifier over [P1..Pn, all(any(Pi, allow_missing))] (one provider: any(P1,
 * allow_missing)). `status` null with `ok` null: allowed without authentication.
 */
function combine(outcomes: readonly ProviderOutcome[]): {
  ok: ProviderOutcome | null;
  status: JwtStatus | null;
} {
  for (const o of outcomes) if (o.status === 'Ok') return { ok: o, status: null };
  const children = outcomes.map((o) => o.status as JwtStatus);
  const firstFound = outcomes.find((o) => o.status !== 'JwtMissed');
  // No token at any location: allow_missing passes (the inner all() too, with several providers).
  if (firstFound === undefined) return { ok: null, status: null };
  if (outcomes.length > 1) children.push(firstFound.status as JwtStatus);
  // Prefer errors other than "missing" and "unknown issuer"; prefer unknown issuer to missing.
  let final: JwtStatus = 'JwtMissed';
  for (const s of children)
    if ((s !== 'JwtMissed' && s !== 'JwtUnknownIssuer') || final === 'JwtMissed') final = s;
  return { ok: null, status: final };
}

function normaliseClaims(
  payload: Readonly<Record<string, unknown>>,
  split: readonly string[],
): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const name of split) {
    const v = payload[name];
    if (typeof v !== 'string' || !v.includes(' ')) continue;
    out ??= { ...payload };
    out[name] = v.split(' ').filter((s) => s !== '');
  }
  return out ?? (payload as Record<string, unknown>);
}

function claimText(payload: Readonly<Record<string, unknown>>, claim: string): string | null {
  let cur: unknown = payload;
  for (const part of claim.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return null;
    cur = (cur as Record<string, unknown>)[part];
  }
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'number' || typeof cur === 'boolean') return String(cur);
  return null;
}

function allowed(filter: JwtAuthnFilter, ok: ProviderOutcome | null, note: string): JwtDecision {
  const remove = [...filter.sanitizeHeaders];
  const set: [string, string][] = [];
  let auth: RequestAuth | null = null;
  if (ok !== null) {
    const p = ok.provider;
    const jwt = ok.jwt!;
    const azp = jwt.payload['azp'];
    auth = {
      principal: `${jwt.iss}/${jwt.sub}`,
      issuer: jwt.iss,
      subject: jwt.sub,
      audiences: jwt.audiences,
      presenter: typeof azp === 'string' ? azp : '',
      claims: normaliseClaims(jwt.payload, p.spaceDelimitedClaims),
    };
    // RA-7: the token is not forwarded unless asked (its header goes; query and cookie stay).
    if (!p.forwardOriginalToken) for (const f of ok.found) if (f.header !== null) remove.push(f.header);
    if (p.outputPayloadToHeader !== null) set.push([p.outputPayloadToHeader, jwt.payloadSegment]);
    for (const o of p.outputClaimToHeaders) {
      const v = claimText(jwt.payload, o.claim);
      if (v !== null) set.push([o.header, v]);
    }
  }
  const edits = remove.length > 0 || set.length > 0 ? { remove, set } : null;
  return { kind: 'allow', auth, edits, note };
}

function decide(filter: JwtAuthnFilter, outcomes: readonly ProviderOutcome[]): JwtDecision {
  const missing = outcomes.filter((o) => o.status === 'JwtMissed');
  for (const o of missing)
    if (o.provider.requireToken)
      return {
        kind: 'deny',
        status: 'JwtMissed',
        note: `no token for ${o.provider.source} (presence REQUIRED)`,
      };
  const { ok, status } = combine(outcomes);
  if (ok !== null)
    return allowed(filter, ok, `token of issuer ${ok.jwt!.iss} verified (${ok.provider.source})`);
  if (status === null) {
    const any = outcomes.some((o) => o.found.length > 0);
    return allowed(filter, null, any ? 'tokens allowed' : 'no token, allowed as unauthenticated');
  }
  return { kind: 'deny', status, note: status };
}

/**
 * Runs jwt_authn for one request. Synchronous when no key set has to be fetched and every token
 * was verified before (the common case); a promise otherwise.
 */
export function runJwtAuthn(
  req: JwtRequest,
  filter: JwtAuthnFilter,
  store: JwksStore,
  nowMs: number,
): JwtDecision | Promise<JwtDecision> {
  if (isCorsPreflight(req))
    return allowed(filter, null, 'CORS preflight, not checked (bypass_cors_preflight)');
  const providers = filter.providers;
  const outcomes: (ProviderOutcome | Promise<ProviderOutcome>)[] = new Array(providers.length);
  let pending = false;
  for (let i = 0; i < providers.length; i++) {
    const o = checkProvider(req, providers[i]!, store, nowMs);
    if (o instanceof Promise) pending = true;
    outcomes[i] = o;
  }
  if (pending) return Promise.all(outcomes).then((os) => decide(filter, os));
  return decide(filter, outcomes as ProviderOutcome[]);
}

/** Envoy's WWW-Authenticate for a jwt_authn failure: realm = scheme://host/path (≤256), RA-4. */
export function wwwAuthenticate(status: JwtStatus, scheme: string, authority: string, path: string): string {
  const uri = `${scheme}://${authority}${path.length > 256 ? path.slice(0, 256) : path}`;
  const value = `Bearer realm="${uri.replaceAll('"', '%22')}"`;
  return status === 'JwtMissed' ? value : value + ', error="invalid_token"';
}

/**
 * One JWT against one provider, checked in the order Envoy's jwt_authn checks it and failing
 * with the status (and message) Envoy's jwt_verify_lib gives (RA-3, RA-4): parse, issuer, time
 * (60 s skew), audience, then the signature with the JWKS key that matches `kid` and `alg`.
 * Signatures are verified by jose; nothing here does cryptography itself.
 */
import { compactVerify, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { JwtProvider } from '../../snapshot/types.ts';

/** jwt_verify_lib statuses sluice can produce, with their exact messages. */
export const JWT_STATUS = {
  JwtMissed: 'Jwt is missing',
  JwtNotYetValid: 'Jwt not yet valid',
  JwtExpired: 'Jwt is expired',
  JwtBadFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  JwtHeaderParseErrorBadBase64: 'Jwt header is an invalid Base64url encoded',
  JwtHeaderParseErrorBadJson: 'Jwt header is an invalid JSON',
  JwtHeaderBadAlg: 'Jwt header [alg] field is required and must be a string',
  JwtHeaderNotImplementedAlg: 'Jwt header [alg] is not supported',
  JwtHeaderBadKid: 'Jwt header [kid] field is not a string',
  JwtPayloadParseErrorBadBase64: 'Jwt payload is an invalid Base64url encoded',
  JwtPayloadParseErrorBadJson: 'Jwt payload is an invalid JSON',
  JwtPayloadParseErrorIssNotString: 'Jwt payload [iss] field is not a string',
  JwtPayloadParseErrorSubNotString: 'Jwt payload [sub] field is not a string',
  JwtPayloadParseErrorIatNotInteger: 'Jwt payload [iat] field is not an integer',
  JwtPayloadParseErrorNbfNotInteger: 'Jwt payload [nbf] field is not an integer',
  JwtPayloadParseErrorExpNotInteger: 'Jwt payload [exp] field is not an integer',
  JwtPayloadParseErrorAudNotString: 'Jwt payload [aud] field is not a string or string list',
  JwtSignatureParseErrorBadBase64: 'Jwt signature is an invalid Base64url encoded',
  JwtUnknownIssuer: 'Jwt issuer is not configured',
  JwtAudienceNotAllowed: 'Audiences in Jwt are not allowed',
  JwtVerificationFail: 'Jwt verification fails',
  JwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksFetchFail: 'Jwks remote fetch is failed',
} as const;

export type JwtStatus = keyof typeof JWT_STATUS;

/** Envoy's clock skew for exp/nbf (RA-5). */
export const CLOCK_SKEW_S = 60;

const SUPPORTED_ALGS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'HS256',
  'HS384',
  'HS512',
  'EdDSA',
]);

/** A token split and decoded, before any check that needs the provider. */
export interface ParsedJwt {
  readonly token: string;
  readonly alg: string;
  readonly kid: string | null;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The payload segment as sent (base64url): outputPayloadToHeader. */
  readonly payloadSegment: string;
  readonly iss: string;
  readonly sub: string;
  readonly audiences: readonly string[];
  readonly expS: number | null;
  readonly nbfS: number | null;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeSegment(s: string): string | null {
  if (!B64URL.test(s)) return null;
  return Buffer.from(s, 'base64url').toString('utf8');
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function intOrNull(v: unknown): number | null | 'bad' {
  if (v === undefined) return null;
  return typeof v === 'number' && Number.isInteger(v) ? v : 'bad';
}

/** jwt_verify_lib's Jwt::parseFromString. */
export function parseJwt(token: string): ParsedJwt | JwtStatus {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (first <= 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return 'JwtBadFormat';
  const headerText = decodeSegment(token.slice(0, first));
  if (headerText === null) return 'JwtHeaderParseErrorBadBase64';
  const header = parseJson(headerText);
  if (header === null) return 'JwtHeaderParseErrorBadJson';
  const alg = header['alg'];
  if (typeof alg !== 'string') return 'JwtHeaderBadAlg';
  if (!SUPPORTED_ALGS.has(alg)) return 'JwtHeaderNotImplementedAlg';
  const kid = header['kid'];
  if (kid !== undefined && typeof kid !== 'string') return 'JwtHeaderBadKid';
  const payloadSegment = token.slice(first + 1, second);
  const payloadText = decodeSegment(payloadSegment);
  if (payloadText === null) return 'JwtPayloadParseErrorBadBase64';
  const payload = parseJson(payloadText);
  if (payload === null) return 'JwtPayloadParseErrorBadJson';
  const iss = payload['iss'];
  if (iss !== undefined && typeof iss !== 'string') return 'JwtPayloadParseErrorIssNotString';
  const sub = payload['sub'];
  if (sub !== undefined && typeof sub !== 'string') return 'JwtPayloadParseErrorSubNotString';
  if (intOrNull(payload['iat']) === 'bad') return 'JwtPayloadParseErrorIatNotInteger';
  const nbf = intOrNull(payload['nbf']);
  if (nbf === 'bad') return 'JwtPayloadParseErrorNbfNotInteger';
  const exp = intOrNull(payload['exp']);
  if (exp === 'bad') return 'JwtPayloadParseErrorExpNotInteger';
  const aud = payload['aud'];
  let audiences: string[];
  if (aud === undefined) audiences = [];
  else if (typeof aud === 'string') audiences = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) audiences = aud as string[];
  else return 'JwtPayloadParseErrorAudNotString';
  const sig = token.slice(second + 1);
  if (sig === '' || !B64URL.test(sig)) return 'JwtSignatureParseErrorBadBase64';
  return {
    token,
    alg,
    kid: typeof kid === 'string' ? kid : null,
    payload,
    payloadSegment,
    iss: typeof iss === 'string' ? iss : '',
    sub: typeof sub === 'string' ? sub : '',
    audiences,
    expS: exp,
    nbfS: nbf,
  };
}

/** The checks that need no key: issuer, time, audience (Envoy's order). */
export function checkClaims(jwt: ParsedJwt, provider: JwtProvider, nowMs: number): JwtStatus | null {
  if (provider.issuer !== '' && jwt.iss !== provider.issuer) return 'JwtUnknownIssuer';
  const now = Math.floor(nowMs / 1000);
  if (jwt.nbfS !== null && now + CLOCK_SKEW_S < jwt.nbfS) return 'JwtNotYetValid';
  if (jwt.expS !== null && now > jwt.expS + CLOCK_SKEW_S) return 'JwtExpired';
  const want = provider.audiences;
  if (want.length > 0) {
    let ok = false;
    for (const a of jwt.audiences) if (want.includes(a)) ok = true;
    if (!ok) return 'JwtAudienceNotAllowed';
  }
  return null;
}

// ---------------------------------------------------------------- keys

/** One JWKS key, imported per algorithm on first use. */
export interface PreparedKey {
  readonly jwk: Readonly<JWK>;
  readonly kid: string | null;
  readonly kty: string;
  readonly alg: string | null;
  readonly crv: string | null;
  readonly imported: Map<string, Promise<CryptoKey | KeyObject | Uint8Array | null>>;
}

/** The keys of a JWKS, ready to match (keys of no usable type are dropped). */
export interface PreparedKeySet {
  readonly keys: readonly PreparedKey[];
}

export function prepareKeySet(keys: readonly Readonly<Record<string, unknown>>[]): PreparedKeySet {
  const out: PreparedKey[] = [];
  for (const k of keys) {
    const kty = k['kty'];
    if (typeof kty !== 'string') continue;
    out.push({
      jwk: k as JWK,
      kid: typeof k['kid'] === 'string' ? k['kid'] : null,
      kty,
      alg: typeof k['alg'] === 'string' ? k['alg'] : null,
      crv: typeof k['crv'] === 'string' ? k['crv'] : null,
      imported: new Map(),
    });
  }
  return { keys: out };
}

const EC_CURVE: Readonly<Record<string, string>> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/**
 * Envoy's key choice: a key whose `kid` differs from the token's is skipped (a key without `kid`
 * stays a candidate), as is one whose `alg` differs; the key type must fit the algorithm (RSA for
 * RS/PS, EC on the right curve for ES, `oct` for HS, OKP for EdDSA). So an HS256 token can never be
 * checked against an RSA public key (the "public key as HMAC secret" attack).
 */
function candidates(set: PreparedKeySet, jwt: ParsedJwt): PreparedKey[] {
  const out: PreparedKey[] = [];
  const family = jwt.alg.slice(0, 2);
  for (const k of set.keys) {
    if (jwt.kid !== null && k.kid !== null && k.kid !== jwt.kid) continue;
    if (k.alg !== null && k.alg !== jwt.alg) continue;
    if (family === 'RS' || family === 'PS') {
      if (k.kty !== 'RSA') continue;
    } else if (family === 'ES') {
      if (k.kty !== 'EC' || (k.crv !== null && k.crv !== EC_CURVE[jwt.alg])) continue;
    } else if (family === 'HS') {
      if (k.kty !== 'oct') continue;
    } else if (jwt.alg === 'EdDSA') {
      if (k.kty !== 'OKP') continue;
    } else continue;
    out.push(k);
  }
  return out;
}

function importFor(k: PreparedKey, alg: string): Promise<CryptoKey | KeyObject | Uint8Array | null> {
  let p = k.imported.get(alg);
  if (p === undefined) {
    p = importJWK(k.jwk as JWK, alg).catch(() => null);
    k.imported.set(alg, p);
  }
  return p;
}

/** The signature against the matching keys: ok, JwksKidAlgMismatch (no candidate) or JwtVerificationFail. */
export async function verifySignature(jwt: ParsedJwt, set: PreparedKeySet): Promise<JwtStatus | null> {
  const keys = candidates(set, jwt);
  if (keys.length === 0) return 'JwksKidAlgMismatch';
  for (const k of keys) {
    const key = await importFor(k, jwt.alg);
    if (key === null) continue;
    try {
      await compactVerify(jwt.token, key, { algorithms: [jwt.alg] });
      return null;
    } catch {
      // Try the next candidate: Envoy accepts a token any matching key verifies.
    }
  }
  return 'JwtVerificationFail';
}

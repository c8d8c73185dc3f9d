/**
 * Keys and tokens the tests make themselves (jose), and a real JWKS server on loopback whose
 * answer can be rotated, broken, slowed or stopped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  /** Signs tokens. */
  readonly privateKey: CryptoKey | KeyObject | Uint8Array;
  /** What a JWKS publishes (public part; the secret itself for `oct`). */
  readonly jwk: JWK;
}

export async function makeKey(
  alg: 'RS256' | 'ES256' | 'EdDSA' | 'PS256' | 'ES384',
  kid: string,
): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

export function makeHmacKey(kid: string, alg: 'HS256' | 'HS384' = 'HS256'): TestKey {
  const secret = randomBytes(32);
  return { kid, alg, privateKey: secret, jwk: { kty: 'oct', k: secret.toString('base64url'), kid, alg } };
}

export interface SignOptions {
  readonly iss?: string;
  readonly sub?: string;
  readonly aud?: string | string[];
  /** Seconds from now; negative = already expired. Default 3600. */
  readonly expiresIn?: number;
  readonly notBefore?: number;
  readonly claims?: Record<string, unknown>;
  /** Header fields to override (kid, alg, typ). */
  readonly header?: Record<string, unknown>;
}

export async function sign(key: TestKey, o: SignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...(o.claims ?? {}) })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...(o.header ?? {}) })
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expiresIn ?? 3600));
  if (o.iss !== undefined) jwt.setIssuer(o.iss);
  if (o.sub !== undefined) jwt.setSubject(o.sub);
  if (o.aud !== undefined) jwt.setAudience(o.aud);
  if (o.notBefore !== undefined) jwt.setNotBefore(now + o.notBefore);
  return jwt.sign(key.privateKey);
}

/** A token with any header and payload and a made-up signature (alg none, tampering …). */
export function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signature = 'c2ln',
): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

export function jwksOf(...keys: TestKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.jwk) });
}

export type JwksMode = 'ok' | 'error' | 'hang' | 'garbage';

export interface JwksServer {
  readonly url: string;
  /** Requests served so far. */
  readonly hits: () => number;
  setKeys(...keys: TestKey[]): void;
  setMode(mode: JwksMode): void;
  close(): Promise<void>;
}

export async function startJwksServer(...keys: TestKey[]): Promise<JwksServer> {
  let body = jwksOf(...keys);
  let mode: JwksMode = 'ok';
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits += 1;
    if (mode === 'hang') return; // never answers; the client's timeout ends it
    if (mode === 'error') {
      res.writeHead(503).end('unavailable');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(mode === 'garbage' ? '{"not":"a jwks"}' : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    setKeys: (...k) => {
      body = jwksOf(...k);
    },
    setMode: (m) => {
      mode = m;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

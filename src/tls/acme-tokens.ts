/**
 * ACME challenge answers, shared by the issuer (providers/acme.ts, which writes) and the data
 * plane (which reads on plaintext and TLS listeners). Kept in memory for the ordering process and,
 * when a SharedChallengeStore is given (Redis, or --certs-dir; providers/acme-lock.ts), published
 * there too: with several replicas behind one address the ACME server's validation request reaches
 * any of them, so the others look answers up in the store (lookupHttpToken, loadAlpnContext). The
 * synchronous httpToken/alpnContext see only this process's own challenges.
 *
 * HTTP-01 (RFC 8555 §8.3): GET /.well-known/acme-challenge/<token> on port 80 returns the key
 * authorization as text/plain.
 *
 * TLS-ALPN-01 (RFC 8737): a handshake on port 443 that offers only the ALPN protocol `acme-tls/1`
 * with SNI = the identifier is answered with a self-signed certificate for that name carrying the
 * critical acmeIdentifier extension (1.3.6.1.5.5.7.1.31) whose value is the SHA-256 of the key
 * authorization. Node runs a server's ALPNCallback before its SNICallback, both with `this` the
 * TLSSocket, so a listener can decide in ALPNCallback and serve the context in SNICallback; see
 * selectAcmeAlpn/resolveAcmeAlpnContext below.
 */
import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type forgeModule from 'node-forge';

export const ACME_CHALLENGE_PATH_PREFIX = '/.well-known/acme-challenge/';
export const ACME_TLS_ALPN_PROTOCOL = 'acme-tls/1';
/** id-pe-acmeIdentifier, RFC 8737 §6.1. */
export const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';

/**
 * Where challenge answers are published so every replica can answer (the ACME server's
 * validation request may reach any of them). Implementations: Redis and a --certs-dir directory
 * (providers/acme-lock.ts); without one, only the ordering process answers.
 */
export interface SharedChallengeStore {
  put(key: string, value: string, ttlMs: number): Promise<void>;
  get(key: string): Promise<string | null>;
  delete(key: string): Promise<void>;
}

export interface AcmeTokens {
  /** HTTP-01: remember the key authorization for a token (here and in the shared store) until deleted. */
  setHttpToken(token: string, keyAuthorization: string): Promise<void>;
  deleteHttpToken(token: string): Promise<void>;
  /**
   * The HTTP-01 answer for a request path from this process's own challenges, or null (the
   * request then routes as usual). Query strings are ignored, as the validator sends none.
   */
  answerHttpChallenge(path: string): string | null;
  /** This process's key authorization for a token, or null (control/reconcile.ts AcmeHooks.httpToken). */
  httpToken(token: string): string | null;
  /**
   * This process's answer, then the shared store's: what plaintext listeners should call for
   * tokens under ACME_CHALLENGE_PATH_PREFIX, so a replica that did not order still answers.
   */
  lookupHttpToken(token: string): Promise<string | null>;
  /** lookupHttpToken for a request path (null when the path is not a challenge path). */
  lookupHttpChallenge(path: string): Promise<string | null>;
  /** TLS-ALPN-01: build the challenge certificate for `host` and serve it until deleted. */
  setAlpnChallenge(host: string, keyAuthorization: string): Promise<void>;
  deleteAlpnChallenge(host: string): Promise<void>;
  /** This process's challenge context for a servername, or null. */
  alpnContext(servername: string): SecureContext | null;
  /** As alpnContext, then the shared store (building the certificate from the published key authorization). */
  loadAlpnContext(servername: string): Promise<SecureContext | null>;
  /** True when challenges may be pending elsewhere (a shared store is configured). */
  readonly shared: boolean;
  /** This process's pending challenges, for logs and tests. */
  size(): { http: number; alpn: number };
}

/** Challenges live minutes at most; the TTL only bounds what a crashed orderer leaves behind. */
const SHARED_TTL_MS = 10 * 60_000;

export function isAcmeChallengePath(path: string): boolean {
  return path.startsWith(ACME_CHALLENGE_PATH_PREFIX);
}

function tokenOf(path: string): string {
  const q = path.indexOf('?');
  return path.slice(ACME_CHALLENGE_PATH_PREFIX.length, q === -1 ? undefined : q);
}

export function createAcmeTokens(opts: { shared?: SharedChallengeStore } = {}): AcmeTokens {
  const shared = opts.shared;
  const http = new Map<string, string>();
  const alpn = new Map<string, SecureContext>();
  // One RSA key for every challenge certificate of this process: the certificates are thrown away
  // after validation and prove nothing by their key, and an RSA keygen per challenge costs ~100 ms.
  let keyPem: Promise<string> | null = null;

  function challengeKey(): Promise<string> {
    keyPem ??= new Promise<string>((resolve, reject) => {
      generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, priv) => {
        if (err) reject(err);
        else resolve(priv.export({ type: 'pkcs8', format: 'pem' }).toString());
      });
    });
    return keyPem;
  }

  async function alpnContextFor(host: string, keyAuthorization: string): Promise<SecureContext> {
    const key = await challengeKey();
    return createSecureContext({ key, cert: makeAlpnChallengeCert(host, keyAuthorization, key) });
  }

  async function lookupHttpToken(token: string): Promise<string | null> {
    const local = http.get(token);
    if (local !== undefined) return local;
    // Tokens are base64url (RFC 8555 §8.1); anything else is not worth a store round trip.
    if (shared === undefined || !/^[A-Za-z0-9_-]{1,200}$/.test(token)) return null;
    return shared.get(`http-01:${token}`);
  }

  return {
    shared: shared !== undefined,
    async setHttpToken(token, keyAuthorization) {
      http.set(token, keyAuthorization);
      await shared?.put(`http-01:${token}`, keyAuthorization, SHARED_TTL_MS);
    },
    async deleteHttpToken(token) {
      http.delete(token);
      await shared?.delete(`http-01:${token}`);
    },
    answerHttpChallenge(path) {
      if (http.size === 0 || !isAcmeChallengePath(path)) return null;
      return http.get(tokenOf(path)) ?? null;
    },
    httpToken(token) {
      if (http.size === 0) return null;
      return http.get(token) ?? null;
    },
    lookupHttpToken,
    lookupHttpChallenge(path) {
      return isAcmeChallengePath(path) ? lookupHttpToken(tokenOf(path)) : Promise.resolve(null);
    },
    async setAlpnChallenge(host, keyAuthorization) {
      const name = host.toLowerCase();
      alpn.set(name, await alpnContextFor(name, keyAuthorization));
      await shared?.put(`tls-alpn-01:${name}`, keyAuthorization, SHARED_TTL_MS);
    },
    async deleteAlpnChallenge(host) {
      const name = host.toLowerCase();
      alpn.delete(name);
      await shared?.delete(`tls-alpn-01:${name}`);
    },
    alpnContext(servername) {
      if (alpn.size === 0) return null;
      return alpn.get(servername.toLowerCase()) ?? null;
    },
    async loadAlpnContext(servername) {
      const name = servername.toLowerCase();
      const local = alpn.get(name);
      if (local !== undefined) return local;
      if (shared === undefined) return null;
      const keyAuthorization = await shared.get(`tls-alpn-01:${name}`);
      return keyAuthorization === null ? null : alpnContextFor(name, keyAuthorization);
    },
    size() {
      return { http: http.size, alpn: alpn.size };
    },
  };
}

/**
 * The RFC 8737 §3 certificate: self-signed, one dNSName SAN equal to the identifier, and the
 * critical acmeIdentifier extension whose extnValue is the DER OCTET STRING of
 * SHA-256(keyAuthorization). node-forge writes a string `value` verbatim as the extnValue contents.
 */
export function makeAlpnChallengeCert(
  host: string,
  keyAuthorization: string,
  keyPem: string,
  now: Date = new Date(),
): string {
  // node-forge is about 13 MiB resident: loaded for the first challenge, not with every listener.
  const forge = createRequire(import.meta.url)('node-forge') as typeof forgeModule;
  const privateKey = forge.pki.privateKeyFromPem(keyPem) as forgeModule.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + 7 * 86_400_000);
  const subject = [{ name: 'commonName', value: host }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const digest = createHash('sha256').update(keyAuthorization).digest('binary');
  const octets = forge.asn1
    .toDer(forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.OCTETSTRING, false, digest))
    .getBytes();
  cert.setExtensions([
    { name: 'subjectAltName', altNames: [{ type: 2, value: host }] },
    { id: ACME_IDENTIFIER_OID, critical: true, value: octets },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

const ACME_ALPN_CHOSEN: unique symbol = Symbol('sluice.acmeAlpn');
type MarkedSocket = TLSSocket & { [ACME_ALPN_CHOSEN]?: true };

/**
 * For a listener's ALPNCallback (Node calls it before SNICallback, `this` = the TLSSocket): true
 * when the client offers `acme-tls/1` and a challenge may be pending for its servername (here, or
 * anywhere when a shared store is configured: only ACME validators offer acme-tls/1, RFC 8737
 * §3). The socket is then marked, the callback must return ACME_TLS_ALPN_PROTOCOL, and
 * SNICallback must answer with resolveAcmeAlpnContext(...); after the handshake the connection
 * carries no requests: close it.
 */
export function selectAcmeAlpn(
  tokens: AcmeTokens,
  socket: TLSSocket,
  servername: string | undefined,
  protocols: readonly string[],
): boolean {
  if (!servername || !protocols.includes(ACME_TLS_ALPN_PROTOCOL)) return false;
  if (!tokens.shared && tokens.alpnContext(servername) === null) return false;
  (socket as MarkedSocket)[ACME_ALPN_CHOSEN] = true;
  return true;
}

/**
 * For a listener's SNICallback: when ALPNCallback chose acme-tls/1 on this socket, the challenge
 * context (null if none is pending: fail the handshake); undefined when the socket is not an ACME
 * one and the listener picks its certificate as usual.
 */
export function resolveAcmeAlpnContext(
  tokens: AcmeTokens,
  socket: TLSSocket,
  servername: string,
): Promise<SecureContext | null> | undefined {
  return isAcmeAlpnSocket(socket) ? tokens.loadAlpnContext(servername) : undefined;
}

/** True once ALPNCallback chose acme-tls/1 for this socket: the listener closes it after the handshake. */
export function isAcmeAlpnSocket(socket: TLSSocket): boolean {
  return (socket as MarkedSocket)[ACME_ALPN_CHOSEN] === true;
}

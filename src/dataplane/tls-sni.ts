/**
 * SNI → terminated server → cached secure context (GW-14). The callback runs once per handshake
 * and only does lookups: contexts are built at apply time (control/reconcile.ts) and cached by
 * content hash. The SNI the client sent is hung on the TLSSocket; requests re-resolve it against
 * the snapshot they pin, so a reload between handshake and request is seen (and 421 decided) there.
 *
 * Per-server client-certificate modes: Node's requestCert/rejectUnauthorized are per server, so the
 * callback sets the verify mode on this socket once the server is known (nginx does the same in
 * its servername callback); OpenSSL reads it when it sends the CertificateRequest.
 */
import type { SecureContext, TLSSocket } from 'node:tls';
import type { SnapshotSource, TlsServer, TlsSettings } from '../snapshot/types.ts';
import type { ClientHello } from '../tls/client-hello.ts';
import { findTlsServer } from '../snapshot/lookup.ts';

/** The SNI name the client sent ('' for none), set during the handshake. */
export const kSni = Symbol('sluice.sni');
/** The peeked ClientHello (listeners that peek: passthrough routes, RSA+ECDSA credentials). */
export const kHello = Symbol('sluice.clientHello');

export type HandshakeFailure =
  | 'unknown_sni'
  | 'no_sni'
  | 'no_certificate'
  | 'client_cert_required'
  | 'client_cert_invalid'
  /** The client CA's CRL lists the certificate (GW-16 caCrl, Secret `ca.crl`). */
  | 'client_cert_revoked'
  /** A CRL is configured but cannot vouch for the chain: expired, not yet valid, none from a CA. */
  | 'client_crl_unusable'
  | 'client_cert_mismatch'
  | 'protocol_version'
  | 'other';

export interface TlsHooks {
  /**
   * Cached context for settings; null when none could be built (the server refuses handshakes).
   * With an RSA and an ECDSA credential, `ecdsa` (from the peeked ClientHello) picks between them.
   */
  contextFor(settings: TlsSettings, ecdsa: boolean): SecureContext | null;
  /**
   * ACME TLS-ALPN-01: a context for `acme-tls/1` handshakes, or null; a promise when it must be
   * read from a shared store (another process ordered).
   */
  acmeAlpnContext: ((servername: string) => SecureContext | Promise<SecureContext | null> | null) | null;
  onHandshake(ok: boolean, reason: HandshakeFailure | null): void;
}

type SniSocket = TLSSocket & {
  [kSni]?: string;
  [kHello]?: ClientHello;
  _requestCert?: boolean;
  _rejectUnauthorized?: boolean;
  _handle?: { setVerifyMode?: (request: boolean, reject: boolean) => void } | null;
};

/**
 * The SNI name of a terminated connection ('' for none). The callback's record first; a resumed
 * session skips the callback, and then OpenSSL's own record of the name is used.
 */
export function sniOf(socket: TLSSocket): string {
  const s = socket as SniSocket;
  const recorded = s[kSni];
  if (recorded !== undefined) return recorded;
  const name = (socket as TLSSocket & { servername?: string | false | null }).servername;
  const sni = typeof name === 'string' ? name : '';
  s[kSni] = sni;
  return sni;
}

/** The terminated server that answers `sni` on `port` in the live snapshot, or null. */
export function tlsServerFor(source: SnapshotSource, port: number, sni: string): TlsServer | null {
  const l = source.get().listeners.get(port);
  if (l === undefined || l.tlsServers.length === 0) return null;
  return findTlsServer(l.tlsServers, sni);
}

const kAcme = Symbol('sluice.acmeAlpn');

/**
 * ALPN (DP-9): h2 when offered (and `h2` is on), else http/1.1; `acme-tls/1` is taken only when the
 * ACME hook has a challenge certificate, and marks the socket so the SNI callback answers with it.
 * OpenSSL runs this before the SNI callback.
 */
export function createAlpnCallback(
  h2: boolean,
  hooks: TlsHooks,
  source: SnapshotSource,
  port: number,
): (this: TLSSocket, info: { servername: string; protocols: string[] }) => string | undefined {
  return function alpnCallback(this: TLSSocket, info): string | undefined {
    const protocols = info.protocols;
    if (hooks.acmeAlpnContext !== null && protocols.includes('acme-tls/1')) {
      (this as TLSSocket & { [kAcme]?: boolean })[kAcme] = true;
      return 'acme-tls/1';
    }
    // A server terminated into tcp routes speaks whatever the client does: take its first choice.
    // Without SNI OpenSSL reports the name as undefined or false.
    const name = typeof info.servername === 'string' ? info.servername : '';
    if (tlsServerFor(source, port, name)?.tcpRoute != null) return protocols[0];
    if (h2 && protocols.includes('h2')) return 'h2';
    if (protocols.includes('http/1.1')) return 'http/1.1';
    // A client offering neither gets HTTP/1.1 without ALPN being confirmed: refuse, as Envoy does.
    return undefined;
  };
}

export function createSniCallback(
  source: SnapshotSource,
  port: number,
  hooks: TlsHooks,
): (this: SniSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void {
  return function sniCallback(this: SniSocket, servername, cb): void {
    // OpenSSL's SNI callback runs with the TLSSocket as `this` (the only way to reach it here).
    const socket: SniSocket = this; // eslint-disable-line @typescript-eslint/no-this-alias
    if (hooks.acmeAlpnContext !== null && (socket as { [kAcme]?: boolean })[kAcme] === true) {
      const acme = hooks.acmeAlpnContext(servername);
      const refuse = (): void => {
        hooks.onHandshake(false, 'unknown_sni');
        cb(new Error(`no ACME challenge for ${servername}`));
      };
      if (acme instanceof Promise) acme.then((ctx) => (ctx !== null ? cb(null, ctx) : refuse()), refuse);
      else if (acme !== null) cb(null, acme);
      else refuse();
      return;
    }
    socket[kSni] = servername;
    const server = tlsServerFor(source, port, servername);
    if (server === null) {
      hooks.onHandshake(false, 'unknown_sni');
      cb(new Error(`no server for SNI ${servername}`));
      return;
    }
    const settings = server.tls ?? null;
    // The hello was peeked on the raw socket the TLSSocket wraps.
    const hello = socket[kHello] ?? (socket as { _parent?: { [kHello]?: ClientHello } })._parent?.[kHello];
    const ctx = settings === null ? null : hooks.contextFor(settings, hello?.ecdsa ?? true);
    if (settings === null || ctx === null) {
      hooks.onHandshake(false, 'no_certificate');
      cb(new Error(`no usable certificate for SNI ${servername}`));
      return;
    }
    applyVerifyMode(socket, settings);
    cb(null, ctx);
  };
}

/** GW-13: MUTUAL requires and verifies a client certificate; OPTIONAL_MUTUAL verifies one if sent. */
export function applyVerifyMode(socket: SniSocket, settings: TlsSettings): void {
  if (settings.mode === 'SIMPLE') return;
  const mutual = settings.mode === 'MUTUAL';
  socket._requestCert = true;
  // OPTIONAL_MUTUAL: a sent certificate must still verify; checked in checkClientCertificate.
  socket._rejectUnauthorized = mutual;
  socket._handle?.setVerifyMode?.(true, mutual);
}

/**
 * x-forwarded-client-cert as Istio's gateways configure Envoy (SANITIZE_SET, DP-1): a client-sent
 * value is always removed; on a connection with a verified client certificate it is set to
 * `Hash=<sha256>;Subject="<RFC 2253>";URI=<uri SAN>...;DNS=<dns SAN>...`. The identity is computed
 * once per connection and hung on the socket (later policy reads it with `peerIdentityOf`).
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { TlsSettings } from '../snapshot/types.ts';
import { rfc2253 } from '../util/distinguished-name.ts';

export interface PeerIdentity {
  /** sha256 of the client certificate DER, hex. */
  readonly hash: string;
  readonly subject: string;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  /** The XFCC element Envoy would forward. */
  readonly xfcc: string;
}

const kIdentity = Symbol('sluice.peerIdentity');
type IdentitySocket = TLSSocket & { [kIdentity]?: PeerIdentity | null };

function identityOfCert(cert: X509Certificate): PeerIdentity {
  const hash = createHash('sha256').update(cert.raw).digest('hex');
  const subject = rfc2253(cert.subject);
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('URI:')) uris.push(part.slice(4));
    else if (part.startsWith('DNS:')) dnsNames.push(part.slice(4));
  }
  let xfcc = `Hash=${hash};Subject="${subject.replaceAll('"', '\\"')}"`;
  for (const u of uris) xfcc += `;URI=${u}`;
  for (const d of dnsNames) xfcc += `;DNS=${d}`;
  return { hash, subject, uris, dnsNames, xfcc };
}

/** The verified client identity of a terminated connection (MUTUAL/OPTIONAL_MUTUAL), or null. */
export function peerIdentityOf(socket: TLSSocket): PeerIdentity | null {
  const s = socket as IdentitySocket;
  const cached = s[kIdentity];
  if (cached !== undefined) return cached;
  let id: PeerIdentity | null = null;
  if (s.authorized) {
    const cert = s.getPeerX509Certificate();
    if (cert !== undefined) id = identityOfCert(cert);
  }
  s[kIdentity] = id;
  return id;
}

const NAME = 'x-forwarded-client-cert';

/**
 * Removes a client-sent XFCC and, with a verified client certificate, sets ours. Touches
 * rawHeaders (what forward copies upstream) only when there is something to change.
 */
export function sanitizeClientCertHeader(
  req: IncomingMessage,
  socket: TLSSocket | null,
  tls: TlsSettings | null,
): void {
  const id = socket !== null && tls !== null && tls.mode !== 'SIMPLE' ? peerIdentityOf(socket) : null;
  const raw = req.rawHeaders;
  let found = false;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 23 && n.toLowerCase() === NAME) {
      found = true;
      break;
    }
  }
  if (!found && id === null) return;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 23 && n.toLowerCase() === NAME) continue;
    out.push(n, raw[i + 1]!);
  }
  if (id !== null) out.push(NAME, id.xfcc);
  Object.defineProperty(req, 'rawHeaders', { value: out, configurable: true, writable: true });
}

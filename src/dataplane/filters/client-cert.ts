/**
 * ingress-nginx's auth-tls-* at request time (nginx.tmpl: ssl_verify_client, error_page 495 496,
 * and the ssl-client-* headers of every location). The handshake asked for a certificate and
 * verified any sent against the auth-tls-secret's CA (a server of mode OPTIONAL_MUTUAL); nginx
 * then answers 400 when `ssl_verify_client on` finds none, or sends the client to the error page.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ClientCertFilter } from '../../snapshot/types.ts';
import { applyHeaderEdits } from '../header-edits.ts';
import type { FilterContext, FilterReply, HeaderEdits } from './filter.ts';
import { rfc2253 } from '../../util/distinguished-name.ts';

const NO_CERTIFICATE = Buffer.from('400 No required SSL certificate was sent');

/**
 * A connection's ssl-client-* headers. They depend on its peer certificate alone, so they are
 * built on its first request and hung on the socket; every later request reuses them.
 */
interface ConnectionHeaders {
  readonly peer: X509Certificate | null;
  readonly edits: HeaderEdits;
  /** `edits` and ssl-client-cert (auth-tls-pass-certificate-to-upstream), built on first use. */
  withCert: HeaderEdits | null;
}

const kHeaders = Symbol('sluice.clientCertHeaders');
type HeadersSocket = Partial<TLSSocket> & { [kHeaders]?: ConnectionHeaders };

/** The headers a client may send itself: ours replace them, or they go. */
const REMOVE = ['ssl-client-subject-dn', 'ssl-client-issuer-dn', 'ssl-client-cert'] as const;

const NOT_VERIFIED: HeaderEdits = { remove: REMOVE, set: [['ssl-client-verify', 'NONE']] };

function headersOf(socket: HeadersSocket): ConnectionHeaders {
  const cached = socket[kHeaders];
  if (cached !== undefined) return cached;
  const peer = socket.getPeerX509Certificate?.();
  const verified = peer instanceof X509Certificate && socket.authorized === true;
  const h: ConnectionHeaders = verified
    ? {
        peer,
        edits: {
          remove: REMOVE,
          set: [
            ['ssl-client-verify', 'SUCCESS'],
            ['ssl-client-subject-dn', rfc2253(peer.subject)],
            ['ssl-client-issuer-dn', rfc2253(peer.issuer)],
          ],
        },
        withCert: null,
      }
    : { peer: null, edits: NOT_VERIFIED, withCert: NOT_VERIFIED };
  socket[kHeaders] = h;
  return h;
}

function withCertOf(h: ConnectionHeaders): HeaderEdits {
  return (h.withCert ??= {
    remove: REMOVE,
    set: [...h.edits.set, ['ssl-client-cert', encodeURIComponent(h.peer!.toString())]],
  });
}

export function runClientCert(ctx: FilterContext, f: ClientCertFilter): FilterReply | null {
  const socket = ctx.req.socket as HeadersSocket;
  // Plain HTTP: nginx's $ssl_client_* are empty, so nothing is checked or sent.
  if (socket.encrypted !== true) return null;
  const h = headersOf(socket);
  if (h.peer === null && f.required) {
    if (f.errorPage !== null)
      return {
        status: 302,
        body: null,
        headers: ['location', f.errorPage],
        flag: '-',
        details: 'ingress_client_cert_required',
      };
    return {
      status: 400,
      body: NO_CERTIFICATE,
      headers: null,
      flag: '-',
      details: 'ingress_client_cert_required',
    };
  }
  applyHeaderEdits(ctx.req, f.passCertificate ? withCertOf(h) : h.edits);
  return null;
}

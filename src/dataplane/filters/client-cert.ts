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
import type { FilterContext, FilterReply } from './filter.ts';

const NO_CERTIFICATE = Buffer.from('400 No required SSL certificate was sent');

/** nginx's $ssl_client_s_dn / $ssl_client_i_dn: RFC 2253, the most specific RDN first. */
function rfc2253(dn: string): string {
  return dn.split('\n').reverse().join(',');
}

export function runClientCert(ctx: FilterContext, f: ClientCertFilter): FilterReply | null {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  // Plain HTTP: nginx's $ssl_client_* are empty, so nothing is checked or sent.
  if (socket.encrypted !== true) return null;
  const peer = socket.getPeerX509Certificate?.();
  const verified = peer instanceof X509Certificate && socket.authorized === true;
  if (!verified && f.required) {
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
  const set: [string, string][] = [['ssl-client-verify', verified ? 'SUCCESS' : 'NONE']];
  if (verified) {
    set.push(
      ['ssl-client-subject-dn', rfc2253(peer.subject)],
      ['ssl-client-issuer-dn', rfc2253(peer.issuer)],
    );
    if (f.passCertificate) set.push(['ssl-client-cert', encodeURIComponent(peer.toString())]);
  }
  applyHeaderEdits(ctx.req, {
    remove: ['ssl-client-subject-dn', 'ssl-client-issuer-dn', 'ssl-client-cert'],
    set,
  });
  return null;
}

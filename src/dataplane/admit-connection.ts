/**
 * AuthorizationPolicy for TCP connections (plain TCP servers, TLS passthrough, TLS terminated
 * into a tcp route), decided once when the connection arrives, as Envoy's network RBAC filter
 * does: a denied connection is closed before a byte reaches an upstream (AP-2). The rules were
 * compiled with AP-8's TCP reading, so only connection attributes are read here.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PolicyRequest, RbacFilter, TlsServer } from '../snapshot/types.ts';
import { decideRbac, firstMatch } from '../snapshot/policy.ts';
import { unmapped } from '../observability/request-facts.ts';
import type { FilterRuntime } from './filters/filter.ts';
import { peerIdentityOf } from './xfcc.ts';

const NO_HEADERS = Object.freeze({});

function connectionRequest(
  socket: Socket,
  port: number,
  sni: string,
  principal: string | null,
): PolicyRequest {
  const peer = unmapped(socket.remoteAddress);
  return {
    method: '',
    scheme: 'http',
    authority: '',
    host: '',
    path: '',
    query: '',
    headers: NO_HEADERS,
    port,
    queryParams: null,
    claims: null,
    peerIp: peer,
    remoteIp: peer,
    localIp: unmapped(socket.localAddress),
    sni,
    peerPrincipal: principal,
    auth: null,
  };
}

/** The verified client principal of a terminated TLS connection under MUTUAL/OPTIONAL_MUTUAL. */
export function principalOf(socket: TLSSocket, server: TlsServer | null): string | null {
  const mode = server?.tls?.mode;
  if (mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return null;
  const id = peerIdentityOf(socket);
  return id === null ? null : (id.uris[0] ?? id.dnsNames[0] ?? id.subject);
}

/** Whether the connection may go on; counts and logs as the HTTP filters do. */
export function admitConnection(
  filters: readonly RbacFilter[] | undefined,
  socket: Socket,
  port: number,
  sni: string,
  principal: string | null,
  rt: FilterRuntime,
): boolean {
  if (filters === undefined) return true;
  const req = connectionRequest(socket, port, sni, principal);
  const obs = rt.observer;
  for (const f of filters) {
    if (f.shadow.length > 0 && obs !== null) {
      const m = firstMatch(f.shadow, req);
      const wouldDeny = f.action === 'DENY' ? m !== null : f.action === 'ALLOW' ? m === null : false;
      obs.decision(
        '-',
        'rbac',
        f.action,
        m === null ? '-' : `${m.policy.namespace}/${m.policy.name}`,
        m?.rule ?? -1,
        wouldDeny ? 'dry_run_deny' : 'dry_run_allow',
        'tcp',
      );
    }
    if (f.policies.length === 0) continue;
    const v = decideRbac(f, req);
    const name = v.match === null ? '-' : `${v.match.policy.namespace}/${v.match.policy.name}`;
    if (v.kind === 'audit') {
      if (v.match !== null) obs?.decision('-', 'rbac', 'AUDIT', name, v.match.rule, 'audit', 'tcp');
      continue;
    }
    if (v.kind === 'deny') {
      obs?.decision('-', 'rbac', f.action, name, v.match?.rule ?? -1, 'deny', 'tcp');
      return false;
    }
  }
  return true;
}

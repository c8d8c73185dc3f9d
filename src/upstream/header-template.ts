/**
 * VS-21 `%VAR%` header values rendered per request. A template is turned into getters the first
 * time it is used and cached on the (immutable) template object, so a request pays one WeakMap
 * lookup and the getters; values without operators never come here.
 */
import type { TLSSocket } from 'node:tls';
import { hostname } from 'node:os';
import type { HeaderTemplate, HeaderValue } from '../snapshot/types.ts';
import type { TemplatePart } from '../util/command-operators.ts';
import { rawHeader, unmapped, withPort } from '../observability/request-facts.ts';
import { peerAddress, trustedClientAddress, type ForwardContext } from './forward.ts';

type Getter = (ctx: ForwardContext) => string | null;

const HOSTNAME = hostname();
const compiled = new WeakMap<HeaderTemplate, readonly (string | Getter)[]>();
const UNSAFE_IN_VALUE = /[\r\n\0]/;
const UNSAFE_IN_VALUE_ALL = /[\r\n\0]/g;

function tlsOf(ctx: ForwardContext): TLSSocket | null {
  const s = ctx.req.socket as Partial<TLSSocket>;
  return typeof s.getPeerX509Certificate === 'function' ? (s as TLSSocket) : null;
}

function requestHeader(ctx: ForwardContext, name: string): string | null {
  switch (name) {
    case ':authority':
    case 'host':
      return ctx.authority;
    case ':path':
      return ctx.query === '' ? ctx.path : ctx.path + '?' + ctx.query;
    case ':method':
      return ctx.method;
    case ':scheme':
      return ctx.scheme;
    default:
      return rawHeader(ctx.req.rawHeaders, name);
  }
}

/** The client address Envoy reports: the trusted x-forwarded-for entry with trusted hops, else the peer. */
function remoteAddress(ctx: ForwardContext): string {
  const hops = ctx.snapshot.settings.numTrustedProxies;
  const peer = peerAddress(ctx.req);
  return hops > 0 ? trustedClientAddress(rawHeader(ctx.req.rawHeaders, 'x-forwarded-for'), peer, hops) : peer;
}

function getterOf(name: string, args: string | null): Getter {
  switch (name) {
    case 'REQ': {
      const [main, alt] = (args ?? '').split('?').map((s) => s.trim().toLowerCase()) as [
        string,
        string | undefined,
      ];
      return alt === undefined
        ? (ctx) => requestHeader(ctx, main)
        : (ctx) => requestHeader(ctx, main) ?? requestHeader(ctx, alt);
    }
    case 'START_TIME':
      return (ctx) => new Date(ctx.startTimeMs).toISOString();
    case 'PROTOCOL':
      return (ctx) => (ctx.req.httpVersion === '2.0' ? 'HTTP/2' : 'HTTP/' + ctx.req.httpVersion);
    case 'HOSTNAME':
      return () => HOSTNAME;
    case 'REQUESTED_SERVER_NAME':
      return (ctx) => {
        const sni = (ctx.req.socket as Partial<TLSSocket>).servername;
        return typeof sni === 'string' && sni !== '' ? sni : null;
      };
    case 'DOWNSTREAM_REMOTE_ADDRESS':
      return (ctx) => {
        const addr = remoteAddress(ctx);
        // Envoy gives an address taken from x-forwarded-for port 0.
        return withPort(addr, addr === peerAddress(ctx.req) ? ctx.req.socket.remotePort : 0);
      };
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      return (ctx) => withPort(remoteAddress(ctx), undefined);
    case 'DOWNSTREAM_REMOTE_PORT':
      return (ctx) => {
        const addr = remoteAddress(ctx);
        return String(addr === peerAddress(ctx.req) ? (ctx.req.socket.remotePort ?? 0) : 0);
      };
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      return (ctx) => withPort(peerAddress(ctx.req), ctx.req.socket.remotePort);
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
      return (ctx) => withPort(peerAddress(ctx.req), undefined);
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      return (ctx) => withPort(unmapped(ctx.req.socket.localAddress), ctx.req.socket.localPort);
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
      return (ctx) => withPort(unmapped(ctx.req.socket.localAddress), undefined);
    case 'DOWNSTREAM_LOCAL_PORT':
      return (ctx) => (ctx.req.socket.localPort === undefined ? null : String(ctx.req.socket.localPort));
    case 'DOWNSTREAM_TLS_VERSION':
      return (ctx) => tlsOf(ctx)?.getProtocol() ?? null;
    case 'DOWNSTREAM_PEER_SUBJECT':
      return (ctx) => tlsOf(ctx)?.getPeerX509Certificate()?.subject.replaceAll('\n', ',') ?? null;
    case 'DOWNSTREAM_PEER_ISSUER':
      return (ctx) => tlsOf(ctx)?.getPeerX509Certificate()?.issuer.replaceAll('\n', ',') ?? null;
    case 'DOWNSTREAM_PEER_URI_SAN':
      return (ctx) => {
        const san = tlsOf(ctx)?.getPeerX509Certificate()?.subjectAltName;
        if (san === undefined) return null;
        const uris = san
          .split(', ')
          .filter((e) => e.startsWith('URI:'))
          .map((e) => e.slice(4));
        return uris.length === 0 ? null : uris.join(',');
      };
    case 'DOWNSTREAM_PEER_FINGERPRINT_256':
      return (ctx) => {
        const fp = tlsOf(ctx)?.getPeerX509Certificate()?.fingerprint256;
        return fp === undefined ? null : fp.replaceAll(':', '').toLowerCase();
      };
    case 'UPSTREAM_CLUSTER':
      return (ctx) => ctx.clusterName;
    case 'UPSTREAM_REMOTE_ADDRESS':
      return (ctx) => ctx.upstreamHost?.hostPort ?? null;
    case 'RESPONSE_CODE':
      return (ctx) => (ctx.status > 0 ? String(ctx.status) : null);
    case 'RESPONSE_FLAGS':
      return (ctx) => ctx.responseFlags;
    case 'ROUTE_NAME':
      return (ctx) => ctx.route?.source?.ruleName ?? null;
    default:
      // compile/actions.ts admits only snapshot/header-operators.ts names.
      return () => null;
  }
}

function compile(parts: readonly TemplatePart[]): readonly (string | Getter)[] {
  return parts.map((p) => {
    if (typeof p === 'string') return p;
    const get = getterOf(p.name, p.args);
    const max = p.maxLength;
    if (max === null) return get;
    return (ctx: ForwardContext) => {
      const v = get(ctx);
      return v !== null && v.length > max ? v.slice(0, max) : v;
    };
  });
}

/** The value to send; '' means the header is left out (Envoy keeps no empty substituted value). */
export function renderHeaderValue(value: HeaderValue, ctx: ForwardContext): string {
  if (typeof value === 'string') return value;
  let pieces = compiled.get(value);
  if (pieces === undefined) {
    pieces = compile(value.parts);
    compiled.set(value, pieces);
  }
  let out = '';
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (typeof p === 'string') out += p;
    else {
      const v = p(ctx);
      if (v !== null) out += v;
    }
  }
  // Header values may not carry CR, LF or NUL, whatever a client put in the header copied here.
  return UNSAFE_IN_VALUE.test(out) ? out.replaceAll(UNSAFE_IN_VALUE_ALL, '') : out;
}

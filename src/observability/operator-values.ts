/**
 * What each Envoy command operator reads of a request: the one evaluator behind access log
 * formats (DP-6) and VirtualService header values (VS-21), so both print the same for the same
 * operator. Getters are built once per parsed operator; a request only runs them.
 *
 * The request is read as Envoy's connection manager has left it when its filters run:
 * x-request-id assigned, x-forwarded-for with the peer appended, the downstream remote address
 * taken from x-forwarded-for under trusted hops. Policy on top (redacting credentials in the
 * access log) belongs to the caller.
 */
import type { TLSSocket } from 'node:tls';
import { hostname } from 'node:os';
import type { CommandOperator, OperatorName } from '../util/command-operators.ts';
import { kSentHeaders, type FinishedRequest } from './finished-request.ts';
import {
  peerAddress,
  rawHeader,
  sentHeader,
  trustedClientAddress,
  unmapped,
  withPort,
} from './request-facts.ts';

/** A value: null = absent (`-` in a TEXT log, null in JSON, no header). */
export type OperatorValue = string | number | null;
export type OperatorGetter = (r: FinishedRequest) => OperatorValue;

const HOSTNAME = hostname();

/** The request target: normalised path and query as routed; the target as received when refused before that. */
export function pathWithQuery(r: FinishedRequest): string {
  if (r.authority === '') return r.rawUrl;
  return r.query === '' ? r.path : r.path + '?' + r.query;
}

/** The x-forwarded-for the upstream sees: the client's, with the peer appended (DP-1). */
function forwardedFor(r: FinishedRequest): string | null {
  const sent = sentHeader(r.fwd?.headers, 'x-forwarded-for');
  if (sent !== null) return sent;
  const peer = peerAddress(r.req);
  const client = rawHeader(r.req.rawHeaders, 'x-forwarded-for');
  if (client !== null && client !== '') return peer === '' ? client : client + ',' + peer;
  return peer === '' ? null : peer;
}

/** A request header as Envoy's filters see it; pseudo-headers from the request line. */
export function requestHeader(r: FinishedRequest, name: string): string | null {
  switch (name) {
    case ':method':
      return r.method;
    case ':path':
      return pathWithQuery(r);
    case ':authority':
    case 'host':
      return r.authority !== '' ? r.authority : rawHeader(r.req.rawHeaders, 'host');
    case ':scheme':
      return r.scheme;
    case 'x-request-id':
      return r.requestId === '' ? null : r.requestId;
    case 'x-forwarded-for':
      return forwardedFor(r);
    case 'x-envoy-original-path':
      // Set by the router on a path rewrite (DP-1); a client's own is never forwarded.
      return sentHeader(r.fwd?.headers, 'x-envoy-original-path');
    default:
      return rawHeader(r.req.rawHeaders, name);
  }
}

/** A response header from the head Node wrote (the proxied or the local reply). */
export function responseHeader(r: FinishedRequest, name: string): string | null {
  if (name === 'x-envoy-upstream-service-time')
    return r.upstreamServiceTimeMs >= 0 ? String(r.upstreamServiceTimeMs) : null;
  const sent = (r.res as { [kSentHeaders]?: readonly (string | number)[] | null })[kSentHeaders];
  if (sent !== undefined) return firstHeader(sent, name);
  const head = (r.res as { _header?: string | null })._header;
  if (typeof head !== 'string') return null;
  const lower = head.toLowerCase();
  const at = lower.indexOf('\r\n' + name + ':');
  if (at < 0) return null;
  const start = at + 3 + name.length;
  const end = lower.indexOf('\r\n', start);
  return head.slice(start, end < 0 ? head.length : end).trim();
}

/** The first field named `name` (lowercase), as the HTTP/1 head is read. */
function firstHeader(sent: readonly (string | number)[] | null, name: string): string | null {
  if (sent === null) return null;
  for (let i = 0; i < sent.length; i += 2) {
    const n = String(sent[i]);
    if (n.length === name.length && n.toLowerCase() === name) return String(sent[i + 1]);
  }
  return null;
}

/** Envoy's downstream remote address: the trusted client with trusted hops (DP-1), else the peer. */
function remoteAddress(r: FinishedRequest): string {
  const hops = r.snapshot.settings.numTrustedProxies;
  const peer = peerAddress(r.req);
  return hops > 0 ? trustedClientAddress(rawHeader(r.req.rawHeaders, 'x-forwarded-for'), peer, hops) : peer;
}

/** The port of the downstream remote address: an address taken from x-forwarded-for has port 0. */
function remotePort(r: FinishedRequest): number {
  return remoteAddress(r) === peerAddress(r.req) ? (r.req.socket.remotePort ?? 0) : 0;
}

function tlsOf(r: FinishedRequest): TLSSocket | null {
  const s = r.req.socket as Partial<TLSSocket>;
  return typeof s.getPeerX509Certificate === 'function' ? (s as TLSSocket) : null;
}

function peerSans(r: FinishedRequest): string | null {
  const san = tlsOf(r)?.getPeerX509Certificate()?.subjectAltName;
  if (san === undefined) return null;
  const uris = san
    .split(', ')
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
  return uris.length === 0 ? null : uris.join(',');
}

/** Body bytes received (Envoy %BYTES_RECEIVED%): wire bytes less the request head. */
function bytesReceived(r: FinishedRequest): number {
  const req = r.req;
  if (req.httpVersionMajor >= 2) return r.requestBytes;
  // The head as an HTTP/1.1 client sent it: request line, headers, blank line.
  let head = req.method!.length + 1 + r.rawUrl.length + 11 + 2;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += raw[i]!.length + 2 + raw[i + 1]!.length + 2;
  return Math.max(0, r.requestBytes - head);
}

/** Body bytes sent (Envoy %BYTES_SENT%): wire bytes less the response head Node wrote. */
function bytesSent(r: FinishedRequest): number {
  const head = (r.res as { _header?: string | null })._header;
  return Math.max(0, r.responseBytes - (typeof head === 'string' ? head.length : 0));
}

/** ISO start time; many requests start in the same millisecond, so the last one is kept. */
let lastStartMs = -1;
let lastStartIso = '';
function startTime(r: FinishedRequest): string {
  const ms = r.startTimeMs;
  if (ms !== lastStartMs) {
    lastStartMs = ms;
    lastStartIso = new Date(ms).toISOString();
  }
  return lastStartIso;
}

function headerGetter(
  read: (r: FinishedRequest, name: string) => string | null,
  args: string,
): OperatorGetter {
  const [main, alt] = args.split('?').map((s) => s.trim().toLowerCase()) as [string, string | undefined];
  return alt === undefined ? (r) => read(r, main) : (r) => read(r, main) ?? read(r, alt);
}

function withoutQuery(get: OperatorGetter): OperatorGetter {
  return (r) => {
    const v = get(r);
    if (typeof v !== 'string') return v;
    const q = v.indexOf('?');
    return q < 0 ? v : v.slice(0, q);
  };
}

const ABSENT: OperatorGetter = () => null;

/** One getter factory per operator name: the type makes the table complete. */
const GETTERS: Record<OperatorName, (args: string) => OperatorGetter> = {
  REQ: (args) => headerGetter(requestHeader, args),
  REQ_WITHOUT_QUERY: (args) => withoutQuery(headerGetter(requestHeader, args)),
  RESP: (args) => headerGetter(responseHeader, args),
  START_TIME: () => startTime,
  METHOD: () => (r) => r.method,
  PROTOCOL: () => (r) => (r.req.httpVersionMajor === 2 ? 'HTTP/2' : 'HTTP/' + r.req.httpVersion),
  HOSTNAME: () => () => HOSTNAME,
  REQUESTED_SERVER_NAME: () => (r) => {
    const sni = (r.req.socket as Partial<TLSSocket>).servername;
    return typeof sni === 'string' && sni !== '' ? sni : null;
  },
  DOWNSTREAM_REMOTE_ADDRESS: () => (r) => withPort(remoteAddress(r), remotePort(r)),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: () => (r) => withPort(remoteAddress(r), undefined),
  DOWNSTREAM_REMOTE_PORT: () => remotePort,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: () => (r) => withPort(peerAddress(r.req), r.req.socket.remotePort),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: () => (r) => withPort(peerAddress(r.req), undefined),
  DOWNSTREAM_LOCAL_ADDRESS: () => (r) =>
    withPort(unmapped(r.req.socket.localAddress), r.req.socket.localPort),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: () => (r) =>
    withPort(unmapped(r.req.socket.localAddress), undefined),
  DOWNSTREAM_LOCAL_PORT: () => (r) => r.req.socket.localPort ?? null,
  DOWNSTREAM_TLS_VERSION: () => (r) => tlsOf(r)?.getProtocol() ?? null,
  DOWNSTREAM_PEER_SUBJECT: () => (r) =>
    tlsOf(r)?.getPeerX509Certificate()?.subject.replaceAll('\n', ',') ?? null,
  DOWNSTREAM_PEER_ISSUER: () => (r) =>
    tlsOf(r)?.getPeerX509Certificate()?.issuer.replaceAll('\n', ',') ?? null,
  DOWNSTREAM_PEER_URI_SAN: () => peerSans,
  DOWNSTREAM_PEER_FINGERPRINT_256: () => (r) => {
    const fp = tlsOf(r)?.getPeerX509Certificate()?.fingerprint256;
    return fp === undefined ? null : fp.replaceAll(':', '').toLowerCase();
  },
  UPSTREAM_CLUSTER: () => (r) => r.clusterName,
  UPSTREAM_CLUSTER_RAW: () => (r) => r.clusterName,
  UPSTREAM_HOST: () => (r) => (r.upstreamHost === null ? null : r.upstreamHost.hostPort),
  UPSTREAM_REMOTE_ADDRESS: () => (r) => (r.upstreamHost === null ? null : r.upstreamHost.hostPort),
  UPSTREAM_LOCAL_ADDRESS: () => ABSENT,
  UPSTREAM_TRANSPORT_FAILURE_REASON: () => (r) => r.transportFailureReason,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: () => (r) => r.attempts,
  RESPONSE_CODE: () => (r) => r.status,
  RESPONSE_CODE_DETAILS: () => (r) =>
    r.responseDetails === '-' ? (r.status > 0 ? 'via_upstream' : null) : r.responseDetails,
  RESPONSE_FLAGS: () => (r) => r.responseFlags,
  CONNECTION_TERMINATION_DETAILS: () => ABSENT,
  BYTES_RECEIVED: () => bytesReceived,
  BYTES_SENT: () => bytesSent,
  DURATION: () => (r) => Math.floor(r.endMs - r.startMs),
  RESPONSE_DURATION: () => (r) => (r.upstreamServiceTimeMs >= 0 ? r.upstreamServiceTimeMs : null),
  ROUTE_NAME: () => (r) => r.route?.source?.ruleName ?? null,
  TRACE_ID: () => (r) => (r.trace === null ? null : r.trace.traceId),
};

/**
 * The getter for one parsed operator, `:N` truncation included. An operator the parser reported
 * as unknown reads as absent.
 */
export function operatorGetter(op: CommandOperator): OperatorGetter {
  const factory = Object.hasOwn(GETTERS, op.name) ? GETTERS[op.name as OperatorName] : undefined;
  const get = factory === undefined ? ABSENT : factory(op.args ?? '');
  const max = op.maxLength;
  if (max === null) return get;
  return (r) => {
    const v = get(r);
    return typeof v === 'string' && v.length > max ? v.slice(0, max) : v;
  };
}

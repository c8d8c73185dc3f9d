/**
 * One fixed-shape object per request (Pingora's CTX): every field is set in the constructor, in
 * the same order, so V8 keeps one hidden class. The snapshot is pinned here, once, at the start
 * of the request; nothing later reads `current` again.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { RequestAuth, Route, RouteTable, Snapshot, TlsServer, VirtualHost } from '../snapshot/types.ts';
import type { RoutedRequest } from '../snapshot/route-request.ts';
import { peerAddress, rawHeader, trustedClientAddress, unmapped } from '../observability/request-facts.ts';
import type { CountedLimit, FilterContext, FilterRuntime } from './filters/filter.ts';
import { peerIdentityOf } from './xfcc.ts';
import type { ForwardContext, ForwardState } from '../upstream/forward.ts';
import type { UpstreamHost } from '../upstream/pools.ts';
import type { TraceContext } from '../observability/finished-request.ts';
import type { GrpcExchange } from '../util/grpc.ts';
import type { GrpcWebBridge } from '../upstream/grpc-web.ts';

export class RequestContext implements RoutedRequest, ForwardContext, FilterContext {
  // RequestView (what matchers see)
  method: string;
  scheme: 'http' | 'https';
  authority: string;
  host: string;
  path: string;
  query: string;
  port: number;
  queryParams: ReadonlyMap<string, string> | null;
  claims: Readonly<Record<string, unknown>> | null;

  // the exchange
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly snapshot: Snapshot;
  readonly upgradeSocket: Duplex | null;
  readonly upgradeHead: Buffer | null;
  /** Wall-clock start (access log) and monotonic start (durations). */
  readonly startTimeMs: number;
  readonly startMs: number;
  /** The request target exactly as received (access log path when nothing rewrote it). */
  readonly rawUrl: string;
  /** x-request-id, assigned before routing (DP-1). */
  requestId: string;

  // routing decisions (snapshot/route-request.ts), then outcome (access log, metrics)
  tlsServer: TlsServer | null;
  table: RouteTable | null;
  vhost: VirtualHost | null;
  route: Route | null;
  clusterName: string | null;
  upstreamHost: UpstreamHost | null;
  status: number;
  responseFlags: string;
  responseDetails: string;
  attempts: number;
  upstreamStartMs: number;
  upstreamServiceTimeMs: number;
  finished: boolean;
  fwd: ForwardState | null;
  grpc: GrpcExchange | null;
  grpcWeb: GrpcWebBridge | null;
  transportFailureReason: string | null;

  // request pipeline (dataplane/pipeline.ts): the listener's filter state, then what filters set
  runtime: FilterRuntime | null;
  auth: RequestAuth | null;
  responseHeadersToAdd: string[] | null;
  bodyPrefix: Buffer | null;
  delayInjected: boolean;
  deferredLimits: CountedLimit[] | null;

  // observability: the sampled span (null when tracing is off or not sampled); end time and
  // wire bytes, filled once by the request observer when the request is done
  trace: TraceContext | null;
  /** Called once the response is over (the listener's observer); null when nobody listens. */
  onDone: ((ctx: RequestContext) => void) | null;
  endMs: number;
  requestBytes: number;
  responseBytes: number;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    snapshot: Snapshot,
    port: number,
    scheme: 'http' | 'https',
    upgradeSocket: Duplex | null,
    upgradeHead: Buffer | null,
  ) {
    this.method = req.method ?? 'GET';
    this.scheme = scheme;
    this.authority = '';
    this.host = '';
    this.path = '/';
    this.query = '';
    this.port = port;
    this.queryParams = null;
    this.claims = null;
    this.req = req;
    this.res = res;
    this.snapshot = snapshot;
    this.upgradeSocket = upgradeSocket;
    this.upgradeHead = upgradeHead;
    this.startTimeMs = Date.now();
    this.startMs = performance.now();
    this.rawUrl = req.url ?? '/';
    this.requestId = '';
    this.tlsServer = null;
    this.table = null;
    this.vhost = null;
    this.route = null;
    this.clusterName = null;
    this.upstreamHost = null;
    this.status = 0;
    this.responseFlags = '-';
    this.responseDetails = '-';
    this.attempts = 0;
    this.upstreamStartMs = 0;
    this.upstreamServiceTimeMs = -1;
    this.finished = false;
    this.fwd = null;
    this.grpc = null;
    this.grpcWeb = null;
    this.transportFailureReason = null;
    this.runtime = null;
    this.auth = null;
    this.responseHeadersToAdd = null;
    this.bodyPrefix = null;
    this.delayInjected = false;
    this.deferredLimits = null;
    this.trace = null;
    this.onDone = null;
    this.endMs = 0;
    this.requestBytes = 0;
    this.responseBytes = 0;
  }

  /** Node's lowercased header object, built lazily by Node on first read (only header matchers read it). */
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  // What policy reads of the connection: computed only when a policy asks (AP-5, AP-7).

  get peerIp(): string {
    return peerAddress(this.req);
  }

  get remoteIp(): string {
    const hops = this.snapshot.settings.numTrustedProxies;
    const peer = peerAddress(this.req);
    return hops > 0
      ? trustedClientAddress(rawHeader(this.req.rawHeaders, 'x-forwarded-for'), peer, hops)
      : peer;
  }

  get localIp(): string {
    return unmapped(this.req.socket.localAddress);
  }

  get sni(): string {
    if (this.scheme !== 'https') return '';
    const name = (this.req.socket as TLSSocket).servername;
    return typeof name === 'string' ? name : '';
  }

  /** URI SAN, else DNS SAN, else subject of the verified client certificate (Envoy's principal). */
  get peerPrincipal(): string | null {
    const tls = this.tlsServer?.tls ?? null;
    if (tls === null || tls.mode === 'SIMPLE') return null;
    const id = peerIdentityOf(this.req.socket as TLSSocket);
    if (id === null) return null;
    return id.uris[0] ?? id.dnsNames[0] ?? id.subject;
  }
}

/**
 * The explicit forward proxy (issue 13): clients name it as HTTP_PROXY / HTTPS_PROXY and send
 * absolute-form HTTP requests (`GET http://host/path`) or `CONNECT host:port` tunnels. Each is
 * checked against the ServiceEntry allowlist of the pinned snapshot (snapshot/egress.ts); a
 * refusal is a 403 whose body names host, port and reason (a sluice departure from the sidecar's
 * empty 502, SE-4), an access-log line and a count by destination.
 *
 * The name is resolved once per request and the connection goes to that address, so the answer
 * that was checked is the one used (no DNS rebinding in between). A CONNECT to a TLS port reads
 * the tunnelled ClientHello before any upstream connection exists and requires its SNI to be
 * allowed too. Bodies and tunnels stream with backpressure (pipe), tunnels close when idle.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  ServerResponse,
  type IncomingMessage,
  type Server,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { EgressHost, EgressPolicy, RouteTable, SnapshotSource, Snapshot } from '../snapshot/types.ts';
import { freshAnswer } from '../upstream/dns.ts';
import {
  blocked,
  decideEgress,
  decideSni,
  printable,
  type EgressAllowed,
  type EgressBlocked,
} from '../snapshot/egress.ts';
import { classifyHost, isInternalAddress } from '../util/host-literal.ts';
import { connectionNominated } from '../util/connection-header.ts';
import { parseClientHello, MAX_HELLO_BYTES } from '../tls/client-hello.ts';
import type { FinishedRequest, TraceContext } from '../observability/finished-request.ts';
import type { TcpConnectionObserver } from '../observability/request-metrics.ts';
import type { EgressLedger } from '../observability/egress-ledger.ts';
import { listenOn } from './listen.ts';
import { handleMeshRequest, handleUpgrade, type ListenerContext } from './handle-request.ts';
import { isWebSocketUpgrade } from './listeners.ts';
import type { RequestContext } from './request-context.ts';
import type { FilterRuntime } from './filters/filter.ts';
import { findVirtualHost } from '../snapshot/lookup.ts';

export interface EgressProxyTuning {
  /** Upstream connect timeout; default 10 s (Envoy's default connect_timeout). */
  readonly connectTimeoutMs?: number;
  /** A tunnel or proxied request with no bytes either way for this long is closed; default 1 h (Envoy). */
  readonly idleTimeoutMs?: number;
  /** How long a CONNECT to a TLS port may take to send its ClientHello; default 10 s. */
  readonly helloTimeoutMs?: number;
}

export interface EgressProxyOptions extends EgressProxyTuning {
  /** The configured port (Snapshot.egress.port). */
  readonly port: number;
  readonly bindPort: number;
  readonly bind: string;
  readonly source: SnapshotSource;
  /** Per finished request or tunnel (access log, istio_requests_total). */
  readonly onDone: ((r: FinishedRequest) => void) | null;
  /** istio_tcp_* per destination for tunnels. */
  readonly tcp: TcpConnectionObserver | null;
  readonly ledger: EgressLedger | null;
  /** Requests routed by mesh-bound VirtualServices finish as Gateway requests do (access log, metrics). */
  readonly onRouted: ((ctx: RequestContext) => void) | null;
  readonly filters: FilterRuntime;
}

/** Envoy's wording for a connect failure (DP-4). */
const CONNECT_FAILURE =
  'upstream connect error or disconnect/reset before headers. reset reason: remote connection failure';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** One proxied request or tunnel, shaped for the access log and request metrics. */
class EgressExchange implements FinishedRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly snapshot: Snapshot;
  readonly method: string;
  readonly scheme = 'http' as const;
  authority: string;
  host: string;
  path: string;
  query: string;
  readonly port: number;
  readonly rawUrl: string;
  private id: string | null = null;
  readonly startTimeMs: number;
  readonly startMs: number;
  readonly route = null;
  clusterName: string | null = null;
  upstreamHost: { hostPort: string } | null = null;
  status = 0;
  responseFlags = '-';
  responseDetails = '-';
  attempts = 0;
  upstreamServiceTimeMs = -1;
  readonly fwd = null;
  readonly trace: TraceContext | null = null;
  readonly grpc = null;
  readonly transportFailureReason = null;
  endMs = 0;
  requestBytes = 0;
  responseBytes = 0;

  constructor(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, port: number) {
    this.req = req;
    this.res = res;
    this.snapshot = snapshot;
    this.method = req.method ?? 'GET';
    this.authority = '';
    this.host = '';
    this.path = '';
    this.query = '';
    this.port = port;
    this.rawUrl = req.url ?? '';
    this.startTimeMs = Date.now();
    this.startMs = performance.now();
  }

  /** The destination the access log and metrics name, once the target is resolved; its cluster name. */
  sentTo(host: string, port: number, address: string, targetPort: number): string {
    const cluster = `outbound|${port}||${host}`;
    this.clusterName = cluster;
    this.upstreamHost = { hostPort: `${address}:${targetPort}` };
    this.attempts = 1;
    return cluster;
  }

  /** Made when first read (the access log): routed requests never need this one. */
  get requestId(): string {
    this.id ??= randomUUID();
    return this.id;
  }
}

interface Authority {
  readonly host: string;
  readonly port: number;
}

/**
 * `host[:port]` or `[v6]:port` as a request target or Host header writes it. Userinfo is a
 * separate answer: it is refused with its own reason (a classic allowlist bypass).
 */
export function parseAuthority(text: string, defaultPort: number | null): Authority | 'userinfo' | null {
  if (text.includes('@')) return 'userinfo';
  let host: string;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return null;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else host = text;
    if (host.includes(':')) return null;
  }
  if (host === '') return null;
  let port: number;
  if (portText === null || portText === '') {
    if (defaultPort === null) return null;
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  return { host, port };
}

/** Same host and port, compared in normal form. */
function sameAuthority(a: Authority, b: Authority): boolean {
  return a.port === b.port && normal(a.host) === normal(b.host);
}

function normal(h: string): string {
  const l = h.toLowerCase();
  return l.endsWith('.') ? l.slice(0, -1) : l;
}

interface DirectRoute {
  readonly kind: 'direct';
  readonly d: EgressAllowed;
  readonly port: number;
  readonly pathAndQuery: string;
}

type ProxyRoute =
  | { readonly kind: 'reply'; readonly status: number; readonly body: Buffer }
  | { readonly kind: 'mesh'; readonly table: RouteTable }
  | DirectRoute;

/** Where a connection for an allowed decision goes: one resolution, checked, then used. */
type Target =
  | { readonly ok: true; readonly address: string; readonly port: number }
  | { readonly ok: false; readonly decision: EgressBlocked };

async function resolveTarget(d: EgressAllowed, requestedPort: number): Promise<Target> {
  const entry = d.entry;
  const port = d.port;
  let name: string = d.host;
  let targetPort = port?.targetPort ?? requestedPort;
  let mustCheck = d.checkResolved;
  if (entry !== null && entry.endpoints.length > 0) {
    const ep = pickEndpoint(entry);
    name = ep.address;
    if (port !== null) targetPort = ep.ports[port.name] ?? targetPort;
    // An endpoint is written in the config: it is allowed wherever it is.
    mustCheck = false;
  } else if (d.literal !== null) return { ok: true, address: d.literal, port: targetPort };
  const c = classifyHost(name.toLowerCase());
  if (c.kind === 'ip') return { ok: true, address: c.address, port: targetPort };
  // Within its TTL the cached answer is used; the address checked below is the one connected to.
  const answer = freshAnswer(name, Date.now());
  const addresses = (answer instanceof Promise ? await answer : answer).addresses;
  // DNS balances over every address of the answer (SE-2); the others take the first.
  const address =
    entry?.resolution === 'DNS' && addresses.length > 1
      ? addresses[(Math.random() * addresses.length) | 0]
      : addresses[0];
  if (address === undefined)
    return { ok: false, decision: blocked(d.host, 'dns_failure', `${name} does not resolve`) };
  if (mustCheck && isInternalAddress(address))
    return {
      ok: false,
      decision: blocked(
        d.host,
        'internal_address',
        `it resolves to ${address}, an internal address, and is not named exactly by a ServiceEntry`,
      ),
    };
  return { ok: true, address, port: targetPort };
}

/** SE-3 `weight`: an endpoint in proportion to its weight (all 1 when none is set). */
function pickEndpoint(entry: EgressHost): EgressHost['endpoints'][number] {
  const eps = entry.endpoints;
  let r = Math.random() * entry.endpointWeight;
  for (const ep of eps) if ((r -= ep.weight) < 0) return ep;
  return eps[eps.length - 1]!;
}

/**
 * An absolute-form request target → its authority and path (recorded on `x`), or the 400 body
 * for one that is not (origin form, an https:// target, a fragment).
 */
function parseTarget(x: EgressExchange): { authorityText: string; pathAndQuery: string } | string {
  const url = x.rawUrl;
  if (!/^http:\/\//i.test(url))
    return /^https:\/\//i.test(url)
      ? 'sluice egress proxy: https:// targets are tunnelled: use CONNECT\n'
      : 'sluice egress proxy: send an absolute-form request target (http://host/path) or CONNECT\n';
  // Envoy refuses a fragment in the request target (http_reject_path_with_fragment).
  if (url.includes('#')) return 'sluice egress proxy: a request target has no fragment\n';
  const rest = url.slice(7);
  const end = rest.search(/[/?]/);
  const authorityText = end < 0 ? rest : rest.slice(0, end);
  let pathAndQuery = end < 0 ? '/' : rest.slice(end);
  if (pathAndQuery.startsWith('?')) pathAndQuery = '/' + pathAndQuery;
  x.authority = authorityText;
  const q = pathAndQuery.indexOf('?');
  x.path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  x.query = q < 0 ? '' : pathAndQuery.slice(q + 1);
  return { authorityText, pathAndQuery };
}

function blockBody(host: string, port: number, d: EgressBlocked): Buffer {
  return Buffer.from(`sluice egress proxy: ${host}:${port} blocked: ${d.detail} [${d.reason}]\n`);
}

export class EgressProxyListener {
  private readonly opts: EgressProxyOptions;
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 64 });
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly helloTimeoutMs: number;
  private readonly routed: ListenerContext;
  private draining = false;
  private boundPortValue = 0;

  constructor(opts: EgressProxyOptions) {
    this.opts = opts;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 3_600_000;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 10_000;
    this.routed = {
      port: opts.port,
      scheme: 'http',
      source: opts.source,
      onDone: opts.onRouted,
      draining: false,
      filters: opts.filters,
    };
    this.server = createServer({
      maxHeaderSize: 60 * 1024,
      requireHostHeader: false,
      noDelay: true,
      // Other upgrades (h2c) are plain requests: Upgrade is a hop-by-hop header, dropped.
      shouldUpgradeCallback: isWebSocketUpgrade,
    });
    this.server.on('connection', (s: Socket) => {
      this.open.add(s);
      s.once('close', () => this.open.delete(s));
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onConnect(req, socket, head),
    );
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
  }

  private policy(): { snapshot: Snapshot; policy: EgressPolicy | null } {
    const snapshot = this.opts.source.get();
    return { snapshot, policy: snapshot.egress ?? null };
  }

  private done(x: EgressExchange): void {
    this.opts.onDone?.(x);
  }

  private refuse(x: EgressExchange, policy: EgressPolicy | null, port: number, d: EgressBlocked): Buffer {
    x.status = 403;
    x.clusterName = 'BlackHoleCluster';
    x.responseDetails = `egress_${d.reason}`;
    this.opts.ledger?.blocked(
      d.host,
      port,
      d.reason,
      x.method === 'CONNECT' ? 'connect' : 'http',
      policy?.learn === true && policy.mode === 'REGISTRY_ONLY',
    );
    return blockBody(d.host, port, d);
  }

  // ------------------------------------------------------------ absolute-form HTTP

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const { snapshot, policy } = this.policy();
    const x = new EgressExchange(req, res, snapshot, policy?.port ?? 0);
    const route = this.routeOf(x, policy);
    // Routed requests finish as Gateway requests do (handleMeshRequest watches them).
    if (route.kind === 'mesh') {
      handleMeshRequest(this.routed, req, res, snapshot, route.table);
      return;
    }
    res.once('close', () => {
      if (!res.writableFinished && x.responseFlags === '-') x.responseFlags = 'DC';
      this.done(x);
    });
    if (route.kind === 'reply') {
      this.localReply(x, route.status, route.body);
      return;
    }
    this.whenResolved(x, policy, route, res, (address, targetPort) =>
      this.forward(x, route, address, targetPort),
    );
  }

  /** Resolves a direct route once, then `go`, or answers 403 / 503 DF; nothing when `client` left. */
  private whenResolved(
    x: EgressExchange,
    policy: EgressPolicy | null,
    route: DirectRoute,
    client: { readonly destroyed: boolean },
    go: (address: string, targetPort: number) => void,
  ): void {
    void resolveTarget(route.d, route.port).then((t) => {
      if (client.destroyed) return;
      if (t.ok) go(t.address, t.port);
      else
        this.localReply(
          x,
          this.refuseResolved(x, t.decision),
          this.refuse(x, policy, route.port, t.decision),
        );
    });
  }

  /**
   * Where an absolute-form request goes: a local answer (400, 403), the mesh routes of its port
   * (a host a ServiceEntry names exactly: a VirtualService bound to `mesh`, else the default
   * route to its cluster), or straight to what it resolves to (wildcards, ALLOW_ANY, addresses).
   */
  private routeOf(x: EgressExchange, policy: EgressPolicy | null): ProxyRoute {
    const target = parseTarget(x);
    if (typeof target === 'string') return { kind: 'reply', status: 400, body: Buffer.from(target) };
    const decision = this.admit(x, policy, target.authorityText, 80);
    if (!decision.allowed)
      return { kind: 'reply', status: 403, body: this.refuse(x, policy, decision.port, decision.d) };
    const d = decision.d;
    x.host = d.host;
    const table =
      d.entry !== null && !d.entry.wildcard && d.literal === null
        ? policy!.meshTables.get(decision.port)
        : undefined;
    if (table !== undefined && findVirtualHost(table, d.host) !== null) return { kind: 'mesh', table };
    return { kind: 'direct', d, port: decision.port, pathAndQuery: target.pathAndQuery };
  }

  /** A resolution that failed or landed in internal space: its status (503 DF or 403). */
  private refuseResolved(x: EgressExchange, d: EgressBlocked): number {
    if (d.reason !== 'dns_failure') return 403;
    x.responseFlags = 'DF';
    return 503;
  }

  // ------------------------------------------------------------ WebSocket upgrades

  /**
   * `GET http://host/path` with `Upgrade: websocket`: decided as any proxied request; an allowed
   * one becomes a tunnel (through the mesh routes, or raw to the resolved address), closed when
   * no byte moves either way for the idle timeout (SI), access-logged and counted on close.
   */
  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const { snapshot, policy } = this.policy();
    const res = new ServerResponse(req);
    const x = new EgressExchange(req, res, snapshot, policy?.port ?? 0);
    socket.on('error', () => socket.destroy());
    const route = this.routeOf(x, policy);
    if (route.kind !== 'mesh') {
      res.assignSocket(socket);
      res.shouldKeepAlive = false;
      // No server owns this response: a local answer ends the connection itself.
      res.once('finish', () => socket.end());
    }
    if (route.kind === 'mesh') {
      const ctx = handleUpgrade(this.routed, req, socket, head, { snapshot, table: route.table });
      // Node counts writes as activity too: one timer covers both directions.
      socket.setTimeout(this.idleTimeoutMs, () => {
        if (ctx.responseFlags === '-') ctx.responseFlags = 'SI';
        socket.destroy();
      });
      return;
    }
    socket.once('close', () => this.done(x));
    if (route.kind === 'reply') {
      this.localReply(x, route.status, route.body);
      return;
    }
    socket.setTimeout(this.idleTimeoutMs, () => {
      x.responseFlags = 'SI';
      socket.destroy();
    });
    this.whenResolved(x, policy, route, socket, (address, targetPort) =>
      this.tunnelUpgrade(x, socket, head, route, address, targetPort),
    );
  }

  /** The upgrade request, in origin form, to the resolved address; then bytes both ways. */
  private tunnelUpgrade(
    x: EgressExchange,
    socket: Socket,
    head: Buffer,
    route: DirectRoute,
    address: string,
    targetPort: number,
  ): void {
    x.sentTo(route.d.host, route.port, address, targetPort);
    const raw = x.req.rawHeaders;
    let text = `${x.method} ${route.pathAndQuery} HTTP/1.1\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      // Connection and Upgrade carry the upgrade itself; the proxy's own headers stop here.
      if (name === 'proxy-connection' || name === 'proxy-authorization' || name === 'keep-alive') continue;
      text += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    text += '\r\n';
    const started = performance.now();
    const up = connect({ host: address, port: targetPort, noDelay: true });
    const timer = setTimeout(() => up.destroy(), this.connectTimeoutMs);
    let connected = false;
    up.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      up.write(text, 'latin1');
      if (head.length > 0) up.write(head);
      up.once('data', (first: Buffer) => {
        x.upstreamServiceTimeMs = Math.round(performance.now() - started);
        // "HTTP/1.1 101 …": the status the upstream answered with, for the log and metrics.
        x.status = Number(first.toString('latin1', 9, 12)) || 0;
      });
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => {
      clearTimeout(timer);
      if (connected || socket.destroyed) {
        socket.destroy();
        return;
      }
      x.responseFlags = 'UF';
      x.responseDetails = 'upstream_connect_failure';
      this.localReply(x, 503, Buffer.from(CONNECT_FAILURE));
    });
    up.once('close', () => {
      clearTimeout(timer);
      if (connected) socket.destroy();
    });
    socket.once('close', () => up.destroy());
  }

  /**
   * Request target (and Host, when sent) → the allowlist decision. Both must name the same host
   * and port: a proxy that routed by one and checked the other could be steered around its list.
   */
  private admit(
    x: EgressExchange,
    policy: EgressPolicy | null,
    authorityText: string,
    defaultPort: number | null,
  ): { allowed: true; d: EgressAllowed; port: number } | { allowed: false; d: EgressBlocked; port: number } {
    const target = parseAuthority(authorityText, defaultPort);
    if (target === 'userinfo')
      return {
        allowed: false,
        d: blocked(afterAt(authorityText), 'userinfo', 'user@host userinfo is not accepted'),
        port: 0,
      };
    if (target === null)
      return {
        allowed: false,
        d: blocked(authorityText, 'invalid_target', 'the request target has no valid host and port'),
        port: 0,
      };
    const hostHeader = hostHeaderOf(x.req.rawHeaders);
    if (hostHeader !== undefined) {
      const h = hostHeader === null ? null : parseAuthority(hostHeader, defaultPort ?? target.port);
      if (h === null || h === 'userinfo' || !sameAuthority(h, target))
        return {
          allowed: false,
          d: blocked(
            target.host,
            'host_mismatch',
            hostHeader === null
              ? 'the request has more than one Host header'
              : `the Host header (${printable(hostHeader)}) names another destination than the request target`,
          ),
          port: target.port,
        };
    }
    if (policy === null)
      return {
        allowed: false,
        d: blocked(target.host, 'not_in_registry', 'the egress proxy is off'),
        port: target.port,
      };
    const d = decideEgress(policy, target.host, target.port);
    return d.allowed ? { allowed: true, d, port: target.port } : { allowed: false, d, port: target.port };
  }

  private localReply(x: EgressExchange, status: number, body: Buffer): void {
    x.status = status;
    const res = x.res;
    if (res.headersSent) return;
    res.writeHead(status, [
      'content-type',
      'text/plain',
      'content-length',
      String(body.length),
      ...(this.draining ? ['connection', 'close'] : []),
    ]);
    res.end(body);
  }

  private forward(x: EgressExchange, route: DirectRoute, address: string, targetPort: number): void {
    const host = route.d.host;
    const port = route.port;
    const path = route.pathAndQuery;
    const req = x.req;
    const res = x.res;
    x.sentTo(host, port, address, targetPort);
    const raw = req.rawHeaders;
    const named = connectionNominated(req.headers.connection);
    const headers: string[] = [];
    let hasHost = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (HOP_BY_HOP.has(name) || (named !== null && named.includes(name))) continue;
      if (name === 'host') hasHost = true;
      headers.push(raw[i]!, raw[i + 1]!);
    }
    if (!hasHost) headers.push('host', port === 80 ? host : `${host}:${port}`);
    const started = performance.now();
    const up = httpRequest({
      host: address,
      port: targetPort,
      method: req.method,
      path,
      headers,
      setHost: false,
      agent: this.agent,
    });
    let connected = false;
    const timer = setTimeout(() => up.destroy(new Error('connect timeout')), this.connectTimeoutMs);
    up.once('socket', (s: Socket) => {
      if (!s.connecting) {
        connected = true;
        clearTimeout(timer);
      } else
        s.once('connect', () => {
          connected = true;
          clearTimeout(timer);
        });
    });
    up.setTimeout(this.idleTimeoutMs, () => up.destroy(new Error('idle timeout')));
    up.on('response', (ures: IncomingMessage) => {
      x.upstreamServiceTimeMs = Math.round(performance.now() - started);
      x.status = ures.statusCode ?? 502;
      const out: string[] = [];
      const unamed = connectionNominated(ures.headers.connection);
      const uraw = ures.rawHeaders;
      for (let i = 0; i < uraw.length; i += 2) {
        const name = uraw[i]!.toLowerCase();
        if (HOP_BY_HOP.has(name) || (unamed !== null && unamed.includes(name))) continue;
        out.push(uraw[i]!, uraw[i + 1]!);
      }
      if (this.draining) out.push('connection', 'close');
      res.writeHead(x.status, ures.statusMessage, out);
      ures.pipe(res);
      ures.once('error', () => res.destroy());
      ures.once('aborted', () => {
        x.responseFlags = 'UC';
        res.destroy();
      });
    });
    up.on('error', () => {
      clearTimeout(timer);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      x.responseFlags = connected ? 'UC' : 'UF';
      x.responseDetails = connected ? 'upstream_reset_before_response_started' : 'upstream_connect_failure';
      this.localReply(
        x,
        503,
        Buffer.from(
          connected
            ? 'upstream connect error or disconnect/reset before headers. reset reason: connection termination'
            : CONNECT_FAILURE,
        ),
      );
    });
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }

  // ------------------------------------------------------------ CONNECT

  private onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const { snapshot, policy } = this.policy();
    const x = new EgressExchange(req, new ServerResponse(req), snapshot, policy?.port ?? 0);
    x.authority = req.url ?? '';
    socket.on('error', () => socket.destroy());
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.done(x);
    };
    socket.once('close', finish);
    const decision = this.admit(x, policy, req.url ?? '', null);
    if (!decision.allowed) {
      const body = this.refuse(x, policy, decision.port, decision.d);
      writeHead(socket, 403, 'Forbidden', body);
      return;
    }
    const d = decision.d;
    x.host = d.host;
    const tls = d.port !== null && (d.port.protocol === 'HTTPS' || d.port.protocol === 'TLS');
    if (tls) {
      // The tunnel is granted first so the client sends its ClientHello; nothing reaches any
      // upstream until its SNI passes.
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      x.status = 200;
      this.readHello(
        socket,
        head,
        (hello, sni) => {
          const s = decideSni(policy!, d, sni, decision.port);
          if (!s.allowed) {
            this.refuse(x, policy, decision.port, s);
            socket.destroy();
            return;
          }
          this.openTunnel(x, socket, hello, d, decision.port, false);
        },
        () => {
          this.refuse(
            x,
            policy,
            decision.port,
            blocked(d.host, 'no_sni', 'the tunnel on a TLS port did not start with a TLS ClientHello'),
          );
          socket.destroy();
        },
      );
      return;
    }
    this.openTunnel(x, socket, head, d, decision.port, true);
  }

  /** Reads the first TLS record from the client (bounded in size and time). */
  private readHello(
    socket: Socket,
    head: Buffer,
    onHello: (bytes: Buffer, sni: string) => void,
    onInvalid: () => void,
  ): void {
    let buf = head;
    const timer = setTimeout(() => {
      socket.off('data', onData);
      onInvalid();
    }, this.helloTimeoutMs);
    const check = (): boolean => {
      const r = parseClientHello(buf);
      if (r.kind === 'partial' && buf.length < MAX_HELLO_BYTES) return false;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (r.kind === 'hello') onHello(buf, r.hello.sni);
      else onInvalid();
      return true;
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      check();
    };
    socket.once('close', () => clearTimeout(timer));
    if (buf.length > 0 && check()) return;
    socket.on('data', onData);
  }

  private openTunnel(
    x: EgressExchange,
    socket: Socket,
    first: Buffer,
    d: EgressAllowed,
    port: number,
    answer: boolean,
  ): void {
    const { policy } = this.policy();
    socket.pause();
    void resolveTarget(d, port).then((t) => {
      if (socket.destroyed) return;
      if (!t.ok) {
        const body = this.refuse(x, policy, port, t.decision);
        x.status = this.refuseResolved(x, t.decision);
        if (answer) writeHead(socket, x.status, x.status === 503 ? 'Service Unavailable' : 'Forbidden', body);
        else socket.destroy();
        return;
      }
      const cluster = x.sentTo(d.host, port, t.address, t.port);
      const up = connect({ host: t.address, port: t.port, allowHalfOpen: true, noDelay: true });
      let connected = false;
      const timer = setTimeout(() => up.destroy(), this.connectTimeoutMs);
      const tcp = this.opts.tcp;
      up.once('connect', () => {
        clearTimeout(timer);
        connected = true;
        if (socket.destroyed) {
          up.destroy();
          return;
        }
        tcp?.tcpOpened(cluster);
        socket.once('close', () =>
          tcp?.tcpClosed(cluster, x.responseFlags, socket.bytesWritten, socket.bytesRead),
        );
        if (answer) {
          x.status = 200;
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        }
        if (first.length > 0) up.write(first);
        socket.allowHalfOpen = true;
        // Idle on both sides: either socket's timer fires only when neither moved a byte.
        const idle = (): void => {
          x.responseFlags = 'SI';
          up.destroy();
          socket.destroy();
        };
        socket.setTimeout(this.idleTimeoutMs, idle);
        up.setTimeout(this.idleTimeoutMs, idle);
        socket.on('data', () => up.setTimeout(this.idleTimeoutMs));
        up.on('data', () => socket.setTimeout(this.idleTimeoutMs));
        socket.pipe(up);
        up.pipe(socket);
        socket.resume();
      });
      up.on('error', () => {
        clearTimeout(timer);
        if (!connected) {
          x.responseFlags = 'UF';
          x.responseDetails = 'upstream_connect_failure';
        }
        if (!connected && answer && !socket.destroyed)
          writeHead(socket, 503, 'Service Unavailable', Buffer.from(CONNECT_FAILURE));
        else socket.destroy();
      });
      up.once('close', () => {
        clearTimeout(timer);
        if (!connected) {
          if (x.responseFlags === '-') x.responseFlags = 'UF';
          if (answer && !socket.destroyed && x.status !== 503)
            writeHead(socket, 503, 'Service Unavailable', Buffer.from(CONNECT_FAILURE));
          else socket.destroy();
        }
      });
      socket.once('close', () => up.destroy());
    });
  }

  async listen(): Promise<void> {
    this.boundPortValue = await listenOn(this.server, this.opts.bind, this.opts.bindPort);
  }

  startDraining(): void {
    this.draining = true;
    this.routed.draining = true;
  }

  get boundPort(): number {
    return this.boundPortValue;
  }

  /** Stop accepting; open requests and tunnels may finish for `graceMs`, then are cut. */
  close(graceMs: number): Promise<void> {
    const server = this.server;
    return new Promise((resolve) => {
      const force = (): void => {
        for (const s of this.open) s.destroy();
        this.open.clear();
        this.agent.destroy();
      };
      if (!server.listening) {
        force();
        resolve();
        return;
      }
      server.close(() => {
        clearTimeout(timer);
        this.agent.destroy();
        resolve();
      });
      server.closeIdleConnections();
      const timer = setTimeout(force, graceMs);
      if (graceMs === 0) force();
    });
  }
}

function writeHead(socket: Socket, status: number, text: string, body: Buffer): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n` +
      body.toString('latin1'),
    'latin1',
  );
}

/** The Host header; undefined when absent, null when sent more than once (Node keeps only the first). */
function hostHeaderOf(raw: readonly string[]): string | null | undefined {
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
      if (host !== undefined) return null;
      host = raw[i + 1]!;
    }
  return host;
}

function afterAt(authority: string): string {
  return authority.slice(authority.lastIndexOf('@') + 1);
}

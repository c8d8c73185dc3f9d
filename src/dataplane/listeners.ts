/**
 * One server per listener port, running sluice's own handler (DESIGN §3): node:http for plaintext
 * (HTTP/1.1, plus h2c prior knowledge detected from the connection preface and handed to a
 * node:http2 session), node:https for terminated TLS (SNI → server context, ALPN h2 sockets handed
 * to the same node:http2 handling). Requests llhttp refuses never reach the handler; the
 * 'clientError' hook answers them the way Envoy's codec does (400/408/431/501, body = status
 * text, connection closed).
 *
 * HTTP/2 abuse is bounded by nghttp2's limits, which Node exposes: concurrent streams (100),
 * invalid frames, rejected streams, SETTINGS entries, outstanding PINGs, header list size, session
 * memory; plus a per-session RST_STREAM budget (CVE-2023-44487 rapid reset, http2-sessions.ts): a
 * client that cancels more streams than it completes gets GOAWAY ENHANCE_YOUR_CALM. Once an attack
 * is over, the memory it grew is given back (memory-reclaim.ts).
 */
import {
  createServer,
  ServerResponse,
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  type Server,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import {
  createServer as createH2Server,
  type Http2Server,
  type IncomingHttpHeaders as Http2Headers,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { constants as cryptoConstants } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { handleRequest, handleUpgrade, type ListenerContext } from './handle-request.ts';
import type { SnapshotSource } from '../snapshot/types.ts';
import { openHttp2Exchange } from './http2-exchange.ts';
import { rawErrorReply } from './local-reply.ts';
import type { RequestContext } from './request-context.ts';
import { createAlpnCallback, createSniCallback, kHello, type TlsHooks } from './tls-sni.ts';
import { MAX_HELLO_BYTES, parseClientHello, type ClientHello } from '../tls/client-hello.ts';
import { passthroughRouteFor, pipePassthrough } from './passthrough.ts';
import type { TcpConnectionObserver } from '../observability/request-metrics.ts';
import {
  checkClientCertificate,
  checkNegotiated,
  failureOfClientError,
  serverOfSocket,
} from './tls-checks.ts';
import { listenOn } from './listen.ts';
import { admitConnection, principalOf } from './admit-connection.ts';
import type { FilterRuntime } from './filters/filter.ts';
import { Http2Sessions } from './http2-sessions.ts';
import { noteAbuse } from './memory-reclaim.ts';
import { mustWait, waitTurn } from './pipelining.ts';

/**
 * Client-initiated TLS 1.2 renegotiation is refused, as BoringSSL (Envoy) refuses it: every
 * renegotiation is a full handshake the client makes the server pay for. OpenSSL reads the option
 * from the context a connection starts with (this server's default), so the contexts the SNI
 * callback switches to need not carry it; the client gets no_renegotiation and gives up.
 */
const NO_RENEGOTIATION = cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/** Envoy's max_request_headers_kb default is 60 KiB; the slack covers the request line. */
export const MAX_HEADER_BYTES = 60 * 1024 + 1024;

export interface ListenerTimeouts {
  /** A client that has not finished its headers by then gets 408 (slowloris). Default 60 s. */
  readonly headersTimeoutMs?: number;
  /** Idle keep-alive connections close after this. Envoy's downstream idle timeout is 1 h (DP-9). */
  readonly keepAliveTimeoutMs?: number;
  /** How often Node checks the headers timeout. Default 1 s (Node's 30 s makes 408s late). */
  readonly checkIntervalMs?: number;
}

export interface HttpListenerOptions {
  /** Configured Gateway port: the snapshot's listener key. */
  readonly port: number;
  /** Port actually bound (the configured one, or 0 in tests). */
  readonly bindPort: number;
  readonly bind: string;
  readonly source: SnapshotSource;
  readonly serverHeader: () => string;
  readonly timeouts?: ListenerTimeouts;
  readonly onDone?: ((ctx: RequestContext) => void) | null;
  /** Terminated TLS (HTTPS listener); absent = plaintext. */
  readonly tls?: TlsHooks | null;
  readonly http2?: Http2Limits;
  /** ACME HTTP-01: the key authorisation for a token, or null (plaintext listeners only). */
  readonly acmeHttpToken?: ListenerContext['acmeHttpToken'];
  /** istio_tcp_* for passthrough and tcp-route connections; null = not counted. */
  readonly tcp?: TcpConnectionObserver | null;
  /** The request pipeline's long-lived state (JWKS, decision metrics). */
  readonly filters: FilterRuntime;
}

/** HTTP/2 bounds (nghttp2 settings Node exposes) and the rapid-reset budget. */
export interface Http2Limits {
  readonly maxConcurrentStreams?: number;
  /** Streams a client may reset (RST_STREAM) per session beyond the ones it let complete. */
  readonly maxResetStreams?: number;
}

/**
 * The HTTP/1 response class of one listener: a head written once the listener drains says
 * `Connection: close`, in-flight requests' included, so every client leaves the connection after
 * its answer (Envoy's drain). Node reads `shouldKeepAlive` when it writes the head.
 */
function drainingResponse(lc: ListenerContext): typeof ServerResponse {
  const writeHead = ServerResponse.prototype.writeHead;
  class DrainingResponse extends ServerResponse {}
  DrainingResponse.prototype.writeHead = function (
    this: ServerResponse,
    status: number,
    reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): ServerResponse {
    if (lc.draining) this.shouldKeepAlive = false;
    return (writeHead as (s: number, r: unknown, h: unknown) => ServerResponse).call(
      this,
      status,
      reason,
      headers,
    );
  } as typeof writeHead;
  return DrainingResponse as typeof ServerResponse;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const up = req.headers.upgrade;
  return typeof up === 'string' && up.length === 9 && up.toLowerCase() === 'websocket';
}

/** Envoy-like answers for requests llhttp refused (DP-4). */
function clientErrorStatus(code: string | undefined, reason: string | undefined): [number, string] | null {
  // A TLS failure on an established connection (a fatal alert, a refused renegotiation): nothing
  // can be written on it any more; it is closed.
  if (code !== undefined && code.startsWith('ERR_SSL_')) return null;
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout'];
    case 'HPE_INVALID_TRANSFER_ENCODING':
      // Both Content-Length and Transfer-Encoding: 400 (Envoy refuses the pair unless
      // allow_chunked_length). A Transfer-Encoding other than chunked: 501, as Envoy's codec.
      if (reason !== undefined && reason.includes('Content-Length')) return [400, 'Bad Request'];
      return [501, 'Not Implemented'];
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ETIMEDOUT':
      return null;
    default:
      return [400, 'Bad Request'];
  }
}

/**
 * Reads until the first TLS record is complete (or `timeoutMs`, or MAX_HELLO_BYTES), puts the
 * bytes back, and reports the ClientHello (null: not TLS or malformed; the TLS server refuses it).
 * The hello's hints also reach the TLSSocket wrapped around this socket (kHello).
 */
function peekClientHello(socket: Socket, timeoutMs: number, done: (hello: ClientHello | null) => void): void {
  let buf: Buffer | null = null;
  const finish = (hello: ClientHello | null): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.pause();
    if (buf !== null) socket.unshift(buf);
    done(hello);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf === null ? chunk : Buffer.concat([buf, chunk]);
    const r = parseClientHello(buf);
    if (r.kind === 'hello') finish(r.hello);
    else if (r.kind === 'invalid' || buf.length >= MAX_HELLO_BYTES) finish(null);
  };
  const onClose = (): void => clearTimeout(timer);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  socket.on('data', onData);
  socket.once('close', onClose);
}

export class HttpListener {
  readonly port: number;
  readonly server: Server | HttpsServer;
  private readonly opts: HttpListenerOptions;
  private readonly upgraded = new Set<Duplex>();
  private readonly sessions: Http2Sessions;
  private readonly lc: ListenerContext;
  private readonly h2: Http2Server;
  private boundPortValue = 0;
  /** Peek each ClientHello before TLS (passthrough routes, RSA+ECDSA credentials); set per apply. */
  private peekHello = false;
  /** Accepted connections that have not sent their first bytes yet: idle, closed first on close(). */
  private readonly peeking = new Set<Socket>();

  constructor(opts: HttpListenerOptions) {
    this.opts = opts;
    this.port = opts.port;
    const t = opts.timeouts ?? {};
    const headersTimeout = t.headersTimeoutMs ?? 60_000;
    const keepAliveTimeout = t.keepAliveTimeoutMs ?? 3_600_000;
    const tlsHooks = opts.tls ?? null;
    const lc: ListenerContext = {
      port: opts.port,
      scheme: tlsHooks === null ? 'http' : 'https',
      source: opts.source,
      onDone: opts.onDone ?? null,
      draining: false,
      acmeHttpToken: tlsHooks === null ? (opts.acmeHttpToken ?? null) : null,
      filters: opts.filters,
    };
    this.lc = lc;
    const httpOptions = {
      maxHeaderSize: MAX_HEADER_BYTES,
      insecureHTTPParser: false,
      // A missing Host is answered by the handler (400 with Envoy's headers), not by Node.
      requireHostHeader: false,
      // VS-9: repeated headers are matched comma-joined, as Envoy does.
      joinDuplicateHeaders: true,
      headersTimeout,
      // No whole-request deadline: uploads may be long; Istio has none by default.
      requestTimeout: 0,
      keepAliveTimeout,
      connectionsCheckingInterval: t.checkIntervalMs ?? Math.min(1_000, headersTimeout),
      shouldUpgradeCallback: isWebSocketUpgrade,
      ServerResponse: drainingResponse(lc),
    };
    const server: Server | HttpsServer =
      tlsHooks === null
        ? createServer(httpOptions)
        : createHttpsServer({
            ...httpOptions,
            SNICallback: createSniCallback(opts.source, opts.port, tlsHooks),
            ALPNCallback: createAlpnCallback(true, tlsHooks, opts.source, opts.port),
            // Port-wide bounds come from setTlsDefaults(); each server's own are checked after the handshake.
            minVersion: 'TLSv1.2',
            secureOptions: NO_RENEGOTIATION,
          });
    const limits = opts.http2 ?? {};
    this.h2 = createH2Server({
      maxHeaderListPairs: 256,
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      maxSettings: 32,
      maxOutstandingPings: 10,
      maxSessionMemory: 10,
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams ?? 100,
        maxHeaderListSize: MAX_HEADER_BYTES,
        enablePush: false,
      },
    } as Parameters<typeof createH2Server>[0]);
    // The stream API, not the compat layer's request/response pair (http2-exchange.ts).
    this.h2.on(
      'stream',
      (stream: ServerHttp2Stream, headers: Http2Headers, _flags: number, rawHeaders: string[]) => {
        const res = openHttp2Exchange(stream, headers, rawHeaders);
        if (res !== null)
          handleRequest(lc, res.req as unknown as IncomingMessage, res as unknown as ServerResponse);
      },
    );
    this.sessions = new Http2Sessions({
      idleTimeoutMs: keepAliveTimeout,
      maxResets: limits.maxResetStreams ?? 200,
      draining: () => lc.draining,
      onAbuse: noteAbuse,
    });
    this.h2.on('session', (session: ServerHttp2Session) => this.sessions.track(session));

    // HTTP/1.1 pipelining: one request at a time per connection, in order (pipelining.ts).
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (mustWait(req.socket, res)) waitTurn(req.socket, res, () => handleRequest(lc, req, res));
      else handleRequest(lc, req, res);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
      if (mustWait(socket, null)) waitTurn(socket, null, () => handleUpgrade(lc, req, socket, head));
      else handleUpgrade(lc, req, socket, head);
    });
    server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Duplex) => {
      const reply = clientErrorStatus(err.code, err.reason);
      const s = socket as Socket & { _httpMessage?: ServerResponse | null };
      if (reply !== null && s.writable && (s._httpMessage == null || !s._httpMessage.headersSent)) {
        s.end(rawErrorReply(reply[0], reply[1], opts.serverHeader()));
      } else {
        s.destroy();
      }
    });
    if (tlsHooks === null) this.interceptPlaintext(server);
    else this.interceptTls(server as HttpsServer, tlsHooks);
    this.server = server;
  }

  /** h2c prior knowledge (GW-5): the first bytes decide between llhttp and an HTTP/2 session. */
  private interceptPlaintext(server: Server): void {
    const builtin = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    const h2 = this.h2;
    const peekMs = this.opts.timeouts?.headersTimeoutMs ?? 60_000;
    const peeking = this.peeking;
    server.on('connection', (socket: Socket) => {
      peeking.add(socket);
      const timer = setTimeout(() => socket.destroy(), peekMs);
      timer.unref();
      const onData = (chunk: Buffer): void => {
        clearTimeout(timer);
        peeking.delete(socket);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.pause();
        socket.unshift(chunk);
        const n = Math.min(chunk.length, H2_PREFACE.length);
        if (n >= 3 && chunk.compare(H2_PREFACE, 0, n, 0, n) === 0) {
          // The session takes the bytes already read from the socket's buffer, then the handle.
          h2.emit('connection', socket);
        } else {
          for (const l of builtin) l.call(server, socket);
          socket.resume();
        }
      };
      const onClose = (): void => {
        clearTimeout(timer);
        peeking.delete(socket);
      };
      socket.on('data', onData);
      socket.once('close', onClose);
    });
  }

  /** Whether connections are peeked for their ClientHello first (reconcile sets it per snapshot). */
  setPeekClientHello(on: boolean): void {
    this.peekHello = on;
  }

  /**
   * Before TLS: when peeking, read the ClientHello (SNI, ECDSA support) from the socket without
   * consuming it; a passthrough SNI is piped on encrypted, anything else goes to the TLS server,
   * which reads the buffered bytes first.
   */
  private interceptTlsConnections(server: HttpsServer): void {
    const builtin = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    const source = this.opts.source;
    const port = this.port;
    const peekMs = Math.min(this.opts.timeouts?.headersTimeoutMs ?? 60_000, 10_000);
    const toTls = (socket: Socket): void => {
      for (const l of builtin) l.call(server, socket);
    };
    server.on('connection', (socket: Socket) => {
      if (!this.peekHello) return toTls(socket);
      this.peeking.add(socket);
      socket.once('close', () => this.peeking.delete(socket));
      peekClientHello(socket, peekMs, (hello) => {
        this.peeking.delete(socket);
        if (hello === null) return toTls(socket);
        (socket as Socket & { [kHello]?: ClientHello })[kHello] = hello;
        const listener = source.get().listeners.get(port);
        const route = listener === undefined ? null : passthroughRouteFor(listener, hello.sni);
        if (route !== null) {
          // AuthorizationPolicy on passthrough connections: decided before anything is piped.
          if (!admitConnection(listener!.tcpFilters, socket, port, hello.sni, null, this.opts.filters)) {
            socket.destroy();
            return;
          }
          // Tunnels are cut with WebSockets when a drain's grace ends.
          this.upgraded.add(socket);
          socket.once('close', () => this.upgraded.delete(socket));
          pipePassthrough(socket, route, this.opts.tcp ?? null);
        } else if (listener !== undefined && listener.tlsServers.length === 0) socket.destroy();
        else toTls(socket);
      });
    });
  }

  /** ALPN h2 sockets go to the HTTP/2 session handling; the rest to node:https's HTTP/1.1. */
  private interceptTls(server: HttpsServer, hooks: TlsHooks): void {
    this.interceptTlsConnections(server);
    const builtin = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    const h2 = this.h2;
    const source = this.opts.source;
    const port = this.port;
    server.on('secureConnection', (socket: TLSSocket) => {
      const failure = checkNegotiated(source, port, socket) ?? checkClientCertificate(source, port, socket);
      if (failure !== null) {
        hooks.onHandshake(false, failure);
        socket.destroy();
        return;
      }
      hooks.onHandshake(true, null);
      const chosen = serverOfSocket(source, port, socket);
      const tcpRoute = chosen?.tcpRoute ?? null;
      if (tcpRoute !== null) {
        const sni = typeof socket.servername === 'string' ? socket.servername : '';
        if (
          !admitConnection(
            chosen!.tcpFilters,
            socket,
            port,
            sni,
            principalOf(socket, chosen),
            this.opts.filters,
          )
        ) {
          socket.destroy();
          return;
        }
        // GW-5 TLS terminated into a tcp route: the plaintext is piped on.
        this.upgraded.add(socket);
        socket.once('close', () => this.upgraded.delete(socket));
        pipePassthrough(socket, tcpRoute, this.opts.tcp ?? null);
      } else if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else for (const l of builtin) l.call(server, socket);
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      // Failures the SNI callback already counted carry no OpenSSL code.
      if (err.code === undefined) return;
      hooks.onHandshake(false, failureOfClientError(source, port, socket, err.code));
    });
  }

  /**
   * The port's default TLS context (clients without SNI, GW-14): the `*` server's, or one without a
   * certificate (every such handshake fails). Version bounds span every server on the port, since
   * OpenSSL keeps the first context's bounds; each server's own floor is checked after the handshake.
   */
  setTlsDefaults(options: import('node:tls').SecureContextOptions): void {
    (this.server as HttpsServer).setSecureContext({
      ...options,
      secureOptions: (options.secureOptions ?? 0) | NO_RENEGOTIATION,
    });
  }

  async listen(): Promise<void> {
    this.boundPortValue = await listenOn(this.server, this.opts.bind, this.opts.bindPort);
  }

  /** From now on every response says `Connection: close`; the listener keeps accepting. */
  startDraining(): void {
    this.lc.draining = true;
    this.sessions.closeAll();
  }

  get boundPort(): number {
    return this.boundPortValue;
  }

  /**
   * Stop accepting; in-flight requests finish, idle keep-alive connections close now, and after
   * `graceMs` whatever is left (including WebSockets and HTTP/2 sessions) is cut.
   */
  close(graceMs: number): Promise<void> {
    this.lc.draining = true;
    const server = this.server;
    // GOAWAY: no new streams, open ones finish.
    this.sessions.closeAll();
    for (const s of this.peeking) s.destroy();
    this.peeking.clear();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      if (!server.listening) {
        resolve();
        return;
      }
      // Keep-alive connections become idle as their in-flight responses finish; close them as
      // they do, so a drain ends when the last request ends rather than at the deadline.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      sweep.unref();
      const force = (): void => {
        server.closeAllConnections();
        for (const s of this.upgraded) s.destroy();
        this.upgraded.clear();
        this.sessions.destroyAll();
      };
      server.close(() => {
        clearInterval(sweep);
        if (timer !== null) clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
      if (graceMs <= 0) force();
      else {
        timer = setTimeout(force, graceMs);
        timer.unref();
      }
    });
  }
}

/**
 * HTTP/2 to one upstream endpoint (DP-9) on node:http2, behind the dispatch interface forward.ts
 * uses for undici pools. undici's own HTTP/2 client is not used here: it cannot send request
 * trailers (client-h2.js: "TODO: add support for sending trailers"), and it completes a request
 * on the peer's trailers as soon as they arrive, dropping response data still buffered behind a
 * paused stream (a gRPC stream to a slow client lost its last messages when measured). Here the
 * response completes on the stream's end, after every byte, and request trailers follow the body.
 *
 * Connections: h2c (prior knowledge) in plain text, ALPN `h2` over TLS. A request takes the
 * first connection with a free stream (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, capped by
 * `maxConcurrentStreams`), else opens one up to `maxConnections`, else waits. A connection
 * retires after `maxRequestsPerConnection` streams, on GOAWAY, and after `idleTimeout` unused;
 * `http2KeepAlive` PINGs it. Failing to connect fails the requests waiting for a connection.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import {
  connect as h2Connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';

/** What a request asks of the pool: undici's dispatch options, the fields forward.ts sets. */
export interface H2Request {
  readonly path: string;
  readonly method: string;
  /** Flat name/value list; `host` becomes `:authority`. */
  readonly headers: readonly string[];
  readonly body: Readable | null;
  readonly upgrade?: string | null;
}

/**
 * undici's (legacy) dispatch handler, as forward.ts's Attempt implements it, plus what only
 * HTTP/2 has: a response that ends with its headers (gRPC "trailers-only") and request chunks
 * as they are sent (gRPC message counts).
 */
export interface H2Handler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  /** `trailers`: flat name/value list (pseudo-headers dropped), or null when none came. */
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
  onHeadersOnly?(statusCode: number, rawHeaders: string[]): void;
  onRequestData?(chunk: Buffer): void;
}

export interface H2PoolOptions {
  readonly address: string;
  readonly port: number;
  /** tls.connect options (secure context, SNI, name check); null = h2c. */
  readonly tls: ConnectionOptions | null;
  readonly connectTimeoutMs: number;
  /** 0 = never. */
  readonly idleTimeoutMs: number;
  /** Infinity = unlimited. */
  readonly maxConnections: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** 0 = what the peer allows. */
  readonly maxConcurrentStreams: number;
  /** 0 = no PINGs. */
  readonly keepAliveIntervalMs: number;
  readonly keepAliveTimeoutMs: number;
}

interface Conn {
  session: ClientHttp2Session | null;
  ready: boolean;
  /** No new streams (GOAWAY, request budget spent, pool closing). */
  retired: boolean;
  active: number;
  started: number;
  limit: number;
  idleTimer: NodeJS.Timeout | null;
  pingTimer: NodeJS.Timeout | null;
}

interface Pending {
  readonly req: H2Request;
  readonly handler: H2Handler;
  cancelled: boolean;
}

/** Peers that have not sent SETTINGS yet are assumed to allow nghttp2's usual 100 streams. */
const DEFAULT_STREAMS = 100;
const PSEUDO = 58; // ':'

/** Connection-specific headers an HTTP/2 request may not carry (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

function errorWithCode(message: string, code: string): Error {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}

export class H2Pool {
  readonly #opts: H2PoolOptions;
  readonly #authority: string;
  readonly #conns: Conn[] = [];
  readonly #pending: Pending[] = [];
  #closing = false;

  constructor(opts: H2PoolOptions) {
    this.#opts = opts;
    this.#authority =
      (opts.tls !== null ? 'https://' : 'http://') +
      (opts.address.includes(':') ? '[' + opts.address + ']' : opts.address) +
      ':' +
      opts.port;
  }

  get stats(): { connected: number; pending: number } {
    let connected = 0;
    for (const c of this.#conns) if (c.ready) connected++;
    return { connected, pending: this.#pending.length };
  }

  dispatch(req: H2Request, handler: H2Handler): boolean {
    const p: Pending = { req, handler, cancelled: false };
    if (req.upgrade != null) {
      // An upgrade over HTTP/2 needs extended CONNECT (RFC 8441) from the upstream.
      queueMicrotask(() =>
        handler.onError(
          errorWithCode('WebSocket upgrades to HTTP/2 upstreams are not supported', 'UND_ERR_NOT_SUPPORTED'),
        ),
      );
      return true;
    }
    if (this.#closing) {
      queueMicrotask(() => handler.onError(errorWithCode('the pool is closed', 'UND_ERR_CLOSED')));
      return true;
    }
    // Until it has a stream, aborting the request just takes it out of the queue.
    handler.onConnect(() => {
      if (p.cancelled) return;
      p.cancelled = true;
      const i = this.#pending.indexOf(p);
      if (i >= 0) this.#pending.splice(i, 1);
    });
    const conn = this.#available();
    if (conn !== null) this.#start(conn, p);
    else {
      this.#pending.push(p);
      if (this.#conns.length < this.#opts.maxConnections && !this.#conns.some((c) => !c.ready && !c.retired))
        this.#open();
    }
    return true;
  }

  #available(): Conn | null {
    for (const c of this.#conns)
      if (c.ready && !c.retired && c.active < c.limit && !c.session!.closed && !c.session!.destroyed)
        return c;
    return null;
  }

  #open(): void {
    const o = this.#opts;
    const conn: Conn = {
      session: null,
      ready: false,
      retired: false,
      active: 0,
      started: 0,
      limit: o.maxConcurrentStreams > 0 ? o.maxConcurrentStreams : DEFAULT_STREAMS,
      idleTimer: null,
      pingTimer: null,
    };
    this.#conns.push(conn);
    let socket: Socket;
    if (o.tls !== null) {
      socket = tlsConnect({ ...o.tls, host: o.address, port: o.port, ALPNProtocols: ['h2'] });
    } else {
      socket = netConnect({ host: o.address, port: o.port });
    }
    socket.setNoDelay(true);
    const connectTimer = setTimeout(
      () => {
        socket.destroy(errorWithCode('connect timeout', 'UND_ERR_CONNECT_TIMEOUT'));
      },
      o.connectTimeoutMs > 0 ? o.connectTimeoutMs : 10_000,
    );
    let connected = false;
    const onSocketError = (err: Error): void => {
      clearTimeout(connectTimer);
      if (!connected) this.#connectFailed(conn, err);
    };
    socket.once('error', onSocketError);
    socket.once(o.tls !== null ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      connected = true;
      socket.off('error', onSocketError);
      if (o.tls !== null && (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol !== 'h2') {
        socket.destroy();
        this.#connectFailed(
          conn,
          errorWithCode('the upstream did not agree to HTTP/2 (ALPN h2)', 'ERR_HTTP2_ERROR'),
        );
        return;
      }
      this.#attach(conn, socket);
    });
  }

  #attach(conn: Conn, socket: Duplex): void {
    const session = h2Connect(this.#authority, {
      createConnection: () => socket,
      settings: { enablePush: false },
    });
    conn.session = session;
    let failure: Error | null = null;
    // Stream errors reach their exchanges; the session's own only matter before it is ready.
    session.on('error', (err) => {
      failure ??= err;
    });
    session.on('remoteSettings', (s) => {
      const peer = s.maxConcurrentStreams ?? DEFAULT_STREAMS;
      const own = this.#opts.maxConcurrentStreams;
      conn.limit = own > 0 ? Math.min(own, peer) : peer;
      this.#drain();
    });
    session.once('connect', () => {
      conn.ready = true;
      this.#startKeepAlive(conn);
      this.#drain();
      this.#idleCheck(conn);
    });
    session.once('goaway', () => this.#retire(conn));
    session.once('close', () => {
      if (!conn.ready) {
        // Closed before it could be used: not an HTTP/2 server (h2c to HTTP/1.1), or it hung up.
        this.#connectFailed(
          conn,
          failure ??
            errorWithCode('the upstream closed the connection before speaking HTTP/2', 'ERR_HTTP2_ERROR'),
        );
        return;
      }
      conn.ready = false;
      conn.retired = true;
      this.#stopTimers(conn);
      const i = this.#conns.indexOf(conn);
      if (i >= 0) this.#conns.splice(i, 1);
      // Requests still waiting get a new connection (one that failed before connecting fails them).
      if (this.#pending.length > 0 && !this.#closing) this.#drain();
    });
  }

  #connectFailed(conn: Conn, err: Error): void {
    conn.retired = true;
    const i = this.#conns.indexOf(conn);
    if (i >= 0) this.#conns.splice(i, 1);
    // As Envoy's pool: a failed connection attempt fails the requests waiting for one.
    const waiting = this.#pending.splice(0);
    for (const p of waiting) if (!p.cancelled) p.handler.onError(err);
  }

  #drain(): void {
    while (this.#pending.length > 0) {
      const p = this.#pending[0]!;
      if (p.cancelled) {
        this.#pending.shift();
        continue;
      }
      const conn = this.#available();
      if (conn === null) break;
      this.#pending.shift();
      this.#start(conn, p);
    }
    if (
      this.#pending.length > 0 &&
      !this.#closing &&
      this.#conns.length < this.#opts.maxConnections &&
      !this.#conns.some((c) => !c.ready && !c.retired)
    )
      this.#open();
  }

  #retire(conn: Conn): void {
    conn.retired = true;
    if (conn.active === 0) conn.session?.close();
    this.#drain();
  }

  #idleCheck(conn: Conn): void {
    if (conn.active > 0 || this.#opts.idleTimeoutMs <= 0 || conn.retired) return;
    conn.idleTimer = setTimeout(() => {
      conn.idleTimer = null;
      if (conn.active === 0) this.#retire(conn);
    }, this.#opts.idleTimeoutMs);
    conn.idleTimer.unref();
  }

  #startKeepAlive(conn: Conn): void {
    const every = this.#opts.keepAliveIntervalMs;
    if (every <= 0) return;
    conn.pingTimer = setInterval(() => {
      const session = conn.session;
      if (session === null || session.destroyed) return;
      const deadline = setTimeout(() => session.destroy(), this.#opts.keepAliveTimeoutMs);
      deadline.unref();
      session.ping(() => clearTimeout(deadline));
    }, every);
    conn.pingTimer.unref();
  }

  #stopTimers(conn: Conn): void {
    if (conn.idleTimer !== null) clearTimeout(conn.idleTimer);
    if (conn.pingTimer !== null) clearInterval(conn.pingTimer);
    conn.idleTimer = null;
    conn.pingTimer = null;
  }

  #start(conn: Conn, p: Pending): void {
    const session = conn.session!;
    const { req, handler } = p;
    const headers: string[] = [
      ':method',
      req.method,
      ':path',
      req.path,
      ':scheme',
      this.#opts.tls ? 'https' : 'http',
    ];
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!.toLowerCase();
      if (name === 'host') headers.push(':authority', h[i + 1]!);
      else if (!CONNECTION_SPECIFIC.has(name)) headers.push(name, h[i + 1]!);
    }
    const body = req.body;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers as unknown as IncomingHttpHeaders, {
        endStream: body === null,
        waitForTrailers: body !== null,
      });
    } catch (err) {
      queueMicrotask(() => handler.onError(err as Error));
      return;
    }
    if (conn.idleTimer !== null) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = null;
    }
    conn.active++;
    conn.started++;
    if (this.#opts.maxRequestsPerConnection > 0 && conn.started >= this.#opts.maxRequestsPerConnection)
      conn.retired = true;
    new H2Exchange(stream, p, body, () => {
      conn.active--;
      if (conn.retired) {
        if (conn.active === 0) conn.session?.close();
      } else this.#idleCheck(conn);
      this.#drain();
    });
  }

  close(): Promise<void> {
    this.#closing = true;
    // Requests still waiting for a stream would wait for ever: they fail as a closed connection.
    for (const p of this.#pending.splice(0))
      if (!p.cancelled) p.handler.onError(errorWithCode('the pool is closing', 'UND_ERR_CLOSED'));
    const closing: Promise<void>[] = [];
    for (const c of this.#conns) {
      c.retired = true;
      const s = c.session;
      if (s === null || s.destroyed) continue;
      closing.push(new Promise((resolve) => s.close(() => resolve())));
    }
    return Promise.all(closing).then(() => undefined);
  }

  destroy(): Promise<void> {
    this.#closing = true;
    for (const p of this.#pending.splice(0))
      if (!p.cancelled) p.handler.onError(errorWithCode('the pool was destroyed', 'UND_ERR_DESTROYED'));
    for (const c of this.#conns) {
      this.#stopTimers(c);
      c.session?.destroy();
    }
    return Promise.resolve();
  }
}

/** One request/response on one stream: body and trailers up, response and trailers down. */
class H2Exchange {
  readonly stream: ClientHttp2Stream;
  readonly p: Pending;
  readonly body: Readable | null;
  readonly onDone: () => void;
  done = false;
  trailers: string[] | null = null;

  constructor(stream: ClientHttp2Stream, p: Pending, body: Readable | null, onDone: () => void) {
    this.stream = stream;
    this.p = p;
    this.body = body;
    this.onDone = onDone;
    // The attempt's abort now resets this stream (RST_STREAM CANCEL); the connection stays.
    p.handler.onConnect(() => {
      if (this.done) return;
      this.finish();
      p.cancelled = true;
      if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
      this.detachBody();
    });
    stream.on('response', (headers, flags, raw) =>
      this.onResponse(headers, flags, raw as unknown as string[]),
    );
    stream.on('trailers', (_h, _f, raw) => {
      this.trailers = withoutPseudo(raw as unknown as string[]);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.done) return;
      if (!p.handler.onData(chunk)) stream.pause();
    });
    stream.on('end', () => {
      if (this.done) return;
      this.finish();
      p.handler.onComplete(this.trailers);
    });
    stream.on('error', (err) => this.fail(err));
    stream.on('close', () => {
      if (this.done) return;
      const code = stream.rstCode ?? constants.NGHTTP2_NO_ERROR;
      this.fail(
        errorWithCode(
          `the upstream reset the stream (HTTP/2 error code ${code})`,
          code === constants.NGHTTP2_NO_ERROR ? 'UND_ERR_SOCKET' : 'ERR_HTTP2_STREAM_ERROR',
        ),
      );
    });
    if (body !== null) this.sendBody(body);
  }

  onResponse(headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
    if (this.done) return;
    const status = Number(headers[':status']);
    const list = withoutPseudo(raw);
    const handler = this.p.handler;
    if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 && handler.onHeadersOnly !== undefined) {
      this.finish();
      handler.onHeadersOnly(status, list);
      return;
    }
    const stream = this.stream;
    if (!handler.onHeaders(status, list, () => stream.resume(), '')) stream.pause();
  }

  sendBody(body: Readable): void {
    const stream = this.stream;
    const handler = this.p.handler;
    const onData = (chunk: Buffer): void => {
      handler.onRequestData?.(chunk);
      if (!stream.write(chunk)) {
        body.pause();
        stream.once('drain', () => body.resume());
      }
    };
    const onEnd = (): void => {
      stream.end();
    };
    stream.once('wantTrailers', () => {
      // An HTTP/2 client's trailers follow the body (an empty list ends the stream with empty
      // DATA); an HTTP/1.1 client's chunked trailers are dropped, as Envoy's HTTP/1 codec does.
      const req = body as Readable & { rawTrailers?: string[]; httpVersionMajor?: number };
      const raw = req.httpVersionMajor === 2 ? req.rawTrailers : undefined;
      const out: Record<string, string> = {};
      if (raw !== undefined)
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i]!.toLowerCase();
          if (name.charCodeAt(0) === PSEUDO || CONNECTION_SPECIFIC.has(name)) continue;
          out[name] = out[name] === undefined ? raw[i + 1]! : out[name] + ', ' + raw[i + 1]!;
        }
      try {
        stream.sendTrailers(out);
      } catch {
        stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    body.on('data', onData);
    body.once('end', onEnd);
    this.detachBody = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
    };
    if (body.readableEnded) onEnd();
  }

  detachBody(): void {}

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
  }

  fail(err: Error): void {
    if (this.done) return;
    this.finish();
    this.detachBody();
    if (!this.p.cancelled) this.p.handler.onError(err);
  }
}

function withoutPseudo(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.charCodeAt(0) !== PSEUDO) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

/**
 * One HTTP/2 connection to an upstream endpoint (DP-9) on node:http2; pools.ts decides when one
 * is opened and which request takes which stream, under the cluster's circuit breakers (DR-6),
 * as it does with one undici Client per HTTP/1.1 connection. undici's own HTTP/2 client is not
 * used: it cannot send request trailers (client-h2.js: "TODO: add support for sending
 * trailers"), and it completes a request on the peer's trailers as soon as they arrive, dropping
 * response data still buffered behind a paused stream (a gRPC stream to a slow client lost its
 * last messages when measured). Here the response completes on the stream's end, after every
 * byte, and request trailers follow the body.
 *
 * h2c (prior knowledge) in plain text, ALPN `h2` over TLS. A connection takes streams up to the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS, capped by `maxConcurrentStreams`; it retires (no new
 * streams, closed once its streams are done) on GOAWAY, after `idleTimeout` unused, or when
 * pools.ts says so; `http2KeepAlive` PINGs it.
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
import { codedError } from './upstream-error.ts';

/** What a request asks of the connection: undici's dispatch options, the fields forward.ts sets. */
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

export interface H2ConnectionOptions {
  readonly address: string;
  readonly port: number;
  /** tls.connect options (secure context, SNI, name check); null = h2c. */
  readonly tls: ConnectionOptions | null;
  readonly connectTimeoutMs: number;
  /** 0 = never. */
  readonly idleTimeoutMs: number;
  /** 0 = what the peer allows. */
  readonly maxConcurrentStreams: number;
  /** 0 = no PINGs. */
  readonly keepAliveIntervalMs: number;
  readonly keepAliveTimeoutMs: number;
}

/** What pools.ts hears from a connection. */
export interface H2ConnectionEvents {
  /** The connection is ready, or the peer allowed more streams: waiting requests may start. */
  onCapacity(conn: H2Connection): void;
  /** A stream is over (completed, failed or cancelled): its request stops counting. */
  onStreamDone(conn: H2Connection): void;
  /**
   * The connection is gone and stops counting: closed, or failed before it was ready
   * (`connectError`: the requests waiting for it fail with that).
   */
  onGone(conn: H2Connection, connectError: Error | null): void;
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

export class H2Connection {
  readonly #opts: H2ConnectionOptions;
  readonly #events: H2ConnectionEvents;
  #session: ClientHttp2Session | null = null;
  #socket: Socket | null = null;
  /** Streams may start (the session is connected). */
  ready = false;
  /** No new streams (GOAWAY, idle, request budget spent, age, pool closing). */
  retired = false;
  /** Closed or failed: gone from pools.ts's counts. */
  gone = false;
  active = 0;
  started = 0;
  limit: number;
  #idleTimer: NodeJS.Timeout | null = null;
  #pingTimer: NodeJS.Timeout | null = null;

  constructor(opts: H2ConnectionOptions, events: H2ConnectionEvents) {
    this.#opts = opts;
    this.#events = events;
    this.limit = opts.maxConcurrentStreams > 0 ? opts.maxConcurrentStreams : DEFAULT_STREAMS;
    let socket: Socket;
    if (opts.tls !== null) {
      socket = tlsConnect({ ...opts.tls, host: opts.address, port: opts.port, ALPNProtocols: ['h2'] });
    } else {
      socket = netConnect({ host: opts.address, port: opts.port });
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    const connectTimer = setTimeout(
      () => {
        socket.destroy(codedError('connect timeout', 'UND_ERR_CONNECT_TIMEOUT'));
      },
      opts.connectTimeoutMs > 0 ? opts.connectTimeoutMs : 10_000,
    );
    let connected = false;
    const onSocketError = (err: Error): void => {
      clearTimeout(connectTimer);
      if (!connected) this.#connectFailed(err);
    };
    socket.once('error', onSocketError);
    socket.once(opts.tls !== null ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      connected = true;
      socket.off('error', onSocketError);
      if (this.gone) {
        socket.destroy();
        return;
      }
      if (opts.tls !== null && (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol !== 'h2') {
        socket.destroy();
        this.#connectFailed(codedError('the upstream did not agree to HTTP/2 (ALPN h2)', 'ERR_HTTP2_ERROR'));
        return;
      }
      this.#attach(socket);
    });
  }

  /** A new stream may start here now. */
  get hasRoom(): boolean {
    const s = this.#session;
    return this.ready && !this.retired && this.active < this.limit && s !== null && !s.closed && !s.destroyed;
  }

  #attach(socket: Duplex): void {
    const o = this.#opts;
    const authority =
      (o.tls !== null ? 'https://' : 'http://') +
      (o.address.includes(':') ? '[' + o.address + ']' : o.address) +
      ':' +
      o.port;
    const session = h2Connect(authority, {
      createConnection: () => socket,
      settings: { enablePush: false },
    });
    this.#session = session;
    let failure: Error | null = null;
    // Stream errors reach their exchanges; the session's own only matter before it is ready.
    session.on('error', (err) => {
      failure ??= err;
    });
    session.on('remoteSettings', (s) => {
      const peer = s.maxConcurrentStreams ?? DEFAULT_STREAMS;
      const own = o.maxConcurrentStreams;
      this.limit = own > 0 ? Math.min(own, peer) : peer;
      if (this.ready) this.#events.onCapacity(this);
    });
    session.once('connect', () => {
      if (this.gone) return;
      this.ready = true;
      this.#startKeepAlive();
      this.#events.onCapacity(this);
      this.#afterStream();
    });
    session.once('goaway', () => this.retire());
    session.once('close', () => {
      if (this.gone) return;
      if (!this.ready) {
        // Closed before it could be used: not an HTTP/2 server (h2c to HTTP/1.1), or it hung up.
        this.#connectFailed(
          failure ??
            codedError('the upstream closed the connection before speaking HTTP/2', 'ERR_HTTP2_ERROR'),
        );
        return;
      }
      this.#goneNow(null);
    });
  }

  #connectFailed(err: Error): void {
    this.#socket?.destroy();
    this.#goneNow(err);
  }

  /** Leaves the counts once, whichever way the connection ended. */
  #goneNow(connectError: Error | null): void {
    if (this.gone) return;
    this.gone = true;
    this.ready = false;
    this.retired = true;
    this.#stopTimers();
    this.#events.onGone(this, connectError);
  }

  /** No new streams; the connection closes once the ones it carries are done. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.#afterStream();
  }

  /** Closes when retired and unused, else arms the idle timer. */
  #afterStream(): void {
    if (this.gone || !this.ready || this.active > 0) return;
    if (this.retired) {
      this.#close();
      return;
    }
    if (this.#opts.idleTimeoutMs <= 0 || this.#idleTimer !== null) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.active === 0) this.retire();
    }, this.#opts.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #close(): void {
    const session = this.#session;
    // It stops counting now, as an HTTP/1.1 connection does when it is closed.
    this.#goneNow(null);
    if (session !== null && !session.destroyed) session.close();
  }

  #startKeepAlive(): void {
    const every = this.#opts.keepAliveIntervalMs;
    if (every <= 0) return;
    this.#pingTimer = setInterval(() => {
      const session = this.#session;
      if (session === null || session.destroyed) return;
      const deadline = setTimeout(() => session.destroy(), this.#opts.keepAliveTimeoutMs);
      deadline.unref();
      session.ping(() => clearTimeout(deadline));
    }, every);
    this.#pingTimer.unref();
  }

  #stopTimers(): void {
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    this.#idleTimer = null;
    this.#pingTimer = null;
  }

  /**
   * Starts `req` on a new stream (the caller checked `hasRoom`, or the request is the one this
   * connection was opened for). `onStreamDone` follows exactly once, whatever happens.
   */
  start(req: H2Request, handler: H2Handler): void {
    const session = this.#session!;
    if (req.upgrade != null) {
      // An upgrade over HTTP/2 needs extended CONNECT (RFC 8441) from the upstream.
      this.#refuse(
        handler,
        codedError('WebSocket upgrades to HTTP/2 upstreams are not supported', 'UND_ERR_NOT_SUPPORTED'),
      );
      return;
    }
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
      // A session that refuses a stream takes no more.
      this.retired = true;
      this.#refuse(handler, err as Error);
      return;
    }
    if (this.#idleTimer !== null) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
    this.active++;
    this.started++;
    new H2Exchange(stream, handler, body, () => {
      this.active--;
      this.#events.onStreamDone(this);
      this.#afterStream();
    });
  }

  #refuse(handler: H2Handler, err: Error): void {
    queueMicrotask(() => {
      this.#events.onStreamDone(this);
      handler.onError(err);
      this.#afterStream();
    });
  }

  /** Ends the connection now; its streams fail (a connection not ready fails as closed). */
  destroy(): void {
    const session = this.#session;
    if (!this.ready && !this.gone)
      this.#connectFailed(codedError('the pool was destroyed', 'UND_ERR_DESTROYED'));
    else this.#goneNow(null);
    session?.destroy();
  }
}

/** One request/response on one stream: body and trailers up, response and trailers down. */
class H2Exchange {
  readonly stream: ClientHttp2Stream;
  readonly handler: H2Handler;
  readonly body: Readable | null;
  readonly onDone: () => void;
  done = false;
  /** The attempt aborted the stream: nothing more is said to it. */
  cancelled = false;
  trailers: string[] | null = null;

  constructor(stream: ClientHttp2Stream, handler: H2Handler, body: Readable | null, onDone: () => void) {
    this.stream = stream;
    this.handler = handler;
    this.body = body;
    this.onDone = onDone;
    // The attempt's abort now resets this stream (RST_STREAM CANCEL); the connection stays.
    handler.onConnect(() => {
      if (this.done) return;
      this.finish();
      this.cancelled = true;
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
      if (!handler.onData(chunk)) stream.pause();
    });
    stream.on('end', () => {
      if (this.done) return;
      this.finish();
      handler.onComplete(this.trailers);
    });
    stream.on('error', (err) => this.fail(err));
    stream.on('close', () => {
      if (this.done) return;
      const code = stream.rstCode ?? constants.NGHTTP2_NO_ERROR;
      this.fail(
        codedError(
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
    const handler = this.handler;
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
    const handler = this.handler;
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
    // A mirror's tee pauses the request until the primary reads it (mirror.ts): reading starts here.
    else body.resume();
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
    if (!this.cancelled) this.handler.onError(err);
  }
}

function withoutPseudo(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.charCodeAt(0) !== PSEUDO) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

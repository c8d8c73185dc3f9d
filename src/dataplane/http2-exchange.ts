/**
 * HTTP/2 streams through the same handler as HTTP/1.1 (DP-9), served on node:http2's stream API
 * rather than its compatibility layer: one request and one response object per stream, shaped as
 * much of IncomingMessage and ServerResponse as the data plane reads, and no more.
 *
 * - The request's rawHeaders are what forward copies upstream (which may be HTTP/1.1): no
 *   pseudo-headers, split cookies joined (RFC 9113 §8.2.3), and a body sent without
 *   content-length announced as chunked, in `headers` too, so body limits see it.
 * - The request is a Readable of the stream's body, attached to the stream only when read.
 * - The response goes out as one HEADERS frame and the body; it waits for trailers only when the
 *   upstream may send some (`expectTrailers`), so most streams end with their last DATA frame.
 * - A response is finished only when it was ended and its stream closed without an error code: a
 *   client that reset the stream (RST_STREAM CANCEL) before the end left (DC).
 */
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { kSentHeaders, kStreamBytesSent } from '../observability/finished-request.ts';
import { kExpectTrailers } from '../upstream/trailers.ts';

/** The connection facts the access log and spans read once the stream has closed. */
interface SocketFacts {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly servername: string | false | null | undefined;
  readonly encrypted: boolean;
}

/** Per session: the socket as the session exposes it, and its facts read once. */
interface SessionSocket {
  readonly live: TLSSocket;
  readonly facts: SocketFacts;
}

const kSessionSocket = Symbol('sluice.sessionSocket');
const kExchange = Symbol('sluice.h2exchange');

type TrackedSession = ServerHttp2Session & { [kSessionSocket]?: SessionSocket };
type ExchangeStream = ServerHttp2Stream & { [kExchange]?: Http2Response };

function sessionSocketOf(session: TrackedSession): SessionSocket {
  let s = session[kSessionSocket];
  if (s === undefined) {
    const live = session.socket as TLSSocket;
    s = {
      live,
      facts: {
        remoteAddress: live.remoteAddress,
        remotePort: live.remotePort,
        localAddress: live.localAddress,
        localPort: live.localPort,
        servername: live.servername,
        encrypted: live.encrypted === true,
      },
    };
    session[kSessionSocket] = s;
  }
  return s;
}

const READABLE_OPTIONS = { autoDestroy: false } as const;
const NO_TRAILERS: readonly string[] = [];

/** The request side: IncomingMessage's fields the data plane reads, and the body as a Readable. */
export class Http2Request extends Readable {
  readonly stream: ServerHttp2Stream;
  /** Node's header object of the stream, pseudo-headers included (`:authority`). */
  readonly headers: IncomingHttpHeaders;
  /** As forwarded upstream (see the file comment); filters may replace it (header-edits.ts). */
  rawHeaders: string[];
  rawTrailers: readonly string[];
  readonly method: string;
  readonly url: string;
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  readonly httpVersion = '2.0';
  private readonly sock: SessionSocket;
  /** HEADERS came with END_STREAM: the body ends when first read (no 'end' scheduled unread). */
  private readonly bodyless: boolean;
  private reading = false;
  private streamGone = false;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, raw: readonly string[]) {
    super(READABLE_OPTIONS);
    this.stream = stream;
    this.headers = headers;
    this.rawHeaders = upstreamRawHeaders(raw, headers, stream.endAfterHeaders);
    this.rawTrailers = NO_TRAILERS;
    // Trailers may arrive before anyone reads the body.
    if (!stream.endAfterHeaders) stream.on('trailers', onStreamTrailers);
    this.method = headers[':method'] as string;
    this.url = (headers[':path'] as string | undefined) ?? '';
    this.sock = sessionSocketOf(stream.session as TrackedSession);
    this.bodyless = stream.endAfterHeaders;
  }

  /** While the stream is open, the session's socket (TLS peer certificate, …); after, its facts. */
  get socket(): TLSSocket {
    return (this.streamGone ? this.sock.facts : this.sock.live) as TLSSocket;
  }

  get complete(): boolean {
    return this.bodyless || this.readableEnded || this.streamGone || this.stream.destroyed;
  }

  override _read(): void {
    if (this.bodyless || this.streamGone) {
      this.push(null);
      return;
    }
    if (this.reading) {
      process.nextTick(resumeStream, this.stream);
      return;
    }
    this.reading = true;
    const stream = this.stream;
    stream.on('data', onStreamData);
    stream.on('end', onStreamEnd);
  }

  /** The stream closed: the body ends here if it had not, and the request says so. */
  streamClosed(): void {
    this.streamGone = true;
    // A body nobody touched is left alone (no 'end' scheduled for no one).
    if (
      !this.readableEnded &&
      (this.reading || this.readableFlowing !== null || this.listenerCount('end') > 0)
    ) {
      this.push(null);
      // Not read yet: let 'end' come to whoever waits for it.
      if (!this.reading && this.readableFlowing === null) this.resume();
    }
    this.emit('close');
  }
}

function resumeStream(stream: ServerHttp2Stream): void {
  stream.resume();
}

function onStreamData(this: ExchangeStream, chunk: Buffer): void {
  const req = this[kExchange]?.req;
  if (req !== undefined && !req.push(chunk)) this.pause();
}

function onStreamEnd(this: ExchangeStream): void {
  this[kExchange]?.req.push(null);
}

function onStreamTrailers(
  this: ExchangeStream,
  _trailers: IncomingHttpHeaders,
  _flags: number,
  raw: readonly string[],
): void {
  const req = this[kExchange]?.req;
  if (req !== undefined) req.rawTrailers = raw;
}

/** See the file comment: the request headers as an HTTP/1.1 upstream reads them. */
function upstreamRawHeaders(
  src: readonly string[],
  headers: IncomingHttpHeaders,
  endAfterHeaders: boolean,
): string[] {
  const out: string[] = [];
  let cookie: string | null = null;
  let hasLength = false;
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!;
    const c = name.charCodeAt(0);
    if (c === 58 /* : */) continue;
    if (c === 99 /* c */) {
      if (name === 'cookie') {
        cookie = cookie === null ? src[i + 1]! : cookie + '; ' + src[i + 1]!;
        continue;
      }
      if (name === 'content-length') hasLength = true;
    }
    out.push(name, src[i + 1]!);
  }
  if (cookie !== null) out.push('cookie', cookie);
  if (!hasLength && !endAfterHeaders) {
    out.push('transfer-encoding', 'chunked');
    headers['transfer-encoding'] = 'chunked';
  }
  return out;
}

/** The response side: ServerResponse's methods the data plane calls, onto the stream. */
export class Http2Response extends EventEmitter {
  readonly stream: ServerHttp2Stream;
  readonly req: Http2Request;
  statusCode = 200;
  /** Read by HTTP/1 code paths only; HTTP/2 has no Connection header. */
  shouldKeepAlive = true;
  /** Body bytes handed to the stream (%BYTES_SENT%): the socket's counters span every stream. */
  [kStreamBytesSent] = 0;
  /** Set before the head goes out when the upstream may send trailers (upstream/trailers.ts). */
  [kExpectTrailers] = false;
  /** Headers set one by one (setHeader), sent with the head; null when none. */
  private pending: Record<string, string | string[]> | null = null;
  private trailers: Record<string, string> | null = null;
  private ending = false;
  /** The header list given to respond() (Node's `date` included): %RESP(X)% reads it. */
  [kSentHeaders]: readonly (string | number)[] | null = null;
  private drainWatched = false;
  /** respond() asked for 'wantTrailers': the exchange ends in sendTrailers(). */
  private trailersPending = false;

  constructor(stream: ServerHttp2Stream, req: Http2Request) {
    super();
    this.stream = stream;
    this.req = req;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /**
   * Read once the stream has closed: the response was ended and the stream closed without an
   * error code. Not the stream's own writableFinished, which its 'close' often precedes.
   */
  get writableFinished(): boolean {
    const s = this.stream;
    return s.writableEnded && !s.aborted && (s.rstCode ?? 0) === 0;
  }

  setHeader(name: string, value: string | string[]): this {
    (this.pending ??= Object.create(null) as Record<string, string | string[]>)[name.toLowerCase()] = value;
    return this;
  }

  getHeader(name: string): string | string[] | undefined {
    return this.pending?.[name.toLowerCase()];
  }

  addTrailers(trailers: Readonly<Record<string, string>>): void {
    this.trailers = this.trailers === null ? { ...trailers } : Object.assign(this.trailers, trailers);
  }

  /** `headers`: the flat name/value list the data plane builds for this response (taken, not copied). */
  writeHead(status: number, headers?: string[]): this {
    this.statusCode = status;
    this.respond(headers ?? null, false);
    return this;
  }

  write(chunk: Uint8Array | string): boolean {
    const stream = this.stream;
    if (stream.destroyed || stream.closed || this.ending) return false;
    if (!stream.headersSent) this.respond(null, false);
    // A HEAD request, 204 or 304: respond() ended the stream; a body has nowhere to go.
    if (stream.writableEnded) return true;
    this[kStreamBytesSent] += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    if (stream.write(chunk)) return true;
    // Backpressure: the stream's 'drain' is passed on from the first time it is needed.
    if (!this.drainWatched) {
      this.drainWatched = true;
      stream.on('drain', onStreamDrain);
    }
    return false;
  }

  end(chunk?: Uint8Array | string): this {
    if (this.ending) return this;
    this.ending = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return this;
    const empty = chunk === undefined || chunk.length === 0;
    if (!stream.headersSent) this.respond(null, empty);
    // A HEAD request, 204 or 304, a trailers-only or empty reply: respond() already ended the
    // stream, and its HEADERS frame may not be out yet, which a reset now could overtake.
    if (stream.writableEnded) return this;
    if (empty) stream.end();
    else {
      this[kStreamBytesSent] += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      stream.end(chunk);
    }
    if (!this.trailersPending) refuseRestOfRequest(stream);
    return this;
  }

  destroy(err?: Error): void {
    this.stream.destroy(err);
  }

  /** `list` is handed to Node as it is when nothing needs taking out (Node appends `date`). */
  private respond(list: string[] | null, endStream: boolean): void {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const pending = this.pending;
    let out: (string | number)[];
    if (list === null) out = [];
    else if (pending === null && !hasConnectionHeader(list)) out = list;
    else {
      out = [];
      for (let i = 0; i < list.length; i += 2) {
        const name = list[i]!;
        if (isConnectionHeader(name)) continue;
        if (pending !== null) delete pending[name.toLowerCase()];
        out.push(name, list[i + 1]!);
      }
    }
    if (pending !== null) pushHeaders(out, pending);
    // Pseudo-headers may come last: Node sends them first.
    out.push(':status', this.statusCode);
    this[kSentHeaders] = out;
    const wait = !endStream && (this[kExpectTrailers] || this.trailers !== null);
    this.trailersPending = wait;
    if (wait) stream.on('wantTrailers', onWantTrailers);
    stream.respond(
      out as unknown as OutgoingHttpHeaders,
      wait ? RESPOND_WAIT : endStream ? RESPOND_END : RESPOND,
    );
  }

  /** Trailers collected by the time the body ended (an empty set ends the stream). */
  sendTrailers(): void {
    try {
      this.stream.sendTrailers(this.trailers ?? {});
    } catch {
      this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    refuseRestOfRequest(this.stream);
  }
}

/**
 * A response complete before the client has sent all of its request (a 413 or 403 while it still
 * uploads, an upstream that answered early): the rest is refused with RST_STREAM NO_ERROR (RFC
 * 9113 §8.1), as Envoy does. Left alone, the stream stays open, holding one of the session's
 * concurrent streams, until the client gives up. Node submits the reset only once the response's
 * last frame has gone to nghttp2 (close() with NO_ERROR waits for 'finish'), so nothing of the
 * response is cut.
 */
function refuseRestOfRequest(stream: ServerHttp2Stream): void {
  if (stream.endAfterHeaders || stream.readableEnded || stream.closed || stream.destroyed) return;
  // A body left unread may still have been sent whole: nghttp2 knows (asked only on this rare
  // path), and such a stream needs no reset.
  if (stream.state.state !== constants.NGHTTP2_STREAM_STATE_OPEN) return;
  stream.close(constants.NGHTTP2_NO_ERROR);
}

const RESPOND = { endStream: false } as const;
const RESPOND_END = { endStream: true } as const;
const RESPOND_WAIT = { endStream: false, waitForTrailers: true } as const;

/** Connection-specific (RFC 9113 §8.2.2): dropped, as Node's compat layer dropped it. */
function isConnectionHeader(name: string): boolean {
  return name.length === 10 && name.toLowerCase() === 'connection';
}

function hasConnectionHeader(list: readonly string[]): boolean {
  for (let i = 0; i < list.length; i += 2) if (isConnectionHeader(list[i]!)) return true;
  return false;
}

function pushHeaders(
  out: (string | number)[],
  h: Readonly<Record<string, string | number | readonly string[] | undefined>>,
): void {
  for (const key of Object.keys(h)) {
    const name = key.toLowerCase();
    if (isConnectionHeader(name)) continue;
    const v = h[key];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v as readonly string[]) out.push(name, one);
    else out.push(name, v as string | number);
  }
}

function onWantTrailers(this: ExchangeStream): void {
  const res = this[kExchange];
  if (res !== undefined) res.sendTrailers();
  else this.sendTrailers({});
}

function onStreamDrain(this: ExchangeStream): void {
  this[kExchange]?.emit('drain');
}

function onStreamClose(this: ExchangeStream): void {
  const res = this[kExchange];
  if (res === undefined) return;
  this[kExchange] = undefined;
  res.req.streamClosed();
  res.emit('close');
}

/** Stream errors (resets, protocol errors) end in 'close', where the exchange learns of them. */
function ignoreStreamError(): void {}

/**
 * The exchange of a new stream, or null when there is nothing to serve: a stream reset in the
 * same read as its HEADERS (rapid reset), CONNECT (405, as Node answers without a handler) and
 * expectations other than 100-continue (417); 100-continue is answered at once, as Envoy does
 * without `proxy_100_continue`.
 */
export function openHttp2Exchange(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
): Http2Response | null {
  // First, whatever follows: a stream's error with no listener would take the process down.
  stream.on('error', ignoreStreamError);
  if (stream.closed || stream.destroyed) return null;
  const method = headers[':method'];
  if (method === 'CONNECT') {
    stream.respond({ ':status': 405 }, RESPOND_END);
    return null;
  }
  const expect = headers.expect;
  if (expect !== undefined) {
    if (expect !== '100-continue') {
      stream.respond({ ':status': 417 }, RESPOND_END);
      return null;
    }
    stream.additionalHeaders({ ':status': 100 });
  }
  const req = new Http2Request(stream, headers, rawHeaders);
  const res = new Http2Response(stream, req);
  (stream as ExchangeStream)[kExchange] = res;
  // 'close' comes once: on() spares the wrapper once() allocates.
  stream.on('close', onStreamClose);
  return res;
}

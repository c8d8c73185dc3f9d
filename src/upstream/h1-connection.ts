/**
 * One HTTP/1.1 connection to an upstream endpoint, one request at a time; pools.ts decides when
 * one is opened and which request it carries, under the cluster's circuit breakers (DR-6), as it
 * does with HTTP/2 connections (h2-connection.ts). It takes the place of an undici Client on
 * the request path: a profile of HTTP/2 streams to an HTTP/1.1 upstream put a fifth of the
 * gateway's CPU in undici's per-request machinery (a Request object with its own header checks,
 * the dispatch queue, a deferred write of each head, header Buffers turned into strings), so
 * this writes one pre-built head string and parses responses itself. undici still serves the
 * side pools (ext_authz) and every caller outside the request path.
 *
 * Responses are parsed strictly and anything ambiguous fails the request (502 UPE), never
 * reaching the client or leaving the connection in use: a bare CR or LF, obs-fold, NUL or other
 * control characters, a header name that is not a token, Content-Length with Transfer-Encoding,
 * more than one or a malformed Content-Length, a Transfer-Encoding other than `chunked`, a 1xx or
 * 204 with a Transfer-Encoding or a non-zero Content-Length (as Envoy refuses them), malformed
 * chunk sizes or chunk ends, a head or trailer section over the limit, and bytes the upstream
 * sends when no request is waiting (the connection is closed). A reused connection writes its
 * next request only from the check phase, after the poll phase has read what the upstream sent
 * while it was idle; if that closed the connection, the unsent request goes back to pools.ts.
 * 1xx responses other than 101 are skipped; HEAD, 204 and 304 responses have no body; a
 * response with neither length nor chunked framing ends when the connection closes. Errors carry
 * the codes upstream-error.ts classifies.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Duplex, Readable } from 'node:stream';
import { codedError } from './upstream-error.ts';

/** What a request asks of the connection: undici's dispatch options, the fields forward.ts sets. */
export interface H1Request {
  readonly path: string;
  readonly method: string;
  /** Flat name/value list. */
  readonly headers: readonly string[];
  readonly body?: Readable | null;
  readonly upgrade?: string | null;
  /** ms until the response head (0 = none). */
  readonly headersTimeout?: number | null;
  /** ms of silence allowed between body bytes (0 = none). */
  readonly bodyTimeout?: number | null;
  /** The last request of the connection: sent with `connection: close`. */
  reset?: boolean | null;
}

/** undici's raw-header dispatch handler, as forward.ts's Attempt implements it. */
export interface H1Handler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  /** HTTP/1.1 trailers are dropped (as Envoy's codec drops them): always null. */
  onComplete(trailers: null): void;
  onError(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: string[], socket: Duplex): void;
}

export interface H1ConnectionOptions {
  readonly address: string;
  readonly port: number;
  /** `address:port` for a Host header the request lacks. */
  readonly hostPort: string;
  /** tls.connect options (secure context, SNI, name check); null = plain TCP. */
  readonly tls: ConnectionOptions | null;
  /** The group's last TLS session, offered for resumption; updated by each handshake. */
  readonly tlsSession: { session: Buffer | null };
  readonly connectTimeoutMs: number;
  /** Idle keep-alive: at most this long (the cluster's idleTimeout), 4 s without a hint. */
  readonly maxIdleMs: number;
}

/** Response heads (and trailer sections) larger than Envoy's 60 KiB header limit are refused. */
export const MAX_HEAD_BYTES = 60 * 1024 + 1024;
/** Idle keep-alive when the upstream sends no `keep-alive: timeout=` hint. */
export const DEFAULT_KEEPALIVE_MS = 4_000;
/** A hinted keep-alive timeout is cut by this much so the upstream is not raced. */
const KEEPALIVE_MARGIN_MS = 1_000;
const MAX_CHUNK_LINE = 4_096;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header field values: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\u0021-\u00ff]/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,13})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const DIGITS = /^\d{1,15}$/;
/** `keep-alive: timeout=N` (seconds), the upstream's idle limit. */
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;
const EXPECTS_PAYLOAD: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);
/** Request headers the connection writes itself (framing and hop-by-hop). */
const OWN_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'expect',
]);

/** Where the response parser is: a head to read, or a body framed one of these ways. */
const Body = {
  None: 0,
  Length: 1,
  ChunkSize: 2,
  ChunkData: 3,
  ChunkEnd: 4,
  Trailers: 5,
  UntilClose: 6,
} as const;
type Body = (typeof Body)[keyof typeof Body];

/** A malformed response: classified as a protocol error (502 UPE). */
function badResponse(message: string, code: string): Error {
  return codedError('bad response: ' + message, code);
}

function otherSideClosed(): Error {
  return codedError('other side closed', 'UND_ERR_SOCKET');
}

export interface H1ConnectionEvents {
  /** The socket closed (idle timeout, upstream close, error); a busy connection's request has failed first. */
  onGone(conn: H1Connection): void;
  /**
   * The upstream closed or spoke on the reused connection before `req` was written: the request
   * is handed back, unsent, for another connection.
   */
  onUnsent(handler: H1Handler, req: H1Request): void;
}

export class H1Connection {
  readonly #opts: H1ConnectionOptions;
  readonly #events: H1ConnectionEvents;
  #socket: Socket | null;
  #connected = false;
  #connectTimer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #idleMs: number;
  /** The duration `#idleTimer` was made with. */
  #idleTimerMs = 0;

  // the request in flight
  #handler: H1Handler | null = null;
  #request: H1Request | null = null;
  /** Counts requests: a stale abort() names an older one. */
  #generation = 0;
  #head: Buffer | null = null;
  #body: Body = Body.None;
  #remaining = 0;
  #line: Buffer | null = null;
  #trailerBytes = 0;
  #paused = false;
  /** Bytes of a read left over when the handler paused, parsed on resume. */
  #held: Buffer | null = null;
  #closeAfter = false;
  #headersTimer: NodeJS.Timeout | null = null;
  /** The request's headersTimeout, armed when its last byte is written. */
  #headersMs = 0;
  #bodyTimer: NodeJS.Timeout | null = null;
  #reqBody: Readable | null = null;
  #reqChunked = false;
  #reqLength = -1;
  #reqSent = 0;
  #reqBodyDone = true;

  /** Requests sent on this connection so far. */
  #sent = 0;
  /** A request waits for the check phase before it is written on this reused connection. */
  #checking = false;

  /** False once the connection may take no further request. */
  reusable = true;

  constructor(opts: H1ConnectionOptions, events: H1ConnectionEvents) {
    this.#opts = opts;
    this.#events = events;
    this.#idleMs = Math.min(DEFAULT_KEEPALIVE_MS, opts.maxIdleMs);
    let socket: Socket;
    if (opts.tls !== null) {
      const session = opts.tlsSession.session;
      socket = tlsConnect({
        ...opts.tls,
        host: opts.address,
        port: opts.port,
        ALPNProtocols: ['http/1.1'],
        ...(session !== null ? { session } : {}),
      });
      socket.on('session', (s: Buffer) => {
        opts.tlsSession.session = s;
      });
      socket.once('secureConnect', () => this.#onConnected());
    } else {
      socket = netConnect({ host: opts.address, port: opts.port });
      socket.once('connect', () => this.#onConnected());
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    this.#connectTimer = setTimeout(
      () => socket.destroy(codedError('connect timeout', 'UND_ERR_CONNECT_TIMEOUT')),
      opts.connectTimeoutMs,
    );
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.#fail(err));
    socket.on('close', () => this.#onClose());
    socket.on('drain', () => this.#onDrain());
  }

  /** Sends `req` (the connection must be idle); the handler hears everything after. */
  dispatch(req: H1Request, handler: H1Handler): void {
    const socket = this.#socket;
    if (this.#handler !== null || !this.reusable || socket === null || socket.destroyed) {
      queueMicrotask(() => handler.onError(codedError('connection not usable', 'UND_ERR_CLOSED')));
      return;
    }
    this.#handler = handler;
    this.#request = req;
    this.#generation += 1;
    socket.ref();
    if (req.reset === true) this.#closeAfter = true;
    if (!this.#connected) return;
    if (this.#sent === 0) this.#send();
    else {
      // A reused connection: bytes or a close the upstream sent while it was idle, and that the
      // poll phase has read by the check phase, are seen before this request goes out, so they
      // cannot pass for its response (undici does the same since GHSA-35p6-xmwp-9g52).
      this.#checking = true;
      setImmediate(onReuseChecked, this, this.#generation);
    }
  }

  reuseChecked(generation: number): void {
    if (generation !== this.#generation || this.#handler === null) return;
    const socket = this.#socket;
    if (!this.reusable || socket === null || socket.destroyed) {
      this.#fail(otherSideClosed());
      return;
    }
    this.#checking = false;
    this.#send();
  }

  /** Graceful: an idle connection closes now, a busy one after its response. */
  close(): void {
    this.reusable = false;
    this.#closeAfter = true;
    if (this.#handler === null) this.#socket?.destroy();
  }

  /** The socket goes now; a request in flight fails. */
  destroy(): void {
    this.reusable = false;
    const socket = this.#socket;
    if (socket === null) return;
    socket.destroy();
    this.#fail(codedError('the connection was destroyed', 'UND_ERR_DESTROYED'), false);
  }

  #onConnected(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.#connected = true;
    if (this.#handler !== null) this.#send();
    else this.#idle();
  }

  #send(): void {
    const handler = this.#handler!;
    const req = this.#request!;
    const socket = this.#socket!;
    const generation = this.#generation;
    this.#sent += 1;
    handler.onConnect((err?: Error) => this.#abort(generation, err));
    if (this.#handler !== handler || this.#generation !== generation) return;
    let head: string;
    try {
      head = this.#buildHead(req);
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    this.#body = Body.None;
    this.#head = null;
    const body = req.body ?? null;
    this.#reqBodyDone = body === null;
    this.#reqSent = 0;
    // nginx's proxy_read_timeout runs once the request is sent: a client slow to send its body is
    // not the upstream's silence (undici got there by refreshing its timer on every body write).
    this.#headersMs = req.headersTimeout ?? 0;
    socket.write(head, 'latin1');
    if (body !== null) this.#pipeBody(body);
    else this.#armHeadersTimer();
  }

  #buildHead(req: H1Request): string {
    const method = req.method;
    if (!TOKEN.test(method)) throw codedError('invalid request method', 'UND_ERR_INVALID_ARG');
    if (req.path.length === 0 || BAD_PATH.test(req.path))
      throw codedError('invalid request path', 'UND_ERR_INVALID_ARG');
    let head = method + ' ' + req.path + ' HTTP/1.1\r\n';
    const h = req.headers;
    let length: string | null = null;
    let host = false;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      const value = h[i + 1]!;
      if (!TOKEN.test(name)) throw codedError('invalid header name ' + name, 'UND_ERR_INVALID_ARG');
      if (BAD_VALUE.test(value)) throw codedError('invalid ' + name + ' header', 'UND_ERR_INVALID_ARG');
      const n = name.length;
      if (n === 4 || n === 6 || n === 7 || n === 10 || n === 14 || n === 17) {
        const lower = name.toLowerCase();
        if (lower === 'host') host = true;
        else if (OWN_HEADERS.has(lower)) {
          if (lower === 'content-length') length = value;
          continue;
        }
      }
      head += name + ': ' + value + '\r\n';
    }
    if (!host) head += 'host: ' + this.#opts.hostPort + '\r\n';
    const body = req.body ?? null;
    this.#reqBody = null;
    this.#reqChunked = false;
    this.#reqLength = -1;
    if (body !== null) {
      this.#reqBody = body;
      if (length !== null && DIGITS.test(length)) {
        this.#reqLength = Number(length);
        head += 'content-length: ' + length + '\r\n';
      } else {
        this.#reqChunked = true;
        head += 'transfer-encoding: chunked\r\n';
      }
    } else if (length !== null || EXPECTS_PAYLOAD.has(method)) {
      head += 'content-length: 0\r\n';
    }
    const upgrade = req.upgrade ?? null;
    if (upgrade !== null) head += 'connection: upgrade\r\nupgrade: ' + upgrade + '\r\n\r\n';
    else head += this.#closeAfter ? 'connection: close\r\n\r\n' : 'connection: keep-alive\r\n\r\n';
    return head;
  }

  // ------------------------------------------------------------ request body

  #pipeBody(body: Readable): void {
    body.on('data', onBodyData);
    body.on('end', onBodyEnd);
    body.on('error', onBodyError);
    body.on('close', onBodyClose);
    (body as OwnedBody)[kConn] = this;
    if (body.readableEnded) this.#bodyEnd(body);
    else body.resume();
  }

  #unpipeBody(): void {
    const body = this.#reqBody;
    if (body === null) return;
    this.#reqBody = null;
    body.off('data', onBodyData);
    body.off('end', onBodyEnd);
    body.off('error', onBodyError);
    body.off('close', onBodyClose);
    (body as OwnedBody)[kConn] = undefined;
  }

  bodyData(body: Readable, chunk: Buffer): void {
    const socket = this.#socket;
    if (socket === null || body !== this.#reqBody) return;
    this.#reqSent += chunk.length;
    if (this.#reqLength >= 0 && this.#reqSent > this.#reqLength) {
      this.#fail(
        codedError('request body longer than its content-length', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'),
      );
      return;
    }
    if (chunk.length === 0) return;
    let ok: boolean;
    if (this.#reqChunked) {
      socket.write(chunk.length.toString(16) + '\r\n', 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    } else ok = socket.write(chunk);
    if (!ok) body.pause();
  }

  #bodyEnd(body: Readable): void {
    if (body !== this.#reqBody) return;
    if (this.#reqLength >= 0 && this.#reqSent !== this.#reqLength) {
      this.#fail(
        codedError('request body shorter than its content-length', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'),
      );
      return;
    }
    this.#unpipeBody();
    this.#reqBodyDone = true;
    if (this.#reqChunked) this.#socket?.write('0\r\n\r\n', 'latin1');
    this.#armHeadersTimer();
  }

  /** Once the whole request is written, unless the response head is already here. */
  #armHeadersTimer(): void {
    if (this.#headersMs > 0 && this.#head === null && this.#body === Body.None && this.#handler !== null)
      this.#headersTimer = setTimeout(onHeadersTimeout, this.#headersMs, this, this.#generation);
  }

  bodyEnded(body: Readable): void {
    this.#bodyEnd(body);
  }

  bodyFailed(body: Readable, err: Error | null): void {
    if (body !== this.#reqBody) return;
    this.#fail(
      err ?? codedError('request body closed before its end', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'),
    );
  }

  #onDrain(): void {
    const body = this.#reqBody;
    if (body !== null && body.isPaused()) body.resume();
  }

  // ------------------------------------------------------------ response

  #onData(chunk: Buffer): void {
    if (this.#handler === null || this.#checking) {
      // Bytes nobody asked for (a late or smuggled response): the connection cannot be trusted.
      // A request waiting to be written on it goes back, unsent (#fail).
      this.#fail(otherSideClosed());
      return;
    }
    this.#parse(chunk);
  }

  #parse(chunk: Buffer): void {
    const handler = this.#handler!;
    let buf = chunk;
    while (buf.length > 0) {
      if (this.#handler !== handler) {
        // The response is over and bytes remain: nothing may follow a response on this connection.
        this.reusable = false;
        this.#socket?.destroy();
        return;
      }
      if (this.#paused) {
        // The handler asked for no more until it resumes: the rest of this read waits.
        this.#held = buf;
        return;
      }
      switch (this.#body) {
        case Body.None: {
          const rest = this.#parseHead(buf);
          if (rest === null) return;
          buf = rest;
          break;
        }
        case Body.Length:
        case Body.ChunkData: {
          const n = Math.min(this.#remaining, buf.length);
          const part = n === buf.length ? buf : buf.subarray(0, n);
          buf = n === buf.length ? EMPTY : buf.subarray(n);
          this.#remaining -= n;
          if (this.#body === Body.Length) {
            this.#deliver(handler, part);
            if (this.#remaining === 0 && this.#handler === handler) this.#complete();
            break;
          }
          if (this.#remaining === 0) {
            this.#body = Body.ChunkEnd;
            this.#remaining = 2;
          }
          this.#deliver(handler, part);
          break;
        }
        case Body.UntilClose:
          this.#deliver(handler, buf);
          buf = EMPTY;
          break;
        case Body.ChunkSize:
        case Body.Trailers: {
          const rest = this.#chunkLine(buf);
          if (rest === null) return;
          buf = rest;
          break;
        }
        case Body.ChunkEnd: {
          // The CRLF after a chunk's data, possibly split over reads.
          const want = this.#remaining;
          if (buf[0] !== (want === 2 ? CR : LF))
            return this.#fail(badResponse('chunk not ended by CRLF', 'HPE_STRICT'));
          if (want === 2 && buf.length > 1) {
            if (buf[1] !== LF) return this.#fail(badResponse('chunk not ended by CRLF', 'HPE_STRICT'));
            buf = buf.subarray(2);
          } else {
            buf = buf.subarray(1);
            this.#remaining = want - 1;
            if (this.#remaining > 0) break;
          }
          this.#body = Body.ChunkSize;
          break;
        }
      }
    }
  }

  #deliver(handler: H1Handler, part: Buffer): void {
    if (part.length === 0) return;
    if (this.#bodyTimer !== null) this.#bodyTimer.refresh();
    if (!handler.onData(part) && this.#handler === handler) this.#pause();
  }

  /** Parses a response head from `buf` (after bytes held back); the bytes after it, or null. */
  #parseHead(buf: Buffer): Buffer | null {
    if (this.#head !== null) {
      buf = Buffer.concat([this.#head, buf]);
      this.#head = null;
    }
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES)
        this.#fail(codedError('response headers too large', 'UND_ERR_HEADERS_OVERFLOW'));
      // A line ended by a bare LF would never see the CRLF CRLF waited for: refused now.
      else if (hasBareLf(buf)) this.#refuse('line not ended by CRLF', 'HPE_STRICT');
      else this.#head = Buffer.from(buf);
      return null;
    }
    if (end > MAX_HEAD_BYTES) {
      this.#fail(codedError('response headers too large', 'UND_ERR_HEADERS_OVERFLOW'));
      return null;
    }
    const rest = buf.subarray(end + 4);
    const text = buf.toString('latin1', 0, end);
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (m === null) return this.#refuse('invalid status line', 'HPE_INVALID_STATUS');
    const status = Number(m[2]);
    const raw: string[] = [];
    let length: number | null = null;
    let chunked = false;
    let hasTe = false;
    let close = m[1] === '0';
    let keepAliveHint = -1;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) return this.#refuse('invalid header line', 'HPE_INVALID_HEADER_TOKEN');
      const name = line.slice(0, colon);
      if (!TOKEN.test(name)) return this.#refuse('invalid header name', 'HPE_INVALID_HEADER_TOKEN');
      const value = trimOws(line.slice(colon + 1));
      if (BAD_VALUE.test(value)) return this.#refuse('invalid header value', 'HPE_INVALID_HEADER_TOKEN');
      raw.push(name, value);
      const n = name.length;
      if (n !== 10 && n !== 14 && n !== 17) continue;
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        // One value, once: a list or a repeat (even of the same value) is refused, not merged.
        if (length !== null)
          return this.#refuse('more than one content-length', 'HPE_UNEXPECTED_CONTENT_LENGTH');
        if (!DIGITS.test(value)) return this.#refuse('invalid content-length', 'HPE_INVALID_CONTENT_LENGTH');
        length = Number(value);
      } else if (lower === 'transfer-encoding') {
        if (hasTe || value.toLowerCase() !== 'chunked')
          return this.#refuse('unsupported transfer-encoding', 'HPE_INVALID_TRANSFER_ENCODING');
        hasTe = true;
        chunked = true;
      } else if (lower === 'connection') {
        const v = value.toLowerCase();
        if (v.includes('close')) close = true;
        else if (m[1] === '0' && v.includes('keep-alive')) close = false;
      } else if (lower === 'keep-alive') {
        const t = KEEP_ALIVE_TIMEOUT.exec(value);
        if (t !== null) keepAliveHint = Number(t[1]) * 1000;
      }
    }
    if (chunked && length !== null)
      return this.#refuse('both content-length and transfer-encoding', 'HPE_UNEXPECTED_CONTENT_LENGTH');
    // As Envoy (strict_1xx_and_204_response_headers): these have no body to frame.
    if ((status < 200 || status === 204) && (chunked || (length !== null && length > 0)))
      return this.#refuse('framing headers on a response without body', 'HPE_UNEXPECTED_CONTENT_LENGTH');
    const req = this.#request!;
    const handler = this.#handler!;
    if (status < 200) {
      if (status === 101) {
        if ((req.upgrade ?? null) === null || handler.onUpgrade === undefined)
          return this.#refuse('unrequested upgrade', 'HPE_UNEXPECTED_UPGRADE');
        this.#upgrade(handler, status, raw, rest);
        return null;
      }
      // 100 Continue, 102, 103: informational, the final response follows.
      return rest;
    }
    if (this.#headersTimer !== null) {
      clearTimeout(this.#headersTimer);
      this.#headersTimer = null;
    }
    if (close) this.#closeAfter = true;
    if (keepAliveHint >= 0)
      this.#idleMs = Math.min(keepAliveHint - KEEPALIVE_MARGIN_MS, this.#opts.maxIdleMs);
    const noBody = status === 204 || status === 304 || req.method === 'HEAD';
    if (noBody) this.#body = Body.None;
    else if (chunked) this.#body = Body.ChunkSize;
    else if (length !== null) {
      this.#body = Body.Length;
      this.#remaining = length;
    } else {
      this.#body = Body.UntilClose;
      this.#closeAfter = true;
    }
    const bodyMs = req.bodyTimeout ?? 0;
    if (bodyMs > 0 && !noBody) this.#bodyTimer = setTimeout(onBodyTimeout, bodyMs, this, this.#generation);
    const reason = m[3] ?? '';
    if (!handler.onHeaders(status, raw, this.#resumeFn, reason) && this.#handler === handler) this.#pause();
    if (this.#handler !== handler) return null;
    if (noBody || (this.#body === Body.Length && length === 0)) {
      this.#complete();
      return rest.length === 0 ? null : rest;
    }
    return rest;
  }

  /** A malformed response: the request fails and the connection closes. */
  #refuse(message: string, code: string): null {
    this.#fail(badResponse(message, code));
    return null;
  }

  /** A chunk-size line or a trailer line; the bytes after it, or null (held back or failed). */
  #chunkLine(buf: Buffer): Buffer | null {
    if (this.#line !== null) {
      buf = Buffer.concat([this.#line, buf]);
      this.#line = null;
    }
    const end = buf.indexOf(CRLF);
    const limit = this.#body === Body.Trailers ? MAX_HEAD_BYTES - this.#trailerBytes : MAX_CHUNK_LINE;
    if (end < 0) {
      if (buf.length > limit) return this.#refuse('chunk line too long', 'HPE_HEADER_OVERFLOW');
      if (hasBareLf(buf)) return this.#refuse('line not ended by CRLF', 'HPE_STRICT');
      this.#line = Buffer.from(buf);
      return null;
    }
    if (end > limit) return this.#refuse('chunk line too long', 'HPE_HEADER_OVERFLOW');
    const line = buf.toString('latin1', 0, end);
    const rest = buf.subarray(end + 2);
    if (this.#body === Body.Trailers) {
      if (line.length === 0) {
        this.#complete();
        return rest.length === 0 ? null : rest;
      }
      this.#trailerBytes += end + 2;
      const colon = line.indexOf(':');
      if (
        colon <= 0 ||
        !TOKEN.test(line.slice(0, colon)) ||
        BAD_VALUE.test(line.slice(colon + 1)) ||
        line.includes('\n')
      )
        return this.#refuse('invalid trailer', 'HPE_INVALID_HEADER_TOKEN');
      return rest;
    }
    const m = CHUNK_SIZE.exec(line);
    if (m === null) return this.#refuse('invalid chunk size', 'HPE_INVALID_CHUNK_SIZE');
    const size = parseInt(m[1]!, 16);
    if (size === 0) {
      this.#body = Body.Trailers;
      this.#trailerBytes = 0;
    } else {
      this.#body = Body.ChunkData;
      this.#remaining = size;
    }
    return rest;
  }

  #complete(): void {
    const handler = this.#handler!;
    this.#endRequest();
    if (!this.#reqBodyDone) {
      // The upstream answered before the whole body went: what is left of it has no place here.
      this.#unpipeBody();
      this.#closeAfter = true;
    }
    if (this.#closeAfter) this.reusable = false;
    handler.onComplete(null);
    if (!this.reusable) this.#socket?.destroy();
    else if (this.#handler === null) this.#idle();
  }

  /** The request is over for this connection: its state and timers go. */
  #endRequest(): void {
    this.#handler = null;
    this.#checking = false;
    this.#request = null;
    this.#body = Body.None;
    this.#head = null;
    this.#line = null;
    this.#held = null;
    if (this.#headersTimer !== null) clearTimeout(this.#headersTimer);
    this.#headersTimer = null;
    if (this.#bodyTimer !== null) clearTimeout(this.#bodyTimer);
    this.#bodyTimer = null;
    if (this.#paused) {
      this.#paused = false;
      this.#socket?.resume();
    }
  }

  #idle(): void {
    const socket = this.#socket;
    if (socket === null) return;
    if (this.#idleMs <= 0) {
      this.reusable = false;
      socket.destroy();
      return;
    }
    socket.unref();
    // One timer per connection, re-armed for each idle spell (no timer made per request).
    const timer = this.#idleTimer;
    if (timer !== null && this.#idleTimerMs === this.#idleMs) timer.refresh();
    else {
      if (timer !== null) clearTimeout(timer);
      this.#idleTimerMs = this.#idleMs;
      this.#idleTimer = setTimeout(onIdleTimeout, this.#idleMs, this);
      this.#idleTimer.unref();
    }
  }

  idleExpired(): void {
    // Busy since the spell began: the next idle spell re-arms the timer.
    if (this.#handler !== null) return;
    this.reusable = false;
    this.#socket?.destroy();
  }

  #upgrade(handler: H1Handler, status: number, raw: string[], rest: Buffer): void {
    const socket = this.#socket!;
    this.#endRequest();
    this.#unpipeBody();
    this.reusable = false;
    this.#socket = null;
    socket.pause();
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    socket.removeAllListeners('drain');
    socket.removeAllListeners('session');
    if (rest.length > 0) socket.unshift(rest);
    handler.onUpgrade!(status, raw, socket);
  }

  #resumeFn = (): void => {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#bodyTimer !== null) this.#bodyTimer.refresh();
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      this.#parse(held);
      if (this.#paused) return;
    }
    this.#socket?.resume();
  };

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket?.pause();
  }

  #abort(generation: number, err?: Error): void {
    if (generation !== this.#generation || this.#handler === null) return;
    this.reusable = false;
    this.#socket?.destroy();
    this.#fail(err ?? codedError('request aborted', 'UND_ERR_ABORTED'), false);
  }

  timedOut(generation: number, code: string): void {
    if (generation !== this.#generation || this.#handler === null) return;
    this.#fail(codedError(code === 'UND_ERR_HEADERS_TIMEOUT' ? 'headers timeout' : 'body timeout', code));
  }

  #onEnd(): void {
    if (this.#handler !== null && this.#body === Body.UntilClose) {
      this.#complete();
      return;
    }
    this.#fail(otherSideClosed());
  }

  /**
   * The request in flight (if any) fails; the connection is done. One not yet written, waiting
   * for the check phase, goes back to pools.ts unless the gateway itself gave up (`resend` false).
   */
  #fail(err: Error, resend = true): void {
    this.reusable = false;
    const handler = this.#handler;
    const req = this.#request;
    const unsent = this.#checking;
    this.#endRequest();
    this.#unpipeBody();
    const socket = this.#socket;
    if (socket !== null && !socket.destroyed) socket.destroy();
    if (handler === null) return;
    if (unsent && resend && req !== null) this.#events.onUnsent(handler, req);
    else handler.onError(err);
  }

  #onClose(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.reusable = false;
    if (this.#handler !== null) {
      if (this.#body === Body.UntilClose) this.#complete();
      else this.#fail(otherSideClosed());
    }
    this.#socket = null;
    this.#events.onGone(this);
  }
}

const EMPTY = Buffer.alloc(0);
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const CR = 13;
const LF = 10;

function hasBareLf(buf: Buffer): boolean {
  for (let i = buf.indexOf(LF); i >= 0; i = buf.indexOf(LF, i + 1))
    if (i === 0 || buf[i - 1] !== CR) return true;
  return false;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const kConn = Symbol('sluice.h1conn');
type OwnedBody = Readable & { [kConn]?: H1Connection };

function onBodyData(this: OwnedBody, chunk: Buffer): void {
  this[kConn]?.bodyData(this, chunk);
}

function onBodyEnd(this: OwnedBody): void {
  this[kConn]?.bodyEnded(this);
}

function onBodyError(this: OwnedBody, err: Error): void {
  this[kConn]?.bodyFailed(this, err);
}

function onBodyClose(this: OwnedBody): void {
  // 'close' without 'end': the client went away mid-body.
  if (!this.readableEnded) this[kConn]?.bodyFailed(this, null);
}

function onHeadersTimeout(conn: H1Connection, generation: number): void {
  conn.timedOut(generation, 'UND_ERR_HEADERS_TIMEOUT');
}

function onBodyTimeout(conn: H1Connection, generation: number): void {
  conn.timedOut(generation, 'UND_ERR_BODY_TIMEOUT');
}

function onReuseChecked(conn: H1Connection, generation: number): void {
  conn.reuseChecked(generation);
}

function onIdleTimeout(conn: H1Connection): void {
  conn.idleExpired();
}

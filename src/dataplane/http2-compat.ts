/**
 * HTTP/2 requests through the same handler as HTTP/1.1 (DP-9): the compat request hides
 * pseudo-headers from rawHeaders (forward copies rawHeaders upstream, which stays HTTP/1.1),
 * joins split cookies, and announces a body sent without content-length as chunked so forward
 * streams it. The compat response gains the `destroyed` ServerResponse has, and is finished only
 * when its stream was not reset.
 */
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { kStreamBytesSent } from '../observability/finished-request.ts';

/** The connection facts the access log and spans read once the request is done. */
interface SocketFacts {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly servername: string | false | null | undefined;
  readonly encrypted: boolean;
}

const baseSocket = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'socket')!.get!;

const kFacts = Symbol('sluice.socketFacts');

export class SluiceHttp2Request extends Http2ServerRequest {
  /**
   * Read while the stream is open: compat's socket is a proxy that reads the session's socket,
   * and once the stream has closed (when the access log runs) every address reads as undefined.
   * Every stream of a session has the same, so the session's first stream reads them for all.
   */
  readonly socketFacts: SocketFacts;

  constructor(...args: ConstructorParameters<typeof Http2ServerRequest>) {
    super(...args);
    const session = this.stream.session as { [kFacts]?: SocketFacts } | undefined;
    let facts = session?.[kFacts];
    if (facts === undefined) {
      const sock = baseSocket.call(this) as TLSSocket;
      facts = {
        remoteAddress: sock.remoteAddress,
        remotePort: sock.remotePort,
        localAddress: sock.localAddress,
        localPort: sock.localPort,
        servername: sock.servername,
        encrypted: sock.encrypted === true,
      };
      if (session !== undefined) session[kFacts] = facts;
    }
    this.socketFacts = facts;
  }
}

Object.defineProperty(SluiceHttp2Request.prototype, 'socket', {
  get(this: SluiceHttp2Request): unknown {
    // While the session lives, the live socket (TLS peer certificate, etc.); after, the facts.
    return this.stream.session !== undefined && !this.stream.closed
      ? baseSocket.call(this)
      : this.socketFacts;
  },
  configurable: true,
});
export class SluiceHttp2Response extends Http2ServerResponse {
  [kStreamBytesSent] = 0;
}

const baseWrite = Http2ServerResponse.prototype.write as (
  this: SluiceHttp2Response,
  chunk: string | Uint8Array,
  encoding?: unknown,
  cb?: unknown,
) => boolean;

/** Counts body bytes as they are handed to the stream (%BYTES_SENT%; compat's end() writes through here). */
Object.defineProperty(SluiceHttp2Response.prototype, 'write', {
  value: function write(
    this: SluiceHttp2Response,
    chunk: string | Uint8Array,
    encoding?: unknown,
    cb?: unknown,
  ): boolean {
    this[kStreamBytesSent] +=
      typeof chunk === 'string'
        ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : chunk.byteLength;
    return baseWrite.call(this, chunk, encoding, cb);
  },
  configurable: true,
  writable: true,
});

const kRaw = Symbol('sluice.rawHeaders');
const baseRawHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get!;

function rawHeadersForUpstream(this: Http2ServerRequest & { [kRaw]?: string[] }): string[] {
  const cached = this[kRaw];
  if (cached !== undefined) return cached;
  const src = baseRawHeaders.call(this) as string[];
  const out: string[] = [];
  let cookie: string | null = null;
  let hasLength = false;
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i]!;
    if (name.charCodeAt(0) === 58 /* : */) continue;
    if (name === 'cookie') {
      // RFC 9113 §8.2.3: split cookie fields are joined with '; ' for HTTP/1.1.
      cookie = cookie === null ? src[i + 1]! : cookie + '; ' + src[i + 1]!;
      continue;
    }
    if (name === 'content-length') hasLength = true;
    out.push(name, src[i + 1]!);
  }
  if (cookie !== null) out.push('cookie', cookie);
  if (!hasLength && !this.stream.endAfterHeaders) out.push('transfer-encoding', 'chunked');
  this[kRaw] = out;
  return out;
}

Object.defineProperty(SluiceHttp2Request.prototype, 'rawHeaders', {
  get: rawHeadersForUpstream,
  configurable: true,
});
const baseWritableFinished = Object.getOwnPropertyDescriptor(
  Http2ServerResponse.prototype,
  'writableFinished',
)!.get!;

/**
 * Node's compat response reports itself finished when its stream closes, even when the client
 * reset the stream (RST_STREAM CANCEL) before the answer: then the upstream request would run on
 * and keep its cluster slot, and the access log would miss DC. Only a stream that closed without
 * an error code finished.
 */
Object.defineProperty(SluiceHttp2Response.prototype, 'writableFinished', {
  get(this: Http2ServerResponse): boolean {
    return (baseWritableFinished.call(this) as boolean) && (this.stream?.rstCode ?? 0) === 0;
  },
  configurable: true,
});
Object.defineProperty(SluiceHttp2Response.prototype, 'destroyed', {
  get(this: Http2ServerResponse): boolean {
    return this.stream.destroyed;
  },
  configurable: true,
});

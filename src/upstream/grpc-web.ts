/**
 * The upstream half of the gRPC-Web bridge (Envoy's grpc_web filter): a `-text` request body
 * decoded from base64 on its way up, and the gRPC response turned back into gRPC-Web — the
 * gRPC-Web content type, base64 frames for clients that asked for text, the trailers as the last
 * frame of the body, and a response that is not gRPC at all summed up as `grpc-status` and
 * `grpc-message` headers. dataplane/grpc-web.ts decides which requests are bridged and rewrites
 * their headers.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { hasHeader } from './header-ops.ts';
import { Base64StreamDecoder, GrpcFrameSplitter, trailersFrame } from '../util/grpc-web.ts';
import { httpToGrpcStatus, isGrpcContentType, percentEncodeGrpcMessage } from '../util/grpc.ts';

/** One bridged exchange. */
export interface GrpcWebBridge {
  /** The request body is base64 (`application/grpc-web-text`). */
  readonly textRequest: boolean;
  /** The client asked for base64 back (`accept: application/grpc-web-text`). */
  readonly textResponse: boolean;
  /** Text responses: frames held until whole, each encoded on its own as Envoy does. */
  frames: GrpcFrameSplitter | null;
  /** A response that is not gRPC: held until it ends, then sent as headers only. */
  plain: PlainResponse | null;
}

interface PlainResponse {
  readonly status: number;
  readonly headers: string[];
  readonly chunks: Buffer[];
  bytes: number;
}

export function newGrpcWebBridge(textRequest: boolean, textResponse: boolean): GrpcWebBridge {
  return { textRequest, textResponse, frames: null, plain: null };
}

/** Envoy names the proto subtype on every bridged response. */
export function grpcWebContentType(b: GrpcWebBridge): string {
  return b.textResponse ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto';
}

/** Envoy's MAX_BUFFERED_PLAINTEXT_LENGTH: how much of a non-gRPC body becomes `grpc-message`. */
const PLAIN_MESSAGE_BYTES = 16384;

/**
 * The upstream's response head, already made the client's (`headers`, edited in place): the
 * content type becomes gRPC-Web's and the length goes (the body changes). Returns true when the
 * response is not gRPC (Envoy's needsTransformationForNonProtoEncodedResponse) and is held
 * until it ends: a status other than 200, or a body that is neither gRPC nor gRPC-Web.
 */
export function bridgeResponseHead(
  b: GrpcWebBridge,
  status: number,
  headers: string[],
  endStream: boolean,
): boolean {
  let type = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name !== 'content-type' && name !== 'content-length') continue;
    if (name === 'content-type' && type === '') type = headers[i + 1]!;
    headers.splice(i, 2);
    i -= 2;
  }
  headers.push('content-type', grpcWebContentType(b));
  if (endStream) return false;
  const bare = type.split(';')[0]!.trim().toLowerCase();
  const grpc =
    status === 200 &&
    (isGrpcContentType(type) || bare === 'application/grpc-web' || bare === 'application/grpc-web+proto');
  if (!grpc) {
    b.plain = { status, headers, chunks: [], bytes: 0 };
    return true;
  }
  if (b.textResponse) b.frames = new GrpcFrameSplitter();
  return false;
}

/** What to write to the client for a chunk of the upstream's body; null when nothing yet. */
export function bridgeResponseData(b: GrpcWebBridge, chunk: Buffer): Buffer | null {
  const plain = b.plain;
  if (plain !== null) {
    const room = PLAIN_MESSAGE_BYTES - plain.bytes;
    if (room > 0) {
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      plain.chunks.push(kept);
      plain.bytes += kept.length;
    }
    return null;
  }
  const frames = b.frames;
  if (frames === null) return chunk;
  const whole = frames.push(chunk);
  if (whole.length === 0) return null;
  if (whole.length === 1) return Buffer.from(whole[0]!.toString('base64'), 'latin1');
  let text = '';
  for (const f of whole) text += f.toString('base64');
  return Buffer.from(text, 'latin1');
}

/** The last bytes of a gRPC response's body: its trailers as a frame; null when it had none. */
export function bridgeTrailers(b: GrpcWebBridge, trailers: readonly string[] | null): Buffer | null {
  if (trailers === null || trailers.length === 0) return null;
  const frame = trailersFrame(trailers);
  return b.textResponse ? Buffer.from(frame.toString('base64'), 'latin1') : frame;
}

/**
 * A held non-gRPC response, ended: its status with `grpc-status` (the status mapped, DP-3) and
 * the body as a percent-encoded `grpc-message`, no body. Returns status and headers to send.
 */
export function plainResponseEnd(plain: PlainResponse): { status: number; headers: string[] } {
  const headers = plain.headers;
  if (plain.bytes > 0 && !hasHeader(headers, 'grpc-message'))
    headers.push('grpc-message', percentEncodeGrpcMessage(Buffer.concat(plain.chunks).toString('utf8')));
  if (!hasHeader(headers, 'grpc-status')) headers.push('grpc-status', String(httpToGrpcStatus(plain.status)));
  headers.push('content-length', '0');
  return { status: plain.status, headers };
}

/**
 * A `-text` request body decoded as the upstream reads it. It starts reading the client only
 * when first read (so an attempt that never sent its body leaves the request retryable) and
 * never errors: bytes that are not base64, or a body that ends mid-group, call `onBad` instead.
 */
export class Base64RequestBody extends Readable {
  readonly #req: IncomingMessage;
  readonly #prefix: Buffer | null;
  readonly #onBad: () => void;
  readonly #decoder = new Base64StreamDecoder();
  #started = false;
  #failed = false;

  constructor(req: IncomingMessage, prefix: Buffer | null, onBad: () => void) {
    super();
    this.#req = req;
    this.#prefix = prefix;
    this.#onBad = onBad;
  }

  override _read(): void {
    if (this.#started) {
      this.#req.resume();
      return;
    }
    this.#started = true;
    const req = this.#req;
    if (this.#prefix !== null && !this.#take(this.#prefix)) return;
    if (req.readableEnded) {
      this.#finish();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      if (!this.#take(chunk)) req.pause();
    });
    req.once('end', () => this.#finish());
    // A mirror's tee may have paused the request until the primary reads it (mirror.ts).
    req.resume();
  }

  /** Decodes and passes on a chunk; false when the upstream side is full or the body is bad. */
  #take(chunk: Buffer): boolean {
    if (this.#failed) return false;
    const decoded = this.#decoder.push(chunk);
    if (decoded === null) {
      this.#fail();
      return false;
    }
    return decoded.length === 0 || this.push(decoded);
  }

  #finish(): void {
    if (this.#failed) return;
    if (!this.#decoder.end()) this.#fail();
    else this.push(null);
  }

  #fail(): void {
    this.#failed = true;
    this.#onBad();
  }
}

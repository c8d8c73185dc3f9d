/**
 * gRPC-Web framing (grpc/grpc doc/PROTOCOL-WEB.md) as Envoy's grpc_web filter speaks it
 * (source/extensions/filters/http/grpc_web/grpc_web_filter.cc): which requests are gRPC-Web, the
 * base64 of `-text` bodies, and the trailers frame that carries a response's trailers in the body.
 */

/** How a request's content-type asks to be bridged; null when it is not gRPC-Web. */
export type GrpcWebEncoding = 'binary' | 'text' | null;

/** Envoy's four gRPC-Web content types, compared exactly (no parameters, case as written). */
export function grpcWebEncodingOf(contentType: string): GrpcWebEncoding {
  switch (contentType) {
    case 'application/grpc-web':
    case 'application/grpc-web+proto':
      return 'binary';
    case 'application/grpc-web-text':
    case 'application/grpc-web-text+proto':
      return 'text';
    default:
      return null;
  }
}

/** Envoy answers base64 when `accept` asks for the text form, whatever the request's encoding. */
export function wantsTextResponse(accept: string | null): boolean {
  return accept === 'application/grpc-web-text' || accept === 'application/grpc-web-text+proto';
}

/**
 * Each group of four: four alphabet characters, or a padded last group of its message. Padding
 * may close a group inside the stream (a client may encode each message on its own); Envoy
 * decodes what one read brings and would refuse padding inside it, which depends on how the
 * bytes happened to be cut, so sluice takes any group boundary.
 */
const BASE64_GROUPS = /^(?:[A-Za-z0-9+/]{2}(?:[A-Za-z0-9+/]{2}|[A-Za-z0-9+/]=|==))*$/;

/**
 * A `-text` request body, decoded as it streams: whole groups of four are decoded at once, the
 * rest waits for the next chunk. `push` gives null on bytes that are not base64.
 */
export class Base64StreamDecoder {
  #rest = '';

  push(chunk: Buffer): Buffer | null {
    const text = this.#rest + chunk.toString('latin1');
    const whole = text.length - (text.length % 4);
    this.#rest = text.slice(whole);
    if (whole === 0) return EMPTY;
    const groups = whole === text.length ? text : text.slice(0, whole);
    if (!BASE64_GROUPS.test(groups)) return null;
    return decodeGroups(groups);
  }

  /** The body ended: true when nothing was left over (base64 padding is required). */
  end(): boolean {
    return this.#rest.length === 0;
  }
}

const EMPTY = Buffer.alloc(0);

/** Node's decoder stops at the first `=`, so padded groups inside the text are decoded one run at a time. */
function decodeGroups(groups: string): Buffer {
  const pad = groups.indexOf('=');
  if (pad < 0 || pad >= groups.length - 2) return Buffer.from(groups, 'base64');
  const parts: Buffer[] = [];
  let start = 0;
  while (start < groups.length) {
    const at = groups.indexOf('=', start);
    if (at < 0) {
      parts.push(Buffer.from(groups.slice(start), 'base64'));
      break;
    }
    const end = at + 4 - ((at - start) % 4);
    parts.push(Buffer.from(groups.slice(start, end), 'base64'));
    start = end;
  }
  return Buffer.concat(parts);
}

/** Flag byte of a trailers frame (PROTOCOL-WEB.md: the MSB of the frame type). */
const TRAILERS_FLAG = 0x80;

/** A response's trailers as the frame that ends a gRPC-Web body: `name:value\r\n` each. */
export function trailersFrame(trailers: readonly string[]): Buffer {
  let text = '';
  for (let i = 0; i < trailers.length; i += 2) text += trailers[i] + ':' + trailers[i + 1] + '\r\n';
  const body = Buffer.from(text, 'latin1');
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame[0] = TRAILERS_FLAG;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/**
 * Splits a gRPC response body into whole frames (flag, length, message), however it was cut:
 * Envoy's text mode base64-encodes each frame on its own, so a frame is held until it is whole.
 */
export class GrpcFrameSplitter {
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** Bytes needed before the next frame can be cut: its prefix, then the whole frame. */
  #need = 5;

  /** Whole frames completed by `chunk`, in order (possibly none). */
  push(chunk: Buffer): readonly Buffer[] {
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < this.#need) return NO_FRAMES;
    let data = this.#held.length === 1 ? chunk : Buffer.concat(this.#held, this.#heldBytes);
    const out: Buffer[] = [];
    while (data.length >= 5) {
      const size = 5 + data.readUInt32BE(1);
      if (data.length < size) break;
      out.push(data.subarray(0, size));
      data = data.subarray(size);
    }
    this.#held = data.length > 0 ? [data] : [];
    this.#heldBytes = data.length;
    this.#need = data.length >= 5 ? 5 + data.readUInt32BE(1) : 5;
    return out;
  }
}

const NO_FRAMES: readonly Buffer[] = [];

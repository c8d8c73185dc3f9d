/**
 * A gRPC-Web client built by hand, as a browser library would speak it (grpc/grpc
 * doc/PROTOCOL-WEB.md): length-prefixed frames of the echo service's messages
 * (test/support/grpc/echo.proto, encoded here field by field), sent in binary or base64 text over
 * HTTP/1.1 or HTTP/2, and the response read back into messages and its trailers frame.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:http2';
import type { EchoReply, EchoRequest } from './grpc.ts';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** EchoRequest in protobuf wire form (fields 1 string, 2–4 int32). */
export function encodeEchoRequest(req: EchoRequest): Buffer {
  const bytes: number[] = [];
  if (req.text !== undefined) {
    const text = Buffer.from(req.text);
    bytes.push(0x0a, ...varint(text.length), ...text);
  }
  if (req.delayMs) bytes.push(0x10, ...varint(req.delayMs));
  if (req.failCode) bytes.push(0x18, ...varint(req.failCode));
  if (req.replyBytes) bytes.push(0x20, ...varint(req.replyBytes));
  return Buffer.from(bytes);
}

/** EchoReply from protobuf wire form (fields 1 and 2, both strings). */
export function decodeEchoReply(buf: Buffer): EchoReply {
  const out: EchoReply = { text: '', padding: '' };
  let i = 0;
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = readVarint();
    const len = readVarint();
    const value = buf.subarray(i, i + len).toString();
    i += len;
    if (tag >> 3 === 1) out.text = value;
    else if (tag >> 3 === 2) out.padding = value;
  }
  return out;
}

/** A data frame (flag 0) around a message. */
export function frame(message: Buffer, flag = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Base64 text that may hold several padded runs (one per frame): each run decoded on its own. */
export function decodeBase64Runs(text: string): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i += 4) {
    if (text[i + 3] === '=' || i + 4 >= text.length) {
      parts.push(Buffer.from(text.slice(start, i + 4), 'base64'));
      start = i + 4;
    }
  }
  return Buffer.concat(parts);
}

export interface GrpcWebReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** HTTP trailers, if any came (gRPC-Web carries its trailers in the body instead). */
  readonly httpTrailers: Record<string, string | string[] | undefined>;
  /** The body as received. */
  readonly raw: Buffer;
  /** Data frames' messages, decoded. */
  readonly messages: EchoReply[];
  /** The trailers frame, parsed; null when the body had none. */
  readonly trailers: Record<string, string> | null;
  /** The flag byte of every frame, in order. */
  readonly flags: number[];
}

/** Splits a (binary) gRPC-Web body into its messages and trailers frame. */
export function parseGrpcWebBody(body: Buffer): Pick<GrpcWebReply, 'messages' | 'trailers' | 'flags'> {
  const messages: EchoReply[] = [];
  const flags: number[] = [];
  let trailers: Record<string, string> | null = null;
  let i = 0;
  while (i + 5 <= body.length) {
    const flag = body[i]!;
    const len = body.readUInt32BE(i + 1);
    const payload = body.subarray(i + 5, i + 5 + len);
    if (payload.length < len) throw new Error(`truncated frame: ${payload.length} of ${len} bytes`);
    flags.push(flag);
    if ((flag & 0x80) !== 0) {
      trailers = {};
      for (const line of payload.toString('latin1').split('\r\n')) {
        if (line === '') continue;
        const colon = line.indexOf(':');
        trailers[line.slice(0, colon)] = line.slice(colon + 1);
      }
    } else messages.push(decodeEchoReply(payload));
    i += 5 + len;
  }
  if (i !== body.length) throw new Error(`${body.length - i} stray bytes after the last frame`);
  return { messages, trailers, flags };
}

export interface GrpcWebCall {
  readonly port: number;
  readonly authority: string;
  /** `/sluice.test.Echo/Unary` … */
  readonly path: string;
  readonly body: Buffer;
  readonly text?: boolean;
  /** The content type sent; default by `text`. */
  readonly contentType?: string;
  readonly http2?: boolean;
  /** Send the (encoded) body in pieces of this many bytes, one write each. */
  readonly pieceBytes?: number;
  readonly headers?: Record<string, string>;
}

/** One gRPC-Web call; the body is base64-encoded when `text`, and the response decoded likewise. */
export async function grpcWebCall(call: GrpcWebCall): Promise<GrpcWebReply> {
  const text = call.text === true;
  const wire = text ? Buffer.from(call.body.toString('base64'), 'latin1') : call.body;
  const headers: Record<string, string> = {
    'content-type': call.contentType ?? (text ? 'application/grpc-web-text' : 'application/grpc-web+proto'),
    accept: text ? 'application/grpc-web-text' : 'application/grpc-web',
    'x-grpc-web': '1',
    ...call.headers,
  };
  const pieces: Buffer[] = [];
  const size = call.pieceBytes ?? wire.length;
  for (let i = 0; i < wire.length; i += size) pieces.push(wire.subarray(i, i + size));
  const got =
    call.http2 === true ? await viaHttp2(call, headers, pieces) : await viaHttp1(call, headers, pieces);
  const type = String(got.headers['content-type'] ?? '');
  const body = type.startsWith('application/grpc-web-text')
    ? decodeBase64Runs(got.raw.toString('latin1'))
    : got.raw;
  return { ...got, ...parseGrpcWebBody(body) };
}

type Wire = Pick<GrpcWebReply, 'status' | 'headers' | 'httpTrailers' | 'raw'>;

function viaHttp1(call: GrpcWebCall, headers: Record<string, string>, pieces: Buffer[]): Promise<Wire> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: call.port,
        method: 'POST',
        path: call.path,
        headers: { host: call.authority, ...headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            httpTrailers: res.trailers,
            raw: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // Pieces go out one at a time, so the gateway sees the body cut where the test chose.
    const writeNext = (i: number): void => {
      if (i === pieces.length) {
        req.end();
        return;
      }
      req.write(pieces[i]!, () => setImmediate(writeNext, i + 1));
    };
    writeNext(0);
  });
}

function viaHttp2(call: GrpcWebCall, headers: Record<string, string>, pieces: Buffer[]): Promise<Wire> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${call.port}`);
    session.on('error', reject);
    const st = session.request({
      ':method': 'POST',
      ':path': call.path,
      ':authority': call.authority,
      ...headers,
    });
    let status = 0;
    let resHeaders: Record<string, string | string[] | undefined> = {};
    let trailers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    st.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    st.on('trailers', (t) => {
      trailers = t;
    });
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('end', () => {
      session.close();
      resolve({ status, headers: resHeaders, httpTrailers: trailers, raw: Buffer.concat(chunks) });
    });
    st.on('error', reject);
    for (const p of pieces) st.write(p);
    st.end();
  });
}

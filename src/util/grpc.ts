/**
 * gRPC facts the gateway needs without speaking gRPC itself (Envoy source/common/grpc/common.cc,
 * utility.cc): which requests are gRPC, the `grpc-timeout` header, the status an HTTP code maps
 * to, `grpc-message` encoding, and counting length-prefixed messages in a stream.
 */

/** Envoy's hasGrpcContentType: `application/grpc`, or it followed by `+` or `;`. */
export function isGrpcContentType(value: string): boolean {
  if (!value.startsWith('application/grpc')) return false;
  if (value.length === 16) return true;
  const c = value.charCodeAt(16);
  return c === 43 /* + */ || c === 59; /* ; */
}

/** The content-type of a raw header list is gRPC's. */
export function isGrpcRequest(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 12 && name.toLowerCase() === 'content-type')
      return isGrpcContentType(rawHeaders[i + 1]!);
  }
  return false;
}

const UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/**
 * `grpc-timeout` (gRPC over HTTP/2: 1–8 ASCII digits and a unit H M S m u n) in ms, or null when
 * absent or malformed (Envoy then treats it as absent: no deadline of its own).
 */
export function parseGrpcTimeout(value: string | null): number | null {
  if (value === null) return null;
  const n = value.length;
  if (n < 2 || n > 9) return null;
  const unit = UNIT_MS[value[n - 1]!];
  if (unit === undefined) return null;
  let v = 0;
  for (let i = 0; i < n - 1; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  return v * unit;
}

/** Envoy's Grpc::Utility::httpToGrpcStatus (DP-3). */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** Envoy's PercentEncoding::encode for `grpc-message`: `%` and bytes outside 0x20–0x7e. */
export function percentEncodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x25
        ? '%' + b.toString(16).toUpperCase().padStart(2, '0')
        : String.fromCharCode(b);
  }
  return out;
}

/**
 * Counts gRPC messages (1 flag byte, 4 length bytes, the message) in a byte stream cut anywhere,
 * as Envoy's grpc_stats filter does for istio_request/response_messages_total: a message counts
 * once its 5-byte prefix has been seen.
 */
export class GrpcMessageCounter {
  messages = 0;
  /** Bytes of the current message still to skip. */
  #skip = 0;
  /** Prefix bytes seen of the next message (0..4) and its length so far. */
  #prefix = 0;
  #length = 0;

  add(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, n - i);
        this.#skip -= k;
        i += k;
        continue;
      }
      const b = chunk[i++]!;
      if (this.#prefix > 0) this.#length = this.#length * 256 + b;
      if (++this.#prefix === 5) {
        this.messages++;
        this.#skip = this.#length;
        this.#prefix = 0;
        this.#length = 0;
      }
    }
  }
}

/** What the gateway learns of one gRPC exchange: its status and message counts (DP-7). */
export interface GrpcExchange {
  /** `grpc-status` of the response (trailers, or headers of a trailers-only one); null = none seen. */
  status: string | null;
  readonly requests: GrpcMessageCounter;
  readonly responses: GrpcMessageCounter;
}

export function createGrpcExchange(): GrpcExchange {
  return { status: null, requests: new GrpcMessageCounter(), responses: new GrpcMessageCounter() };
}

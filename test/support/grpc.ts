/**
 * A real gRPC service on loopback for tests of gRPC through the gateway (@grpc/grpc-js on both
 * ends, test/support/grpc/echo.proto): plain text (h2c) or TLS, recording what each call saw,
 * answering with trailing metadata, failing or waiting on request.
 */
import { fileURLToPath } from 'node:url';
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type Client,
  type ClientDuplexStream,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export interface EchoRequest {
  text?: string;
  delayMs?: number;
  failCode?: number;
  replyBytes?: number;
}

export interface EchoReply {
  text: string;
  padding: string;
}

export interface SeenCall {
  readonly method: 'Unary' | 'Chat';
  readonly metadata: Record<string, string>;
  /** Set when the call was cancelled (by the client, the gateway or a deadline). */
  cancelled: boolean;
  /** When the server saw it end (cancelled or finished), ms after it started. */
  endedAfterMs: number | null;
}

const PROTO = fileURLToPath(new URL('./grpc/echo.proto', import.meta.url));

function echoPackage(): {
  service: ServiceDefinition;
  Client: new (
    address: string,
    creds: ReturnType<typeof credentials.createInsecure>,
    options?: object,
  ) => Client;
} {
  const def = loadSync(PROTO, { keepCase: false, longs: Number, defaults: true });
  const pkg = loadPackageDefinition(def) as unknown as {
    sluice: { test: { Echo: { service: ServiceDefinition } & (new (...args: never[]) => Client) } };
  };
  const Echo = pkg.sluice.test.Echo;
  return { service: Echo.service, Client: Echo as never };
}

export interface EchoServer {
  readonly port: number;
  readonly calls: SeenCall[];
  close(): Promise<void>;
  /** Cut every connection at once (a crashed server). */
  kill(): void;
}

function metadataOf(m: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.getMap())) out[k] = String(v);
  return out;
}

function reply(req: EchoRequest): EchoReply {
  return { text: req.text ?? '', padding: 'x'.repeat(Math.max(0, req.replyBytes ?? 0)) };
}

/** Trailing metadata every successful call ends with: proof that trailers came through. */
export const TRAILER = { name: 'x-echo-trailer', value: 'done' };

export async function startEchoServer(
  opts: { tls?: { certPem: string; keyPem: string; clientCaPem?: string } } = {},
): Promise<EchoServer> {
  const { service } = echoPackage();
  const calls: SeenCall[] = [];
  const server = new Server();
  const trailer = (): Metadata => {
    const m = new Metadata();
    m.set(TRAILER.name, TRAILER.value);
    return m;
  };
  const track = (method: SeenCall['method'], md: Metadata): SeenCall => {
    const seen: SeenCall = { method, metadata: metadataOf(md), cancelled: false, endedAfterMs: null };
    calls.push(seen);
    return seen;
  };
  server.addService(service, {
    Unary(call: ServerUnaryCall<EchoRequest, EchoReply>, done: sendUnaryData<EchoReply>) {
      const start = performance.now();
      const seen = track('Unary', call.metadata);
      const req = call.request;
      let timer: NodeJS.Timeout | null = null;
      call.on('cancelled', () => {
        seen.cancelled = true;
        seen.endedAfterMs = performance.now() - start;
        if (timer !== null) clearTimeout(timer);
      });
      const answer = (): void => {
        seen.endedAfterMs = performance.now() - start;
        if (req.failCode) {
          done({ code: req.failCode, details: `failed as asked: ${req.text ?? ''}`, metadata: trailer() });
          return;
        }
        done(null, reply(req), trailer());
      };
      if (req.delayMs) timer = setTimeout(answer, req.delayMs);
      else answer();
    },
    Chat(call: ServerDuplexStream<EchoRequest, EchoReply>) {
      const start = performance.now();
      const seen = track('Chat', call.metadata);
      call.on('cancelled', () => {
        seen.cancelled = true;
        seen.endedAfterMs = performance.now() - start;
      });
      call.on('data', (req: EchoRequest) => {
        if (req.failCode) {
          call.emit('error', { code: req.failCode, details: `failed as asked: ${req.text ?? ''}` });
          return;
        }
        call.write(reply(req));
      });
      call.on('end', () => {
        seen.endedAfterMs = performance.now() - start;
        call.end(trailer());
      });
    },
  });
  const creds =
    opts.tls === undefined
      ? ServerCredentials.createInsecure()
      : ServerCredentials.createSsl(
          opts.tls.clientCaPem === undefined ? null : Buffer.from(opts.tls.clientCaPem),
          [{ cert_chain: Buffer.from(opts.tls.certPem), private_key: Buffer.from(opts.tls.keyPem) }],
          opts.tls.clientCaPem !== undefined,
        );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    calls,
    close: () =>
      new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
    kill: () => server.forceShutdown(),
  };
}

/** A client of the echo service at `address` (host:port) in plain text, as through the gateway. */
export function echoClient(address: string, authority?: string): EchoClient {
  const { Client } = echoPackage();
  const c = new Client(address, credentials.createInsecure(), {
    ...(authority !== undefined ? { 'grpc.default_authority': authority } : {}),
  }) as unknown as EchoClient;
  return c;
}

export interface CallResult<T> {
  readonly value: T | null;
  readonly error: (Error & { code: number; details: string; metadata: Metadata }) | null;
  readonly trailers: Record<string, string>;
}

/** The raw grpc-js client shape the loaded service has. */
export interface EchoClient extends Client {
  Unary(
    req: EchoRequest,
    md: Metadata,
    opts: { deadline?: number },
    cb: (err: CallResult<never>['error'], value: EchoReply) => void,
  ): { on(event: 'status', fn: (s: { metadata: Metadata }) => void): void };
  Chat(
    md?: Metadata,
    opts?: { deadline?: number },
  ): ClientDuplexStream<EchoRequest, EchoReply> & {
    on(event: 'status', fn: (s: { code: number; details: string; metadata: Metadata }) => void): void;
  };
}

/** One unary call: its reply or error, and the trailing metadata the client received. */
export function unary(
  c: EchoClient,
  req: EchoRequest,
  deadlineMs?: number,
  metadata: Readonly<Record<string, string>> = {},
): Promise<CallResult<EchoReply>> {
  return new Promise((resolve) => {
    let trailers: Record<string, string> = {};
    let result: { value: EchoReply | null; error: CallResult<EchoReply>['error'] } | null = null;
    let statusSeen = false;
    const settle = (): void => {
      if (result !== null && statusSeen) resolve({ ...result, trailers });
    };
    const md = new Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    const call = c.Unary(
      req,
      md,
      deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs },
      (err, value) => {
        result = { value: err ? null : value, error: err };
        settle();
      },
    );
    call.on('status', (s) => {
      trailers = metadataOf(s.metadata);
      statusSeen = true;
      settle();
    });
  });
}

export { status as grpcStatus };

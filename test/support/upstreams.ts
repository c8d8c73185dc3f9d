/**
 * Real upstream servers for integration tests, on 127.0.0.1 port 0.
 * The echo upstream answers with JSON: { name, method, url, headers, rawHeaders, body } and
 * records every request it saw, so tests can assert that hostile input never reached it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createServer as createH2cServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Server,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PemPair } from '../../src/tls/self-signed.ts';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

export interface EchoBody {
  readonly name: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: string[];
  readonly body: string;
}

export interface Upstream {
  readonly name: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

export interface EchoOptions {
  readonly name?: string;
  /** Status to answer with (default 200). */
  readonly status?: number;
  /** Wait this long before answering. */
  readonly delayMs?: number;
  /** Extra response headers. */
  readonly headers?: Record<string, string | string[]>;
  /** Take over the response entirely (streaming tests); the request is still recorded (body not read). */
  readonly handle?: (req: IncomingMessage, res: ServerResponse) => void;
}

function listen(server: Server | NetServer | Http2Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

function closeServer(server: Server | NetServer | Http2Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
}

export async function startEcho(opts: EchoOptions = {}): Promise<Upstream> {
  const name = opts.name ?? 'echo';
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ joinDuplicateHeaders: true, maxHeaderSize: 128 * 1024 }, (req, res) => {
    if (opts.handle) {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: '',
      });
      opts.handle(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      });
      const payload: EchoBody = {
        name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      };
      const text = JSON.stringify(payload);
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(opts.status ?? 200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          ...opts.headers,
        });
        res.end(text);
      };
      if (opts.delayMs) setTimeout(send, opts.delayMs);
      else send();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return { name, port, seen, close: () => closeServer(server, sockets) };
}

/** A TCP server that answers every connection with `bytes` (e.g. garbage → 502 UPE) and closes. */
export async function startRaw(
  bytes: string | Buffer,
  opts: { closeAfterWrite?: boolean } = {},
): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const seen: SeenRequest[] = [];
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('data', () => {
      seen.push({ method: '', url: '', headers: {}, rawHeaders: [], body: '' });
      s.write(bytes);
      if (opts.closeAfterWrite !== false) s.end();
    });
  });
  const port = await listen(server);
  return { name: 'raw', port, seen, close: () => closeServer(server, sockets) };
}

/** A port nothing listens on (bound then closed), for connection-refused cases. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  const port = await listen(server);
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * An upstream a test steers while traffic runs (circuit breaking, outlier detection): answer
 * status and delay can change at any time, `reset` cuts each request's connection instead of
 * answering, and it counts connections, requests per connection and peaks of concurrency.
 */
export interface SteeredUpstream extends Upstream {
  status: number;
  delayMs: number;
  reset: boolean;
  /** Requests answered or cut so far. */
  requests: number;
  /** Requests seen on each connection, in the order connections opened. */
  readonly perConnection: number[];
  /** TLS: the SNI each connection asked for, in the same order ('' for none). */
  readonly servernames: string[];
  openConnections: number;
  maxOpenConnections: number;
  inFlight: number;
  maxInFlight: number;
}

export async function startSteered(
  opts: {
    name?: string;
    status?: number;
    delayMs?: number;
    /** h2c (prior knowledge) instead of HTTP/1.1; a connection is an HTTP/2 session. */
    h2c?: boolean;
    /** HTTPS with this certificate (SNI recorded in `servernames`). */
    tls?: PemPair;
  } = {},
): Promise<SteeredUpstream> {
  const sockets = new Set<Socket>();
  const counts = new WeakMap<object, number>();
  const up: SteeredUpstream = {
    name: opts.name ?? 'steered',
    port: 0,
    seen: [],
    status: opts.status ?? 200,
    delayMs: opts.delayMs ?? 0,
    reset: false,
    requests: 0,
    perConnection: [],
    servernames: [],
    openConnections: 0,
    maxOpenConnections: 0,
    inFlight: 0,
    maxInFlight: 0,
    close: () => closeServer(server, sockets),
  };
  const handle = (
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): void => {
    // What a request's connection is: its socket, or for h2c its session.
    const socket = 'stream' in req ? req.stream.session! : req.socket;
    const index = counts.get(socket)!;
    up.perConnection[index]! += 1;
    up.requests += 1;
    up.inFlight += 1;
    up.maxInFlight = Math.max(up.maxInFlight, up.inFlight);
    req.resume();
    const done = (): void => {
      up.inFlight -= 1;
    };
    if (up.reset) {
      done();
      if ('stream' in req) req.stream.session!.destroy();
      else req.socket.destroy();
      return;
    }
    const status = up.status;
    const answer = (): void => {
      done();
      if (res.writableEnded || res.destroyed) return;
      const body = JSON.stringify({ name: up.name });
      const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if ('stream' in res) res.writeHead(status, headers);
      else res.writeHead(status, headers);
      res.end(body);
    };
    if (up.delayMs > 0) setTimeout(answer, up.delayMs);
    else answer();
  };
  const server =
    opts.h2c === true
      ? createH2cServer(handle)
      : opts.tls !== undefined
        ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handle)
        : createServer(handle);
  const opened = (conn: object & { on(event: 'close', f: () => void): unknown }, sni: string): void => {
    counts.set(conn, up.perConnection.length);
    up.perConnection.push(0);
    up.servernames.push(sni);
    up.openConnections += 1;
    up.maxOpenConnections = Math.max(up.maxOpenConnections, up.openConnections);
    conn.on('close', () => {
      up.openConnections -= 1;
    });
  };
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    if (opts.h2c !== true && opts.tls === undefined) opened(s, '');
  });
  if (opts.h2c === true) (server as Http2Server).on('session', (session) => opened(session, ''));
  else if (opts.tls !== undefined)
    server.on('secureConnection', (s: TLSSocket) =>
      opened(s, typeof s.servername === 'string' ? s.servername : ''),
    );
  (up as { port: number }).port = await listen(server);
  return up;
}

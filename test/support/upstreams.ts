/**
 * Real upstream servers for integration tests, on 127.0.0.1 port 0.
 * The echo upstream answers with JSON: { name, method, url, headers, rawHeaders, body } and
 * records every request it saw, so tests can assert that hostile input never reached it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';

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

function listen(server: Server | NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

function closeServer(server: Server | NetServer, sockets: Set<Socket>): Promise<void> {
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

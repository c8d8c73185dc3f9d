/**
 * One node:http server per plaintext listener port, running sluice's own handler (DESIGN §3).
 * Requests llhttp refuses never reach the handler; the 'clientError' hook answers them the way
 * Envoy's codec does (400/408/431/501, body = status text, connection closed).
 *
 * Not yet: h2c prior knowledge on the same port (GW-5) comes with the TLS/HTTP2 work; a client
 * speaking h2c preface here gets 400 from llhttp.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { handleRequest, handleUpgrade, type ListenerContext, type SnapshotSource } from './handle-request.ts';
import { rawErrorReply } from './local-reply.ts';
import type { RequestContext } from './request-context.ts';

/** Envoy's max_request_headers_kb default is 60 KiB; the slack covers the request line. */
export const MAX_HEADER_BYTES = 60 * 1024 + 1024;

export interface ListenerTimeouts {
  /** A client that has not finished its headers by then gets 408 (slowloris). Default 60 s. */
  readonly headersTimeoutMs?: number;
  /** Idle keep-alive connections close after this. Envoy's downstream idle timeout is 1 h (DP-9). */
  readonly keepAliveTimeoutMs?: number;
  /** How often Node checks the headers timeout. Default 1 s (Node's 30 s makes 408s late). */
  readonly checkIntervalMs?: number;
}

export interface HttpListenerOptions {
  /** Configured Gateway port: the snapshot's listener key. */
  readonly port: number;
  /** Port actually bound (the configured one, or 0 in tests). */
  readonly bindPort: number;
  readonly bind: string;
  readonly source: SnapshotSource;
  readonly serverHeader: () => string;
  readonly timeouts?: ListenerTimeouts;
  readonly onDone?: ((ctx: RequestContext) => void) | null;
}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const up = req.headers.upgrade;
  return typeof up === 'string' && up.length === 9 && up.toLowerCase() === 'websocket';
}

/** Envoy-like answers for requests llhttp refused (DP-4). */
function clientErrorStatus(code: string | undefined, reason: string | undefined): [number, string] | null {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'Request Timeout'];
    case 'HPE_INVALID_TRANSFER_ENCODING':
      // Both Content-Length and Transfer-Encoding: 400 (Envoy refuses the pair unless
      // allow_chunked_length). A Transfer-Encoding other than chunked: 501, as Envoy's codec.
      if (reason !== undefined && reason.includes('Content-Length')) return [400, 'Bad Request'];
      return [501, 'Not Implemented'];
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ETIMEDOUT':
      return null;
    default:
      return [400, 'Bad Request'];
  }
}

export class HttpListener {
  readonly port: number;
  readonly server: Server;
  private readonly opts: HttpListenerOptions;
  private readonly upgraded = new Set<Duplex>();
  private readonly lc: ListenerContext;
  private boundPortValue = 0;

  constructor(opts: HttpListenerOptions) {
    this.opts = opts;
    this.port = opts.port;
    const t = opts.timeouts ?? {};
    const headersTimeout = t.headersTimeoutMs ?? 60_000;
    const server = createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      insecureHTTPParser: false,
      // A missing Host is answered by the handler (400 with Envoy's headers), not by Node.
      requireHostHeader: false,
      // VS-9: repeated headers are matched comma-joined, as Envoy does.
      joinDuplicateHeaders: true,
      headersTimeout,
      // No whole-request deadline: uploads may be long; Istio has none by default.
      requestTimeout: 0,
      keepAliveTimeout: t.keepAliveTimeoutMs ?? 3_600_000,
      connectionsCheckingInterval: t.checkIntervalMs ?? Math.min(1_000, headersTimeout),
      shouldUpgradeCallback: isWebSocketUpgrade,
    });
    const lc: ListenerContext = {
      port: opts.port,
      scheme: 'http',
      source: opts.source,
      onDone: opts.onDone ?? null,
      draining: false,
    };
    this.lc = lc;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => handleRequest(lc, req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
      handleUpgrade(lc, req, socket, head);
    });
    server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Duplex) => {
      const reply = clientErrorStatus(err.code, err.reason);
      const s = socket as Socket & { _httpMessage?: ServerResponse | null };
      if (reply !== null && s.writable && (s._httpMessage == null || !s._httpMessage.headersSent)) {
        s.end(rawErrorReply(reply[0], reply[1], opts.serverHeader()));
      } else {
        s.destroy();
      }
    });
    this.server = server;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = this.server;
      const onError = (err: Error): void => {
        server.off('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        server.off('error', onError);
        const addr = server.address();
        this.boundPortValue = typeof addr === 'object' && addr !== null ? addr.port : this.opts.bindPort;
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: this.opts.bind, port: this.opts.bindPort, exclusive: false });
    });
  }

  /** From now on every response says `Connection: close`; the listener keeps accepting. */
  startDraining(): void {
    this.lc.draining = true;
  }

  get boundPort(): number {
    return this.boundPortValue;
  }

  /**
   * Stop accepting; in-flight requests finish, idle keep-alive connections close now, and after
   * `graceMs` whatever is left (including WebSockets) is cut.
   */
  close(graceMs: number): Promise<void> {
    this.lc.draining = true;
    const server = this.server;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      if (!server.listening) {
        resolve();
        return;
      }
      // Keep-alive connections become idle as their in-flight responses finish; close them as
      // they do, so a drain ends when the last request ends rather than at the deadline.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      sweep.unref();
      server.close(() => {
        clearInterval(sweep);
        if (timer !== null) clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
      const force = (): void => {
        server.closeAllConnections();
        for (const s of this.upgraded) s.destroy();
        this.upgraded.clear();
      };
      if (graceMs <= 0) force();
      else {
        timer = setTimeout(force, graceMs);
        timer.unref();
      }
    });
  }
}

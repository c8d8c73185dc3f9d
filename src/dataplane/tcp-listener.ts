/**
 * Gateway servers with `protocol: TCP` (and MONGO, MYSQL, REDIS, which Istio proxies as TCP):
 * every connection goes to the port's `tcp` route, read from the live snapshot when the
 * connection arrives, so a reload applies to new connections while open ones keep their upstream.
 * No route: the connection is closed, as Envoy does when no filter chain matches.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { TcpConnectionObserver } from '../observability/request-metrics.ts';
import type { SnapshotSource } from '../snapshot/types.ts';
import { pipePassthrough } from './passthrough.ts';
import { listenOn } from './listen.ts';
import { admitConnection } from './admit-connection.ts';
import type { FilterRuntime } from './filters/filter.ts';

export interface TcpListenerOptions {
  /** Configured Gateway port: the snapshot's listener key. */
  readonly port: number;
  /** Port actually bound (the configured one, or 0 in tests). */
  readonly bindPort: number;
  readonly bind: string;
  readonly source: SnapshotSource;
  readonly tcp?: TcpConnectionObserver | null;
  /** AuthorizationPolicy decisions are counted through it. */
  readonly filters: FilterRuntime;
}

export class TcpListener {
  private readonly opts: TcpListenerOptions;
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private boundPortValue = 0;

  constructor(opts: TcpListenerOptions) {
    this.opts = opts;
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  private accept(socket: Socket): void {
    const listener = this.opts.source.get().listeners.get(this.opts.port);
    const route = listener?.tcpRoute ?? null;
    if (
      route === null ||
      !admitConnection(listener!.tcpFilters, socket, this.opts.port, '', null, this.opts.filters)
    ) {
      socket.destroy();
      return;
    }
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    pipePassthrough(socket, route, this.opts.tcp ?? null);
  }

  async listen(): Promise<void> {
    this.boundPortValue = await listenOn(this.server, this.opts.bind, this.opts.bindPort);
  }

  /** A byte stream has no way to ask the client to go elsewhere; connections finish on their own. */
  startDraining(): void {}

  get boundPort(): number {
    return this.boundPortValue;
  }

  /** Stop accepting; open connections may finish for `graceMs`, then are cut. */
  close(graceMs: number): Promise<void> {
    const server = this.server;
    return new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      let timer: NodeJS.Timeout | null = null;
      const force = (): void => {
        for (const s of this.open) s.destroy();
        this.open.clear();
      };
      server.close(() => {
        if (timer !== null) clearTimeout(timer);
        resolve();
      });
      if (graceMs <= 0) force();
      else {
        timer = setTimeout(force, graceMs);
        timer.unref();
      }
    });
  }
}

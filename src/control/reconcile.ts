/**
 * The running gateway: listeners by key, the live snapshot, upstream pools (Caddy's pooled
 * listeners). apply() binds new listeners first (a failed bind rejects the whole apply and the
 * old config keeps serving), keeps listeners whose key is unchanged, swaps the snapshot, then
 * closes removed listeners gracefully and releases pools no cluster uses any more.
 */
import { SluiceError } from '../errors/sluice-error.ts';
import type { Logger } from '../observability/logger.ts';
import type { Listener, Snapshot } from '../snapshot/types.ts';
import { HttpListener, type ListenerTimeouts } from '../dataplane/listeners.ts';
import type { RequestContext } from '../dataplane/request-context.ts';
import { closeUnusedPools, poolStatus, releasePools } from '../upstream/pools.ts';
import { warmEndpoints } from '../upstream/endpoints.ts';
import { createCurrent, type Current } from './current.ts';

export interface GatewayOptions {
  /** Address listeners bind when the snapshot's listener has none (--bind). */
  readonly bind: string;
  readonly logger: Logger;
  /** Tests: the port to bind for a configured port (return 0 for an ephemeral port). */
  readonly bindPortFor?: (configuredPort: number) => number;
  readonly timeouts?: ListenerTimeouts;
  /** How long removed listeners may finish in-flight work after a reload. Default 30 s. */
  readonly removedListenerGraceMs?: number;
  /** Per finished request (access log, metrics). */
  readonly onRequestDone?: (ctx: RequestContext) => void;
}

export interface Gateway {
  apply(snapshot: Snapshot): Promise<void>;
  /** Immediate stop: listeners and pools closed, connections cut. */
  close(): Promise<void>;
  /**
   * Start of a drain (SIGTERM, before --drain-delay): listeners keep accepting, but every response
   * from now on says `Connection: close` so keep-alive clients move away, as Envoy does.
   */
  startDraining(): void;
  /** Graceful stop: stop accepting, let in-flight requests finish up to `timeoutMs`, then close. */
  drain(timeoutMs: number): Promise<void>;
  readonly current: Current;
  /** Configured port → actually bound port (they differ only when tests bind port 0). */
  boundPorts(): Map<number, number>;
  /** Per-endpoint pool state for the admin `/clusters` page. */
  clusterStatus(): unknown;
}

interface Running {
  readonly key: string;
  readonly port: number;
  readonly listener: HttpListener;
}

export function createGateway(opts: GatewayOptions): Gateway {
  const log = opts.logger;
  const current = createCurrent();
  const running = new Map<string, Running>();
  const warned = new Set<string>();
  let chain: Promise<void> = Promise.resolve();
  let closed = false;
  /** Identity under which this gateway holds upstream pools. */
  const owner = {};
  const serverHeader = (): string => current.get().settings.serverHeader;

  function listenerKey(l: Listener): string {
    return l.key;
  }

  async function applyNow(snapshot: Snapshot): Promise<void> {
    if (closed) throw new SluiceError('SLUICE_INTERNAL', 'apply() after close()');
    const wanted = new Map<string, Listener>();
    for (const l of snapshot.listeners.values()) {
      if (l.protocol !== 'HTTP') {
        if (!warned.has(l.key)) {
          warned.add(l.key);
          log.warn(
            { port: l.port, protocol: l.protocol },
            'listener protocol not served yet by this build; skipped',
          );
        }
        continue;
      }
      wanted.set(listenerKey(l), l);
    }
    const removed: Running[] = [];
    for (const [key, r] of running) if (!wanted.has(key)) removed.push(r);

    // A new listener on a port a removed one still holds (its key changed): free the port first.
    const opening: Running[] = [];
    for (const [key, l] of wanted) {
      if (running.has(key)) continue;
      const clash = removed.find((r) => r.port === l.port);
      if (clash !== undefined && (opts.bindPortFor === undefined || opts.bindPortFor(l.port) !== 0)) {
        await clash.listener.close(0);
      }
      const listener = new HttpListener({
        port: l.port,
        bindPort: opts.bindPortFor ? opts.bindPortFor(l.port) : l.port,
        bind: l.bind ?? opts.bind,
        source: current,
        serverHeader,
        timeouts: opts.timeouts,
        onDone: opts.onRequestDone ?? null,
      });
      try {
        await listener.listen();
      } catch (err) {
        await Promise.all(opening.map((o) => o.listener.close(0)));
        const e = err as NodeJS.ErrnoException;
        throw new SluiceError(
          'SLUICE_LISTEN_FAILED',
          `cannot listen on ${l.bind ?? opts.bind}:${l.port}: ${e.code ?? e.message}`,
          { cause: err },
        );
      }
      opening.push({ key, port: l.port, listener });
    }

    current.swap(snapshot);
    for (const o of opening) {
      running.set(o.key, o);
      log.info({ port: o.port, boundPort: o.listener.boundPort }, 'listener open');
    }
    warmEndpoints(snapshot.clusters.values());

    const grace = opts.removedListenerGraceMs ?? 30_000;
    for (const r of removed) {
      running.delete(r.key);
      log.info({ port: r.port }, 'listener removed; draining');
      void r.listener.close(grace);
    }
    const liveKeys = new Set<string>();
    for (const c of snapshot.clusters.values()) liveKeys.add(c.key);
    void closeUnusedPools(owner, liveKeys);
  }

  return {
    apply(snapshot: Snapshot): Promise<void> {
      // Applies run one at a time, in call order.
      const next = chain.then(() => applyNow(snapshot));
      chain = next.catch(() => undefined);
      return next;
    },
    async close(): Promise<void> {
      closed = true;
      await chain;
      const all = [...running.values()];
      running.clear();
      await Promise.all(all.map((r) => r.listener.close(0)));
      await releasePools(owner, true);
    },
    startDraining(): void {
      for (const r of running.values()) r.listener.startDraining();
    },
    async drain(timeoutMs: number): Promise<void> {
      closed = true;
      await chain;
      const all = [...running.values()];
      running.clear();
      await Promise.all(all.map((r) => r.listener.close(timeoutMs)));
      await releasePools(owner, false);
    },
    current,
    boundPorts(): Map<number, number> {
      const out = new Map<number, number>();
      for (const r of running.values()) out.set(r.port, r.listener.boundPort);
      return out;
    },
    clusterStatus(): unknown {
      return poolStatus();
    },
  };
}

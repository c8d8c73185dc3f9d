/**
 * One list + watch of one collection, on client-node's ListWatch (its cache, its resume from the
 * last resourceVersion, its re-list on 410 Gone), with what it leaves to its user:
 * - watches ask for BOOKMARK events, so a quiet collection's resourceVersion stays fresh and a
 *   resumed watch is not answered with 410;
 * - a failed list or watch (server unreachable, 5xx, a dropped stream) is retried with capped
 *   exponential back-off, resuming from the resourceVersion it had, so a change made during an
 *   outage is seen within `maxBackoffMs` of recovery; ListWatch's own reconnect delay (up to 30 s)
 *   is capped the same way;
 * - lists are paged (`limit`/`continue`), so a large collection is not one huge answer;
 * - `synced` turns true once a list has been applied to the cache, and stays true through outages
 *   (the cache is then the last state seen);
 * - `forbidden` says a collection never listed because the server refuses it (401/403: missing
 *   RBAC), as opposed to one not reachable yet; it is still retried, so a grant is picked up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient, KubeList, KubeObject } from './client.ts';

export interface InformerOptions {
  /** The collection, e.g. /apis/networking.istio.io/v1/namespaces/shop/virtualservices. */
  readonly path: string;
  readonly fieldSelector?: string;
  /** The cache changed (an add, update or delete, or a re-list that differs). */
  readonly changed: () => void;
  /** A list or watch failed (null: it works again). */
  readonly health: (error: Error | null) => void;
  readonly backoff: Backoff;
  readonly pageSize?: number;
}

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export interface Informer {
  readonly path: string;
  /** A list has been applied once. */
  synced(): boolean;
  /** The refusal, while the collection has never listed and the last list was refused (401/403). */
  forbidden(): Error | null;
  objects(): readonly KubeObject[];
  get(namespace: string, name: string): KubeObject | undefined;
  stop(): Promise<void>;
}

export function startInformer(client: KubeClient, opts: InformerOptions): Informer {
  const { lib } = client;
  const pageSize = opts.pageSize ?? 500;
  let synced = false;
  let stopped = false;
  let failing = false;
  let delayMs = opts.backoff.initialMs;
  let retry: NodeJS.Timeout | null = null;
  let refused: Error | null = null;

  const ok = (): void => {
    delayMs = opts.backoff.initialMs;
    if (failing) {
      failing = false;
      opts.health(null);
    }
  };

  const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (cont !== undefined) q.set('continue', cont);
      if (opts.fieldSelector !== undefined) q.set('fieldSelector', opts.fieldSelector);
      const page = await client.request<KubeList>('GET', `${opts.path}?${q}`).catch((err: unknown) => {
        const code = (err as { statusCode?: number }).statusCode;
        refused = code === 401 || code === 403 ? (err as Error) : null;
        throw err;
      });
      items.push(...page.items);
      // The first page's resourceVersion is the list's: later pages are read at it.
      resourceVersion ??= page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
    refused = null;
    ok();
    return {
      metadata: { resourceVersion: resourceVersion ?? '' },
      items,
    } as KubernetesListObject<KubernetesObject>;
  };

  const watch = new lib.Watch(client.config);
  const watchOnce = watch.watch.bind(watch);
  watch.watch = (path, query, callback, done) => {
    // Called right after a list is applied to the cache (or to resume one).
    if (!synced) {
      synced = true;
      opts.changed();
    }
    let ended = false;
    const started = watchOnce(
      path,
      { ...query, allowWatchBookmarks: true },
      (phase, obj, raw) => {
        ok();
        callback(phase, obj, raw);
      },
      (err) => {
        ended = true;
        done(err);
      },
    );
    // Resolves once the stream is open (the server said 200), or after it already failed.
    return started.then((controller) => {
      if (!ended) ok();
      return controller;
    });
  };

  const lw = new lib.ListWatch(opts.path, watch, list, false, undefined, opts.fieldSelector, {
    delayFn: (ms) => sleep(Math.min(ms, opts.backoff.maxMs)),
  });
  const changed = (): void => {
    if (synced) opts.changed();
  };
  lw.on('add', changed);
  lw.on('update', changed);
  lw.on('delete', changed);
  lw.on('error', (err: unknown) => {
    if (stopped) return;
    if (!failing) {
      failing = true;
      opts.health(err instanceof Error ? err : new Error(String(err)));
    }
    const wait = delayMs;
    delayMs = Math.min(delayMs * 2, opts.backoff.maxMs);
    retry = setTimeout(() => {
      retry = null;
      if (!stopped) void lw.start();
    }, wait);
  });
  void lw.start();

  return {
    path: opts.path,
    synced: () => synced,
    forbidden: () => (synced ? null : refused),
    objects: () => lw.list() as readonly KubeObject[],
    get: (namespace, name) => lw.get(name, namespace) as KubeObject | undefined,
    async stop() {
      stopped = true;
      if (retry !== null) clearTimeout(retry);
      await lw.stop();
    },
  };
}

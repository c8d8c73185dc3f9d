/**
 * File watches aimed at exactly what the last read looked at: each directory walked (its own
 * entries, not recursively), each file named or reached through a symlink, and for a path that is
 * missing or a symlink, the directory holding that one name. A read asks for its watches as it
 * goes, before reading each thing, so a change made after that point is always seen; what a read
 * no longer asks for is closed when it ends. Events whose entry name does not matter (a log written
 * beside the config, an editor's swap file) are dropped here, before they wake anything else.
 * Deciding when to re-read and whether anything changed is the reload loop's job (DESIGN §5).
 */
import { statSync, watch, type FSWatcher, type WatchEventType } from 'node:fs';
import path from 'node:path';
import type { Provider, ProviderUpdate } from './provider.ts';

/** Whether an event on entry `name` of a watched directory can change what a read returns. */
export type EntryFilter = (name: string, event: WatchEventType) => boolean;

export interface PathWatch {
  /** A read starts: what it asks for from here on replaces what the previous read asked for. */
  begin(): void;
  /** The entries of directory `dir` (not its subdirectories) that `relevant` picks. */
  dir(dir: string, relevant: EntryFilter): void;
  /** One file, whatever happens to it; a symlink is followed to what it points to. */
  file(file: string): void;
  /**
   * The name `p` itself, through the directory that holds it: for a path that is a symlink
   * (swapped by retargeting, as Kubernetes' `..data` is) or that does not exist yet. When even the
   * directory is missing, its nearest existing ancestor is watched for the next name down.
   */
  entry(p: string): void;
  /** The read ended: watches it did not ask for are closed. */
  end(): void;
  close(): void;
}

interface Watched {
  readonly watcher: FSWatcher;
  /** device:inode the watch is on; a path now naming another (replaced, retargeted) is re-watched. */
  readonly id: string;
  /** null: every event matters (a file). */
  readonly filters: EntryFilter[] | null;
  used: boolean;
}

function idOf(p: string): string | null {
  try {
    const s = statSync(p);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/** Kubernetes ConfigMap and Secret volumes swap their content by renaming `..data` (and `..<timestamp>` dirs). */
export const isVolumeSwap = (name: string): boolean => name.startsWith('..');

/** `changed` is called for each event that matters; it must be cheap (the loop debounces). */
export function createPathWatch(changed: () => void): PathWatch {
  const watches = new Map<string, Watched>();
  let closed = false;

  const add = (key: string, target: string, filter: EntryFilter | null): void => {
    if (closed) return;
    const id = idOf(target);
    const seen = watches.get(key);
    if (seen !== undefined && seen.id === id) {
      if (!seen.used) {
        seen.used = true;
        if (seen.filters !== null) seen.filters.length = 0;
      }
      if (filter !== null) seen.filters?.push(filter);
      return;
    }
    if (seen !== undefined) {
      seen.watcher.close();
      watches.delete(key);
    }
    if (id === null) return;
    const filters = filter === null ? null : [filter];
    // When a watched directory itself is deleted or moved, inotify names the event after it.
    const self = path.basename(target);
    let watcher: FSWatcher;
    try {
      watcher = watch(target, { persistent: false }, (event, name) => {
        if (closed) return;
        if (filters === null || name === null) return changed();
        const entry = String(name);
        if ((event === 'rename' && entry === self) || filters.some((f) => f(entry, event))) changed();
      });
    } catch {
      return; // gone between stat and watch: the next read re-aims
    }
    watcher.on('error', () => {
      watcher.close();
      if (watches.get(key)?.watcher === watcher) watches.delete(key);
      if (!closed) changed();
    });
    watches.set(key, { watcher, id, filters, used: true });
  };

  const entry = (p: string): void => {
    let child = path.basename(p);
    let parent = path.dirname(p);
    while (idOf(parent) === null && path.dirname(parent) !== parent) {
      child = path.basename(parent);
      parent = path.dirname(parent);
    }
    const name = child;
    add(`dir:${parent}`, parent, (n) => n === name || isVolumeSwap(n));
  };

  return {
    begin() {
      for (const w of watches.values()) w.used = false;
    },
    dir(dir, relevant) {
      const abs = path.resolve(dir);
      add(`dir:${abs}`, abs, relevant);
    },
    file(file) {
      const abs = path.resolve(file);
      add(`file:${abs}`, abs, null);
    },
    entry(p) {
      entry(path.resolve(p));
    },
    end() {
      for (const [key, w] of watches)
        if (!w.used) {
          w.watcher.close();
          watches.delete(key);
        }
    },
    close() {
      closed = true;
      for (const w of watches.values()) w.watcher.close();
      watches.clear();
    },
  };
}

/**
 * A provider over files: `read` reads through a PathWatch, so every read re-aims the watch at
 * what it read; reads run one at a time. `changed` (from start) hears each event that matters.
 */
export function createWatchedProvider(read: (watch: PathWatch | null) => Promise<ProviderUpdate>): Provider {
  let watcher: PathWatch | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  return {
    start(changed) {
      watcher?.close();
      watcher = createPathWatch(changed);
      return Promise.resolve();
    },
    read() {
      const next = chain.then(async () => {
        const w = watcher;
        w?.begin();
        try {
          return await read(w);
        } finally {
          if (w === watcher) w?.end();
        }
      });
      chain = next.catch(() => undefined);
      return next;
    },
    async stop() {
      watcher?.close();
      watcher = null;
      await chain;
    },
  };
}

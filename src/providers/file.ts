import { statSync, watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadResources, type ConfigInput } from '../config/index.ts';
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Provider, ProviderUpdate } from './provider.ts';

const CONFIG_EXT = /\.(ya?ml|json)$/i;

/** Editor droppings and hidden files (`.#x`, `x~`, `.x.swp`, `#x#`), and ConfigMap's `..data`. */
function ignoredName(name: string): boolean {
  return (
    name.startsWith('.') ||
    name.endsWith('~') ||
    /\.sw[a-p]$/i.test(name) ||
    (name.startsWith('#') && name.endsWith('#'))
  );
}

function readDiagnostic(p: string, err: unknown): Diagnostic {
  const e = err as NodeJS.ErrnoException;
  const why =
    e.code === 'ENOENT'
      ? 'no such file or directory'
      : e.code === 'EACCES'
        ? 'permission denied'
        : (e.message ?? String(err));
  return { level: 'error', code: 'SLUICE_CONFIG_READ', message: `cannot read config path ${p}: ${why}` };
}

async function collect(
  dir: string,
  out: string[],
  diagnostics: Diagnostic[],
  seen: Set<string>,
): Promise<void> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (err) {
    diagnostics.push(readDiagnostic(dir, err));
    return;
  }
  // Symlinked directories may loop.
  if (seen.has(real)) return;
  seen.add(real);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    diagnostics.push(readDiagnostic(dir, err));
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (ignoredName(entry.name)) continue;
    const p = path.join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const s = await stat(p);
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch {
        continue; // a dangling link, e.g. mid ConfigMap swap
      }
    }
    if (isDir) await collect(p, out, diagnostics, seen);
    else if (isFile && CONFIG_EXT.test(entry.name)) out.push(p);
  }
}

/**
 * Reads config files and directories. Directories are walked recursively for `*.yaml`,
 * `*.yml`, `*.json` (hidden files and editor backups skipped) in sorted order; a file named
 * explicitly is read whatever its extension. An unreadable path is a SLUICE_CONFIG_READ error.
 */
export async function readConfigPaths(
  paths: readonly string[],
): Promise<{ inputs: ConfigInput[]; diagnostics: Diagnostic[] }> {
  const inputs: ConfigInput[] = [];
  const diagnostics: Diagnostic[] = [];
  const files: string[] = [];
  const seenFiles = new Set<string>();
  for (const p of paths) {
    let s;
    try {
      s = await stat(p);
    } catch (err) {
      diagnostics.push(readDiagnostic(p, err));
      continue;
    }
    if (s.isDirectory()) await collect(p, files, diagnostics, new Set());
    else files.push(p);
  }
  for (const file of files) {
    if (seenFiles.has(file)) continue;
    seenFiles.add(file);
    try {
      inputs.push({ file, text: await readFile(file, 'utf8') });
    } catch (err) {
      diagnostics.push(readDiagnostic(file, err));
    }
  }
  return { inputs, diagnostics };
}

/** Coalesce bursts of events (an editor save is several) into one re-read. */
const COALESCE_MS = 50;

/**
 * Watches config paths and re-reads everything on any change. Directories are watched
 * recursively; each named path's parent is watched too, so rename-saves (write temp, rename over)
 * and Kubernetes ConfigMap symlink swaps (`..data` replaced) are seen.
 */
export function createFileProvider(opts: { paths: readonly string[]; defaultNamespace: string }): Provider {
  const watchers = new Map<string, FSWatcher>();
  let onChange: ((u: ProviderUpdate) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let lastKey: string | undefined;

  const load = async (): Promise<void> => {
    const { inputs, diagnostics } = await readConfigPaths(opts.paths);
    if (stopped) return;
    const key = JSON.stringify([inputs, diagnostics.map((d) => d.message)]);
    ensureWatchers();
    if (key === lastKey) return;
    lastKey = key;
    const loaded = loadResources(inputs, { defaultNamespace: opts.defaultNamespace });
    onChange?.({ resources: loaded.resources, diagnostics: [...diagnostics, ...loaded.diagnostics] });
  };

  const reload = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = load()
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          schedule();
        }
      });
  };

  const schedule = (): void => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      reload();
    }, COALESCE_MS);
  };

  const addWatcher = (
    key: string,
    target: string,
    recursive: boolean,
    filter?: (name: string | null) => boolean,
  ): void => {
    if (watchers.has(key)) return;
    try {
      const w = watch(target, { recursive, persistent: false }, (_event, name) => {
        if (!filter || filter(name === null ? null : String(name))) schedule();
      });
      w.on('error', () => {
        w.close();
        watchers.delete(key);
        schedule();
      });
      watchers.set(key, w);
    } catch {
      // Missing now; ensureWatchers tries again after the next re-read.
    }
  };

  const ensureWatchers = (): void => {
    if (stopped) return;
    for (const p of opts.paths) {
      const abs = path.resolve(p);
      const base = path.basename(abs);
      let isDir: boolean;
      try {
        isDir = statSync(abs).isDirectory();
      } catch {
        isDir = false;
      }
      // A named file is seen through its parent (its own watch would die with a rename-save).
      if (isDir) addWatcher(`dir:${abs}`, abs, true);
      // Parent: catches rename-saves, deletion and re-creation of the path, and ConfigMap `..data` swaps.
      addWatcher(
        `parent:${abs}`,
        path.dirname(abs),
        false,
        (name) => name === null || name === base || name.startsWith('..'),
      );
    }
  };

  return {
    async start(cb) {
      onChange = cb;
      stopped = false;
      lastKey = undefined;
      running = load().finally(() => {
        running = undefined;
      });
      await running;
      if (again) {
        again = false;
        schedule();
      }
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const w of watchers.values()) w.close();
      watchers.clear();
      if (running) await running.catch(() => undefined);
      onChange = undefined;
    },
  };
}

import { statSync } from 'node:fs';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadResources, type ConfigInput, type LoadCache } from '../config/index.ts';
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Provider, ProviderUpdate } from './provider.ts';
import { createWatchedProvider, isVolumeSwap, type EntryFilter, type PathWatch } from './watch.ts';

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

/**
 * Whether an event on entry `name` of a walked config directory can change a read: a config
 * file, a subdirectory (known, or new), or a ConfigMap `..data` swap; not hidden files, editor
 * droppings, or anything else written there (a log beside the config).
 */
function configEntryFilter(dir: string, subdirs: ReadonlySet<string>): EntryFilter {
  return (name, event) => {
    if (isVolumeSwap(name)) return true;
    if (ignoredName(name)) return false;
    if (CONFIG_EXT.test(name) || subdirs.has(name)) return true;
    // A directory appearing (created, moved in): only rename events, so a busy log costs no stat.
    if (event !== 'rename') return false;
    try {
      return statSync(path.join(dir, name)).isDirectory();
    } catch {
      return false;
    }
  };
}

async function collect(
  dir: string,
  out: string[],
  diagnostics: Diagnostic[],
  seen: Set<string>,
  watch: PathWatch | null,
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
  const subdirs = new Set<string>();
  watch?.dir(dir, configEntryFilter(dir, subdirs));
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
      // What the link points to changes without an event in this directory.
      if (isFile && CONFIG_EXT.test(entry.name)) watch?.file(p);
    }
    if (isDir) {
      subdirs.add(entry.name);
      await collect(p, out, diagnostics, seen, watch);
    } else if (isFile && CONFIG_EXT.test(entry.name)) out.push(p);
  }
}

/**
 * Reads config files and directories. Directories are walked recursively for `*.yaml`,
 * `*.yml`, `*.json` (hidden files and editor backups skipped) in sorted order; a file named
 * explicitly is read whatever its extension. An unreadable path is a SLUICE_CONFIG_READ error.
 * With `watch`, each thing is watched before it is read (see watch.ts).
 */
export async function readConfigPaths(
  paths: readonly string[],
  watch: PathWatch | null = null,
): Promise<{ inputs: ConfigInput[]; diagnostics: Diagnostic[] }> {
  const inputs: ConfigInput[] = [];
  const diagnostics: Diagnostic[] = [];
  const files: string[] = [];
  const seenFiles = new Set<string>();
  for (const p of paths) {
    let s;
    try {
      // A named path that is a symlink can be swapped for another; one missing may appear.
      if ((await lstat(p)).isSymbolicLink()) watch?.entry(p);
      s = await stat(p);
    } catch (err) {
      watch?.entry(p);
      diagnostics.push(readDiagnostic(p, err));
      continue;
    }
    if (s.isDirectory()) await collect(p, files, diagnostics, new Set(), watch);
    else {
      watch?.file(p);
      files.push(p);
    }
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

/** The config files as one update: read, then parsed and validated (`files` counts what was read). */
export async function readConfigUpdate(
  opts: { paths: readonly string[]; defaultNamespace: string; cache?: LoadCache },
  watch: PathWatch | null = null,
): Promise<ProviderUpdate> {
  const { inputs, diagnostics } = await readConfigPaths(opts.paths, watch);
  const loaded = loadResources(inputs, {
    defaultNamespace: opts.defaultNamespace,
    ...(opts.cache !== undefined ? { cache: opts.cache } : {}),
  });
  return {
    resources: loaded.resources,
    diagnostics: [...diagnostics, ...loaded.diagnostics],
    files: inputs.length,
  };
}

/**
 * The config files as a provider: any event that matters (see watch.ts) says "changed"; each
 * read re-reads everything. Rename-saves (write a temp file, rename it over) and Kubernetes
 * ConfigMap symlink swaps (`..data` replaced) are seen.
 */
export function createFileProvider(opts: { paths: readonly string[]; defaultNamespace: string }): Provider {
  return createWatchedProvider((watch) => readConfigUpdate(opts, watch));
}

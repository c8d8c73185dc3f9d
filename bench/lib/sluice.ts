/**
 * Starts `sluice serve` (src/main.ts under this Node; this checkout or another one) pinned to the
 * proxy core, on loopback.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnPinned, type Proc } from './procs.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SLUICE_MAIN = join(REPO_ROOT, 'src', 'main.ts');

export function sluiceAvailable(): string | null {
  return existsSync(SLUICE_MAIN) ? null : `${SLUICE_MAIN} does not exist yet`;
}

export interface SluicePorts {
  readonly status: number;
  readonly metrics: number;
  readonly admin: number;
}

/** `workers` null: sluice's default (the cores it may use); `main`: another checkout's entry. */
export function sluiceArgs(
  configDir: string,
  ports: SluicePorts,
  workers: number | null = 1,
  main = SLUICE_MAIN,
): string[] {
  return [
    main,
    'serve',
    '--config',
    configDir,
    ...(workers === null ? [] : ['--workers', String(workers)]),
    '--bind',
    '127.0.0.1',
    '--status-port',
    String(ports.status),
    '--metrics-port',
    String(ports.metrics),
    '--admin-port',
    String(ports.admin),
    '--log-level',
    'warn',
    // the bench ends it with SIGTERM: no reason to wait
    '--drain-delay',
    '0',
    '--drain-timeout',
    '1',
  ];
}

export function startSluice(opts: {
  name: string;
  configDir: string;
  ports: SluicePorts;
  cpu: number | null;
  logFile: string;
  /** The checkout to run (its src/main.ts, its node_modules); default this one. */
  root?: string;
  /** Node's own flags before the entry, e.g. `--cpu-prof`. */
  nodeArgs?: readonly string[];
}): Proc {
  const root = opts.root ?? REPO_ROOT;
  return spawnPinned({
    name: opts.name,
    cpu: opts.cpu,
    command: process.execPath,
    args: [
      ...(opts.nodeArgs ?? []),
      ...sluiceArgs(opts.configDir, opts.ports, 1, join(root, 'src', 'main.ts')),
    ],
    logFile: opts.logFile,
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  });
}

export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Runs the real `sluice` binary (src/main.ts on this Node), or any other command, as a child
 * process, for tests of exit codes, signals and output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ChildOptions {
  /** Added to this process's environment, or, with `replaceEnv`, the whole environment. */
  readonly env?: NodeJS.ProcessEnv;
  readonly replaceEnv?: boolean;
  readonly cwd?: string;
}

function start(command: string, args: readonly string[], opts: ChildOptions & { group?: boolean }) {
  return spawn(command, args, {
    cwd: opts.cwd ?? REPO,
    env: opts.replaceEnv ? opts.env : { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a signal reaches what it starts (npm → sh → node) too.
    detached: opts.group ?? false,
  });
}

/** Runs `command` to completion (bounded by timeoutMs). */
export function runCommand(
  command: string,
  args: readonly string[],
  opts: ChildOptions & { timeoutMs?: number } = {},
): Promise<Finished> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = start(command, args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout:${stdout}\nstderr:${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs sluice to completion (bounded by timeoutMs). */
export function runSluice(
  args: readonly string[],
  opts: ChildOptions & { timeoutMs?: number } = {},
): Promise<Finished> {
  return runCommand(process.execPath, [MAIN, ...args], opts);
}

export interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  /** Sends a signal and waits for exit (SIGKILL after timeoutMs). */
  stop(
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts a long-running command; the caller stops it. With `group`, stop() signals its whole
 * process group, for commands that run the server in a child of their own (`npm start`).
 */
export function spawnCommand(
  command: string,
  args: readonly string[],
  opts: ChildOptions & { group?: boolean } = {},
): Spawned {
  const child = start(command, args, opts);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const kill = (signal: NodeJS.Signals): void => {
    if (opts.group && child.pid !== undefined) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is gone already.
      }
    } else if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  return {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      kill(signal);
      const timer = setTimeout(() => kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

/** Starts a long-running sluice (serve, quickstart); the caller stops it. */
export function spawnSluice(args: readonly string[], opts: ChildOptions = {}): Spawned {
  return spawnCommand(process.execPath, [MAIN, ...args], opts);
}

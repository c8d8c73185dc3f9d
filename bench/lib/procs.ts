/**
 * Child processes of one benchmark run: spawned pinned to a CPU, each in its own process group so
 * the whole tree (nginx master + worker, sluice primary + cluster worker) can be ended by id, and
 * all ended on normal exit, error, SIGINT and SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has gone. */
  readonly exited: Promise<string>;
}

const live = new Set<Proc>();
let niceness = 0;

/** Run every later child at this niceness (negative = ahead of other work on the machine; needs root). */
export function setChildNiceness(n: number): void {
  niceness = n;
}

/** [nice -n N] [taskset -c CPU] command args: both exec, so the pid is the command's. */
function commandLine(cpu: number | null, command: string, args: readonly string[]): string[] {
  const pinned = cpu === null ? [command, ...args] : ['taskset', '-c', String(cpu), command, ...args];
  return niceness === 0 ? pinned : ['nice', '-n', String(niceness), ...pinned];
}
const exitTasks: (() => void)[] = [];
let hooksInstalled = false;

/** A synchronous task for the way out (normal exit, error or signal), e.g. removing the temp dir. */
export function atExit(task: () => void): void {
  installHooks();
  exitTasks.push(task);
}

function runExitTasks(): void {
  for (const task of exitTasks.splice(0)) {
    try {
      task();
    } catch {
      // best effort on the way out
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    killAllSync();
    runExitTasks();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping child processes\n`);
      killAllSync();
      runExitTasks();
      process.exit(130);
    });
  }
}

/** `taskset -c CPU cmd args` when cpu is given (taskset execs, so the pid is the command's). */
export function spawnPinned(opts: {
  name: string;
  cpu: number | null;
  command: string;
  args: readonly string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): Proc {
  installHooks();
  const argv = commandLine(opts.cpu, opts.command, opts.args);
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: ['ignore', fd, fd],
    detached: true, // own process group: kill(-pid) reaches the whole tree
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${argv.join(' ')})`);
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? String(code)));
    child.once('error', (err) => resolve(`error: ${err.message}`));
  });
  const proc: Proc = { name: opts.name, child, pid: child.pid, logFile: opts.logFile, exited };
  live.add(proc);
  void exited.then(() => {
    // The group may outlive its leader (nginx workers); it is still ours to end.
    signalGroup(proc.pid, 'SIGKILL');
    live.delete(proc);
  });
  return proc;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM the process group, SIGKILL it if still there after graceMs. */
export async function stop(proc: Proc, graceMs = 3000): Promise<void> {
  if (!live.has(proc)) return;
  signalGroup(proc.pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
  signalGroup(proc.pid, 'SIGKILL');
  live.delete(proc);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stop(p)));
}

function killAllSync(): void {
  for (const p of live) signalGroup(p.pid, 'SIGKILL');
  live.clear();
}

/** Runs a command to completion (pinned when cpu given), collecting stdout; registered for cleanup. */
export async function runPinned(opts: {
  name: string;
  cpu: number | null;
  command: string;
  args: readonly string[];
  logFile: string;
  timeoutMs: number;
}): Promise<{ code: string; stdout: string }> {
  installHooks();
  const argv = commandLine(opts.cpu, opts.command, opts.args);
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', fd], detached: true });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${argv.join(' ')})`);
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? String(code)));
    child.once('error', (err) => resolve(`error: ${err.message}`));
  });
  const proc: Proc = { name: opts.name, child, pid: child.pid, logFile: opts.logFile, exited };
  live.add(proc);
  const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), opts.timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  signalGroup(proc.pid, 'SIGKILL');
  live.delete(proc);
  return { code, stdout: Buffer.concat(chunks).toString('utf8') };
}

/** The process and every descendant (sluice's cluster worker, nginx's worker). */
export function processTree(rootPid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // comm may contain spaces and parens: fields after the last ')' are fixed
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(rest[1]));
    } catch {
      // exited while scanning
    }
  }
  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/** VmRSS of one process in bytes, 0 if gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function treeRss(rootPid: number): { totalBytes: number; perPid: { pid: number; bytes: number }[] } {
  const perPid = processTree(rootPid).map((pid) => ({ pid, bytes: rssBytes(pid) }));
  return { totalBytes: perPid.reduce((s, p) => s + p.bytes, 0), perPid };
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds of this process's children that have exited and been waited for (wrk, paced client). */
export function reapedChildrenCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[13]) + Number(rest[14])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** utime+stime of the whole tree, in seconds. */
export function treeCpuSeconds(rootPid: number): number {
  let ticks = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS;
}

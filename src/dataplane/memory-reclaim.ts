/**
 * After an attack on the HTTP/2 listeners ends, the memory the flood grew goes back to the system:
 * one memory-reducing garbage collection, then glibc's malloc_trim.
 *
 * Why: a flood allocates fast, so V8 grows its young and old generations; once it stops, the
 * gateway may be idle, no collection runs, and V8's memory reducer keeps postponing because it
 * judges the allocation rate by the last collections, which were during the flood. Measured:
 * resident memory stayed at 2-2.5x its level before a 15 s flood for minutes, most of the old
 * generation dead. Node has no call for a memory-reducing collection; the gc extension (enabled on
 * first use, as `--expose-gc` would at start) has one: a `last-resort` major collection, which
 * also releases V8's pooled pages. The native side (nghttp2 sessions, read buffers) is freed but
 * stays in glibc's heap, fragmented by 40k sessions opened and closed (a CONTINUATION flood left
 * 70 MiB there); malloc_trim(0) returns its free pages. Node reaches it through node:ffi, where
 * that exists (Linux, glibc, Node with FFI); elsewhere only the collection runs.
 *
 * Cost: nothing until the first abuse; then one timer, and one reclaim per quiet period after an
 * attack (at most one per `MIN_INTERVAL_MS`): 50-100 ms on the small heap left by then.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Abuse must have stopped this long before the collection runs. */
const QUIET_MS = 5_000;
const MIN_INTERVAL_MS = 30_000;

type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let gc: Gc | null = null;
let lastAbuseMs = 0;
let lastRunMs = -Infinity;
let timer: NodeJS.Timeout | null = null;

/** Something attacked a listener (a session cut for abuse): reclaim once things are quiet. */
export function noteAbuse(): void {
  lastAbuseMs = performance.now();
  if (timer === null) arm(QUIET_MS);
}

function arm(ms: number): void {
  timer = setTimeout(reclaimWhenQuiet, ms);
  timer.unref();
}

function reclaimWhenQuiet(): void {
  timer = null;
  const now = performance.now();
  const wait = Math.max(QUIET_MS - (now - lastAbuseMs), MIN_INTERVAL_MS - (now - lastRunMs));
  if (wait > 0) return arm(wait);
  lastRunMs = now;
  collect();
}

function collect(): void {
  if (gc === null) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  if (trim === undefined) trim = loadMallocTrim();
  if (trim !== null) trim();
}

/** The part of node:ffi used here (experimental in Node 26, so typed locally). */
interface Ffi {
  dlopen(
    path: string,
    symbols: Record<string, { arguments: string[]; return: string }>,
  ): { functions: Record<string, ((...args: unknown[]) => unknown) | undefined> };
}

/** undefined: not looked up yet; null: not available here. */
let trim: (() => void) | null | undefined;

function loadMallocTrim(): (() => void) | null {
  if (process.platform !== 'linux') return null;
  // node:ffi announces itself as experimental on first load; that line is ours to keep out of
  // the gateway's output, every other warning passes.
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]): void {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type !== 'ExperimentalWarning')
      (emitWarning as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    const ffi = process.getBuiltinModule('node:ffi' as 'node:os') as unknown as Ffi | undefined;
    const fn = ffi?.dlopen('libc.so.6', { malloc_trim: { arguments: ['uint64'], return: 'int32' } })
      .functions['malloc_trim'];
    return fn === undefined ? null : () => void fn(0n);
  } catch {
    // No FFI in this Node, or no glibc (musl): the collection alone has to do.
    return null;
  } finally {
    process.emitWarning = emitWarning;
  }
}

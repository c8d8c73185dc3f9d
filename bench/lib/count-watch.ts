/**
 * Preloaded into `sluice serve` by bench/watch-wakeups.ts (`node --import`): counts every call
 * into an fs.watch listener (each one a wake-up of the process by the file watcher) and writes the
 * running total to $SLUICE_BENCH_WATCH_COUNT four times a second. It wraps node:fs's watch, so it
 * counts the same thing whatever version of sluice runs.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const out = process.env['SLUICE_BENCH_WATCH_COUNT'];
if (out !== undefined) {
  let calls = 0;
  const original = fs.watch;
  const counted = (listener: unknown): unknown =>
    typeof listener === 'function'
      ? (...args: unknown[]): unknown => {
          calls++;
          return (listener as (...a: unknown[]) => unknown)(...args);
        }
      : listener;
  fs.watch = ((file: fs.PathLike, ...rest: unknown[]) =>
    (original as (...a: unknown[]) => fs.FSWatcher)(file, ...rest.map(counted))) as typeof fs.watch;
  syncBuiltinESMExports();
  setInterval(() => fs.writeFileSync(out, String(calls)), 250).unref();
}

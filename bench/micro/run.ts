/**
 * Runs every bench/micro/*.bench.ts, one fresh process each (so one file's JIT state and heap
 * do not colour the next), in name order, under this Node. Output passes through unchanged.
 *
 *   node bench/micro/run.ts [SUBSTRING ...]     only files whose name contains one of them
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

if (files.length === 0) {
  process.stdout.write(
    `no micro-benchmarks${filters.length ? ` matching ${filters.join(', ')}` : ''} in bench/micro/ (*.bench.ts)\n`,
  );
} else {
  process.stdout.write(`Node ${process.version}, ${files.length} micro-benchmark file(s)\n`);
  const failed: string[] = [];
  for (const file of files) {
    process.stdout.write(`\n== ${file}\n`);
    const r = spawnSync(process.execPath, [join(here, file)], { stdio: 'inherit' });
    if (r.status !== 0) failed.push(`${file} (${r.signal ?? `exit ${r.status}`})`);
  }
  if (failed.length > 0) {
    process.stderr.write(`\nfailed: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

/** Runs bench/lib/paced-load.ts as its own pinned process and returns its result. */
import { fileURLToPath } from 'node:url';
import { runPinned } from './procs.ts';
import type { PacedResult } from './paced-load.ts';

const PACED_LOAD = fileURLToPath(new URL('./paced-load.ts', import.meta.url));

export async function runPaced(opts: {
  cpu: number | null;
  url: string;
  rate: number;
  durationS: number;
  warmupS: number;
  connections: number;
  headers: Readonly<Record<string, string>>;
  logFile: string;
  /** One header whose value changes per request, cycling through a file's lines. */
  vary?: { readonly header: string; readonly valuesFile: string };
}): Promise<PacedResult> {
  const args = [
    PACED_LOAD,
    '--url',
    opts.url,
    '--rate',
    String(opts.rate),
    '--duration',
    String(opts.durationS),
    '--warmup',
    String(opts.warmupS),
    '--connections',
    String(opts.connections),
    ...Object.entries(opts.headers).flatMap(([k, v]) => ['--header', `${k}: ${v}`]),
    ...(opts.vary ? ['--vary-header', opts.vary.header, '--values-file', opts.vary.valuesFile] : []),
  ];
  const { code, stdout } = await runPinned({
    name: 'paced-load',
    cpu: opts.cpu,
    command: process.execPath,
    args,
    logFile: opts.logFile,
    timeoutMs: (opts.durationS + opts.warmupS + 20) * 1000,
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  if (code !== '0' || !line.startsWith('{'))
    throw new Error(`paced-load exited ${code}; see ${opts.logFile}`);
  return JSON.parse(line) as PacedResult;
}

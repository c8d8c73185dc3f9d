/** wrk (closed-loop, keep-alive) for throughput: run pinned, parse its text report. */
import { spawnSync } from 'node:child_process';
import { runPinned } from './procs.ts';

export interface WrkResult {
  readonly requests: number;
  readonly requestsPerSec: number;
  readonly non2xx: number;
  readonly socketErrors: number;
  /** milliseconds, from wrk --latency (closed-loop: latency under saturation, not a target) */
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number };
  readonly command: string;
}

export function findWrk(): { path: string; version: string } | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (r.error) return null;
  const version = /wrk (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
  return { path: 'wrk', version };
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  if (unit === 'us') return n / 1000;
  if (unit === 'ms') return n;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return NaN;
}

export function parseWrk(text: string): Omit<WrkResult, 'command'> {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new Error(`could not parse wrk output:\n${text}`);
  const total = /(\d+) requests in/.exec(text);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1] as string, m[2] as string) : NaN;
  };
  return {
    requests: total ? Number(total[1]) : NaN,
    requestsPerSec: Number(rps[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0,
    latencyMs: { p50: pct('50'), p90: pct('90'), p99: pct('99') },
  };
}

export async function runWrk(opts: {
  cpu: number | null;
  url: string;
  threads: number;
  connections: number;
  durationS: number;
  headers: Readonly<Record<string, string>>;
  logFile: string;
  /** A Lua script (`-s`), e.g. one that varies a header per request (bench/lib/vary-header.ts). */
  script?: string;
}): Promise<WrkResult> {
  const args = [
    ...(opts.script !== undefined ? ['-s', opts.script] : []),
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--latency',
    '--timeout',
    '5s',
    ...(opts.script !== undefined ? ['-s', opts.script] : []),
    // wrk adds its own Host unless given one spelled exactly "Host" (a second Host header is a 400)
    ...Object.entries(opts.headers).flatMap(([k, v]) => [
      '-H',
      `${k.toLowerCase() === 'host' ? 'Host' : k}: ${v}`,
    ]),
    opts.url,
  ];
  const { code, stdout } = await runPinned({
    name: 'wrk',
    cpu: opts.cpu,
    command: 'wrk',
    args,
    logFile: opts.logFile,
    timeoutMs: (opts.durationS + 15) * 1000,
  });
  if (code !== '0') throw new Error(`wrk exited ${code}:\n${stdout}`);
  return {
    ...parseWrk(stdout),
    command: `wrk ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`,
  };
}

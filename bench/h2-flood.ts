/**
 * HTTP/2 flood memory benchmark (issue 9 item 9d), not a test: for each attack, a fresh
 * `sluice serve --workers 1` on loopback, warmed with ordinary requests, then flooded for 15 s by
 * bench/lib/h2-flood.ts (rapid reset, CONTINUATION flood; every connection the gateway cuts is
 * replaced at once), then left alone. Reports resident memory before, its peak during, and 30 s
 * after the flood ended, against the target: after ≤ 1.5 × before. The gateway must still answer
 * after each flood.
 *
 *   npm run bench:h2-flood [-- --quick] [-- --json] [-- --help]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateConfig, writeConfig } from './configs/generate.ts';
import { flood, type FloodKind, type FloodResult } from './lib/h2-flood.ts';
import { freePorts, probe, until200 } from './lib/net.ts';
import { BODY_100 } from './lib/nginx.ts';
import { atExit, rssBytes, stop, stopAll } from './lib/procs.ts';
import { sluiceAvailable, startSluice, tail } from './lib/sluice.ts';

const HELP = `npm run bench:h2-flood -- [flags]     (node bench/h2-flood.ts [flags])

  --quick            smoke run: 5 s floods, 15 s after (figures indicative only; the target is for 15 s / 30 s)
  --json             print the results as JSON on stdout (progress stays on stderr)
  --duration S       flood length (default 15, quick 5)
  --after S          how long after the flood the memory is read (default 30, quick 15)
  --connections N    attacking connections open at once (default 20)
  --only KIND        rapid-reset | continuation (repeatable; default both)
  --keep             keep the temp dir (config, logs) and print its path
  --help
`;

const MiB = 1024 * 1024;
const TARGET_RATIO = 1.5;

interface Settings {
  readonly quick: boolean;
  readonly json: boolean;
  readonly durationS: number;
  readonly afterS: number;
  readonly connections: number;
  readonly kinds: readonly FloodKind[];
  readonly keep: boolean;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      duration: { type: 'string' },
      after: { type: 'string' },
      connections: { type: 'string' },
      only: { type: 'string', multiple: true },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick;
  const kinds = (values.only ?? ['rapid-reset', 'continuation']) as FloodKind[];
  for (const k of kinds)
    if (k !== 'rapid-reset' && k !== 'continuation') throw new Error(`--only ${k}: not a flood kind`);
  return {
    quick,
    json: values.json,
    durationS: Number(values.duration ?? (quick ? 5 : 15)),
    afterS: Number(values.after ?? (quick ? 15 : 30)),
    connections: Number(values.connections ?? 20),
    kinds,
    keep: values.keep,
  };
}

interface FloodFigure {
  readonly kind: FloodKind;
  readonly beforeMiB: number;
  readonly peakMiB: number;
  readonly afterMiB: number;
  readonly ratio: number;
  readonly pass: boolean;
  readonly flood: FloodResult;
  readonly answersAfter: boolean;
}

function progress(msg: string): void {
  process.stderr.write(`[h2-flood] ${msg}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(
  kind: FloodKind,
  s: Settings,
  tmp: string,
  upstreamPort: number,
): Promise<FloodFigure> {
  const [gatewayPort, status, metrics, admin, decoyPort] = (await freePorts(5)) as number[];
  const config = generateConfig('one-rule', { gatewayPort, upstreamPort, decoyPort });
  const configDir = writeConfig(join(tmp, kind), config);
  const logFile = join(tmp, `${kind}.log`);
  const proc = startSluice({ name: kind, configDir, ports: { status, metrics, admin }, cpu: null, logFile });
  const url = `http://127.0.0.1:${gatewayPort}${config.request.path}`;
  const headers = { host: config.request.host, ...config.request.headers };
  try {
    await until200(url, headers, { deadlineMs: 30_000, bodyBytes: BODY_100.length });
    // Warm: the level before the attack is that of a gateway that has served.
    for (let i = 0; i < 500; i++) await probe(url, headers);
    await sleep(5000);
    const before = rssBytes(proc.pid);
    progress(`${kind}: RSS before ${(before / MiB).toFixed(1)} MiB; flooding ${s.durationS} s`);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(proc.pid))), 200);
    const result = await flood({
      port: gatewayPort,
      kind,
      durationMs: s.durationS * 1000,
      connections: s.connections,
    });
    progress(
      `${kind}: flood over (${result.connectionsOpened} connections, ${(result.bytesSent / MiB).toFixed(0)} MiB sent); waiting ${s.afterS} s`,
    );
    await sleep(s.afterS * 1000);
    clearInterval(sampler);
    const after = rssBytes(proc.pid);
    const answersAfter = await probe(url, headers).then(
      (p) => p.status === 200,
      () => false,
    );
    const ratio = after / before;
    return {
      kind,
      beforeMiB: before / MiB,
      peakMiB: peak / MiB,
      afterMiB: after / MiB,
      ratio,
      pass: ratio <= TARGET_RATIO && answersAfter,
      flood: result,
      answersAfter,
    };
  } catch (err) {
    throw new Error(`${kind}: ${(err as Error).message}\n${tail(logFile)}`, { cause: err });
  } finally {
    await stop(proc);
  }
}

async function main(): Promise<void> {
  const s = settings();
  const missing = sluiceAvailable();
  if (missing) throw new Error(missing);
  const tmp = mkdtempSync(join(tmpdir(), 'sluice-h2-flood-'));
  if (!s.keep) atExit(() => rmSync(tmp, { recursive: true, force: true }));
  const upstream = createServer((_req, res) => res.end(BODY_100));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upstreamPort = (upstream.address() as { port: number }).port;
  const figures: FloodFigure[] = [];
  try {
    for (const kind of s.kinds) figures.push(await measure(kind, s, tmp, upstreamPort));
  } finally {
    upstream.close();
    await stopAll();
  }
  if (s.keep) progress(`temp dir kept: ${tmp}`);
  if (s.json) {
    process.stdout.write(JSON.stringify({ node: process.version, settings: s, figures }, null, 2) + '\n');
    return;
  }
  const lines = [
    `HTTP/2 floods against sluice serve --workers 1 on loopback, Node ${process.version}: ${s.durationS} s flood, ${s.connections} connections at once, memory read ${s.afterS} s after${s.quick ? ' (quick: indicative only)' : ''}`,
    '',
    'attack          RSS before    peak   after  after/before  connections  MiB sent  answers after',
    ...figures.map(
      (f) =>
        `${f.kind.padEnd(14)} ${f.beforeMiB.toFixed(1).padStart(7)} MiB ${f.peakMiB.toFixed(1).padStart(7)} ${f.afterMiB.toFixed(1).padStart(7)}  ${f.ratio.toFixed(2).padStart(11)}×  ${String(f.flood.connectionsOpened).padStart(11)}  ${(f.flood.bytesSent / MiB).toFixed(0).padStart(8)}  ${f.answersAfter ? 'yes' : 'NO'}`,
    ),
    '',
    'targets',
    ...figures.map(
      (f) =>
        `  ${f.pass ? 'PASS' : 'MISS'}  RSS ${s.afterS} s after a ${s.durationS} s ${f.kind} flood, over before   ${f.ratio.toFixed(2)}×   target ≤ ${TARGET_RATIO}× (and the gateway still answers)`,
    ),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

/**
 * Config-scale benchmark (issue 9 item 6), not a test. For each config (bench/configs/scale.ts:
 * the 10,000-route config and the 65,000-document stress file):
 *   1. `sluice validate` wall time (best of --validate-runs, each a fresh process);
 *   2. `sluice serve` (default workers, or --workers N) on it: time to the first answer, RSS;
 *   3. a paced load (200 req/s) without a change, then the same load while one VirtualService of
 *      the config is changed (rename-save of the file with one rule added to the benchmark
 *      VirtualService): how long until the new rule answers, p50/p99/max of the requests
 *      meanwhile against the steady phase, and the slowest requests placed on the save's clock;
 *   4. RSS of every sluice process after the change against after start.
 * Targets (printed PASS/MISS): validate of the 10,000-route config < 2 s; the change served
 * within 10 s; max during the change ≤ steady p99 + 100 ms; p99 during ≤ 2× steady p99; RSS after
 * ≤ 1.5× after start. Only 127.0.0.1; nothing is pinned (sluice's default workers use every core).
 *
 *   npm run bench:scale [-- --only scale|stress] [-- --workers N] [-- --json] [-- --help]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  generateScaleConfig,
  generateStressConfig,
  probeHost,
  renderConfig,
  withProbe,
  writeScaleConfig,
  type ScaleConfig,
} from './configs/scale.ts';
import { busyNow, readCpuTimes, sharesBetween } from './lib/cpu.ts';
import { runPaced } from './lib/latency.ts';
import { freePorts, probe, until200 } from './lib/net.ts';
import { BODY_100, findNginx, startUpstream } from './lib/nginx.ts';
import type { PacedResult } from './lib/paced-load.ts';
import {
  atExit,
  reapedChildrenCpuSeconds,
  setChildNiceness,
  spawnPinned,
  stop,
  stopAll,
  treeCpuSeconds,
  treeRss,
  type Proc,
} from './lib/procs.ts';
import { REPO_ROOT, SLUICE_MAIN, sluiceArgs, tail, type SluicePorts } from './lib/sluice.ts';

const HELP = `npm run bench:scale -- [flags]     (node bench/config-scale.ts [flags])

  --only NAME          scale | stress (default both)
  --workers N          sluice serve --workers N (default: sluice's default, the cores it may use)
  --rate N             paced load, req/s (default 200)
  --steady S           recorded seconds without a change (default 10)
  --change S           recorded seconds of the phase with the change (default 15; the save is 2 s in)
  --rounds N           (steady, change) pairs per config (default 2); each change adds a new rule
  --validate-runs N    validate runs per config, best kept (default 3)
  --main PATH          another checkout's src/main.ts (to compare with a previous version)
  --wait-calm S        first wait up to S s for a second in which no core is over 10 % busy
  --start-timeout S    how long serve may take to answer first (default 180)
  --nice N             run every process of the benchmark at this niceness (-10: ahead of other
                       work on a shared machine, at its expense; needs root)
  --json               results as JSON on stdout (progress on stderr)
  --keep               keep the temp dir (configs, logs)
  --help
`;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    workers: { type: 'string' },
    rate: { type: 'string', default: '200' },
    steady: { type: 'string', default: '10' },
    change: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '2' },
    'validate-runs': { type: 'string', default: '3' },
    'wait-calm': { type: 'string', default: '0' },
    'start-timeout': { type: 'string', default: '180' },
    nice: { type: 'string', default: '0' },
    main: { type: 'string', default: SLUICE_MAIN },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const MAIN = resolve(values.main);
const RATE = Number(values.rate);
const STEADY_S = Number(values.steady);
const CHANGE_S = Number(values.change);
const ROUNDS = Number(values.rounds);
const VALIDATE_RUNS = Number(values['validate-runs']);
const WORKERS = values.workers === undefined ? null : Number(values.workers);
const NICE = Number(values.nice);
setChildNiceness(NICE);
/** The change is saved this long into the recorded part of the phase. */
const SAVE_AT_MS = 2000;
const WARMUP_S = 2;
const SERVED_WITHIN_MS = 10_000;

const progress = (line: string): void => void process.stderr.write(`bench:scale: ${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ms = (us: number): string => (us / 1000).toFixed(1);
const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

/** Runs `sluice validate` once; wall ms and the summary line. */
function validateOnce(dir: string): Promise<{ ms: number; summary: string; code: number | null }> {
  return new Promise((resolveRun, reject) => {
    const t0 = performance.now();
    const argv = [process.execPath, MAIN, 'validate', '--config', dir];
    if (NICE !== 0) argv.unshift('nice', '-n', String(NICE));
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_ENV: 'production' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      resolveRun({ ms: performance.now() - t0, summary: out.trim().split('\n').pop() ?? '', code }),
    );
  });
}

interface Ports extends SluicePorts {
  readonly gateway: number;
}

function startSluice(name: string, dir: string, ports: Ports, logFile: string): Proc {
  return spawnPinned({
    name,
    cpu: null,
    command: process.execPath,
    args: sluiceArgs(dir, ports, WORKERS, MAIN),
    logFile,
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
  });
}

async function reloadCounts(metricsPort: number): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/stats/prometheus`, {
    signal: AbortSignal.timeout(5000),
  });
  const counts: Record<string, number> = {};
  for (const m of (await res.text()).matchAll(
    /^sluice_config_reloads_total\{[^}]*result="([^"]+)"[^}]*\}\s+(\S+)/gm,
  ))
    counts[m[1] as string] = Number(m[2]);
  return counts;
}

/** Save as editors do: a hidden temp file beside it, renamed over. */
function renameSave(file: string, text: string): void {
  const temp = join(file, '..', `.scale-bench-${process.pid}.tmp`);
  writeFileSync(temp, text);
  renameSync(temp, file);
}

interface Phase {
  readonly latency: PacedResult;
  /** Other processes' CPU (not sluice, not the bench's load side) during the phase, in cores. */
  readonly otherCores: number;
  readonly sluiceCores: number;
}

interface ChangePhase extends Phase {
  /** From the save to the first 200 of the new rule; null: not within the phase. */
  readonly servedMs: number | null;
  readonly reloads: Record<string, number>;
  /** The slowest requests, sent this many ms after the save (negative: before it). */
  readonly slowestAfterSave: readonly { atMs: number; serviceMs: number }[];
}

interface ConfigResult {
  readonly config: string;
  readonly bytes: number;
  readonly size: ScaleConfig['size'];
  readonly validate: { readonly bestMs: number; readonly runsMs: number[]; readonly summary: string };
  readonly startMs: number;
  readonly rssStart: { totalBytes: number; perPid: { pid: number; bytes: number }[] };
  readonly rssAfter: { totalBytes: number; perPid: { pid: number; bytes: number }[] };
  readonly steady: Phase[];
  readonly change: ChangePhase[];
  readonly processes: number;
}

let upstreamPid = 0;

/** The bench's own load side: this process, the paced client (reaped) and the upstream. */
function loadCpuSeconds(): number {
  const own = process.cpuUsage();
  return (own.user + own.system) / 1e6 + reapedChildrenCpuSeconds() + treeCpuSeconds(upstreamPid);
}

/** Runs a phase; also says how much CPU sluice and other processes on the machine used meanwhile. */
async function measured<T>(sluice: Proc, phase: () => Promise<T>): Promise<[T, number, number]> {
  const cpu0 = readCpuTimes();
  const s0 = treeCpuSeconds(sluice.pid);
  const l0 = loadCpuSeconds();
  const t0 = performance.now();
  const value = await phase();
  const wallS = (performance.now() - t0) / 1000;
  const sluiceCores = (treeCpuSeconds(sluice.pid) - s0) / wallS;
  const loadCores = (loadCpuSeconds() - l0) / wallS;
  const tasks = [...sharesBetween(cpu0, readCpuTimes()).values()].reduce((a, s) => a + s.tasks, 0);
  return [value, Math.max(0, tasks - sluiceCores - loadCores), sluiceCores];
}

async function runConfig(config: ScaleConfig, tmp: string, ports: Ports): Promise<ConfigResult> {
  const text = renderConfig(config);
  const dir = writeScaleConfig(tmp, config, text);
  const file = join(dir, config.fileName);
  progress(
    `${config.shape}: ${(Buffer.byteLength(text) / 1e6).toFixed(1)} MB, ${JSON.stringify(config.size)}`,
  );

  const runsMs: number[] = [];
  let summary = '';
  for (let i = 0; i < VALIDATE_RUNS; i++) {
    const v = await validateOnce(dir);
    if (v.code !== 0) throw new Error(`validate exited ${v.code}: ${v.summary}`);
    runsMs.push(v.ms);
    summary = v.summary;
    progress(`${config.shape}: validate ${v.ms.toFixed(0)} ms (${v.summary})`);
  }

  const logFile = join(tmp, `sluice-${config.shape}.log`);
  const url = `http://127.0.0.1:${ports.gateway}${config.request.path}`;
  const headers = { host: config.request.host, ...config.request.headers };
  const t0 = performance.now();
  const sluice = startSluice(`sluice-${config.shape}`, dir, ports, logFile);
  let exited: string | null = null;
  void sluice.exited.then((r) => (exited = r));
  try {
    await until200(url, headers, {
      deadlineMs: Number(values['start-timeout']) * 1000,
      bodyBytes: BODY_100.length,
      alive: () => exited,
    });
  } catch (err) {
    await stop(sluice, 10_000);
    throw new Error(`${String(err)}\n${tail(logFile)}`, { cause: err });
  }
  const startMs = performance.now() - t0;
  progress(`${config.shape}: serving after ${startMs.toFixed(0)} ms`);
  await sleep(3000);
  const rssStart = treeRss(sluice.pid);
  progress(
    `${config.shape}: RSS after start ${mib(rssStart.totalBytes)} MiB over ${rssStart.perPid.length} processes`,
  );

  const paced = (durationS: number): Promise<PacedResult> =>
    runPaced({
      cpu: null,
      url,
      rate: RATE,
      durationS,
      warmupS: WARMUP_S,
      connections: 16,
      headers,
      logFile: join(tmp, 'paced.log'),
    });

  const steady: Phase[] = [];
  const change: ChangePhase[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const [latency, otherCores, sluiceCores] = await measured(sluice, () => paced(STEADY_S));
    steady.push({ latency, otherCores, sluiceCores });
    progress(
      `${config.shape} [${round}/${ROUNDS}] steady: p50 ${ms(latency.serviceUs.p50)} p99 ${ms(latency.serviceUs.p99)} max ${ms(latency.serviceUs.max)} ms`,
    );

    const probeUrl = `http://127.0.0.1:${ports.gateway}${config.request.path}`;
    const before = await reloadCounts(ports.metrics);
    let savedAt = 0;
    let servedMs: number | null = null;
    const [latency2, other2, sluice2] = await measured(sluice, async () => {
      const load = paced(CHANGE_S);
      // The paced client starts, warms up, then records: save SAVE_AT_MS into the recording.
      await sleep(WARMUP_S * 1000 + 300 + SAVE_AT_MS);
      renameSave(file, withProbe(config, round));
      savedAt = Date.now();
      const deadline = savedAt + (CHANGE_S * 1000 - SAVE_AT_MS);
      while (Date.now() < deadline) {
        try {
          if ((await probe(probeUrl, { host: probeHost(round) }, 1000)).status === 200) {
            servedMs = Date.now() - savedAt;
            break;
          }
        } catch {
          // a refused or slow answer: keep polling
        }
        await sleep(20);
      }
      return load;
    });
    const reloads = Object.fromEntries(
      Object.entries(await reloadCounts(ports.metrics)).map(([k, v]) => [k, v - (before[k] ?? 0)]),
    );
    const slowestAfterSave = latency2.slowest.map((s) => ({
      atMs: Math.round(latency2.startedAtMs + s.sentAtMs - savedAt),
      serviceMs: s.serviceUs / 1000,
    }));
    change.push({
      latency: latency2,
      otherCores: other2,
      sluiceCores: sluice2,
      servedMs,
      reloads,
      slowestAfterSave,
    });
    progress(
      `${config.shape} [${round}/${ROUNDS}] change: served after ${servedMs ?? '-'} ms; p50 ${ms(latency2.serviceUs.p50)} p99 ${ms(latency2.serviceUs.p99)} max ${ms(latency2.serviceUs.max)} ms; reloads ${JSON.stringify(reloads)}`,
    );
  }
  await sleep(3000);
  const rssAfter = treeRss(sluice.pid);
  progress(`${config.shape}: RSS after the changes ${mib(rssAfter.totalBytes)} MiB`);
  await stop(sluice, 10_000);
  return {
    config: config.shape,
    bytes: Buffer.byteLength(text),
    size: config.size,
    validate: { bestMs: Math.min(...runsMs), runsMs, summary },
    startMs,
    rssStart,
    rssAfter,
    steady,
    change,
    processes: rssStart.perPid.length,
  };
}

/** A config whose run could not finish: what it got to, and why. */
interface ConfigFailure {
  readonly config: string;
  readonly error: string;
}

function formatText(
  info: Record<string, string>,
  results: readonly (ConfigResult | ConfigFailure)[],
): string {
  const out: string[] = ['sluice config-scale benchmark'];
  for (const [k, v] of Object.entries(info)) out.push(`  ${k.padEnd(12)}${v}`);
  for (const r of results) {
    out.push('');
    if ('error' in r) {
      out.push(`${r.config}: NOT MEASURED: ${r.error}`);
      continue;
    }
    out.push(
      `${r.config}: ${(r.bytes / 1e6).toFixed(1)} MB, ${r.size.documents.toLocaleString('en-US')} documents, ` +
        `${r.size.httpRoutes.toLocaleString('en-US')} HTTP routes, ${r.size.hosts.toLocaleString('en-US')} hosts, ` +
        `${r.size.virtualServices.toLocaleString('en-US')} VirtualServices, ${r.size.destinationRules.toLocaleString('en-US')} DestinationRules`,
    );
    const target = r.config === 'scale' ? ` (target < 2000 ms: ${verdict(r.validate.bestMs < 2000)})` : '';
    out.push(
      `  validate        best ${r.validate.bestMs.toFixed(0)} ms of ${r.validate.runsMs.map((x) => x.toFixed(0)).join(', ')}${target}; ${r.validate.summary}`,
    );
    out.push(`  serve start     first answer after ${r.startMs.toFixed(0)} ms; ${r.processes} processes`);
    out.push(
      '  phase                     p50 ms  p99 ms  max ms  failed  sluice cpu  other cpu  served after',
    );
    const row = (label: string, p: Phase, served: string): string => {
      const l = p.latency;
      const failed =
        l.errors + Object.entries(l.statusCounts).reduce((a, [k, v]) => a + (k === '200' ? 0 : v), 0);
      return (
        `  ${label.padEnd(24)}` +
        ms(l.serviceUs.p50).padStart(8) +
        ms(l.serviceUs.p99).padStart(8) +
        ms(l.serviceUs.max).padStart(8) +
        String(failed).padStart(8) +
        `${(p.sluiceCores * 100).toFixed(0)}%`.padStart(12) +
        `${(p.otherCores * 100).toFixed(0)}%`.padStart(11) +
        `  ${served}`
      );
    };
    r.steady.forEach((p, i) => out.push(row(`steady [${i + 1}]`, p, '')));
    r.change.forEach((p, i) =>
      out.push(
        row(
          `one VS changed [${i + 1}]`,
          p,
          `${p.servedMs === null ? 'not served' : `${p.servedMs} ms`}  ${JSON.stringify(p.reloads)}`,
        ),
      ),
    );
    for (const [i, c] of r.change.entries()) {
      const steadyP99 = (r.steady[i] as Phase).latency.serviceUs.p99 / 1000;
      const maxMs = c.latency.serviceUs.max / 1000;
      const p99Ratio = c.latency.serviceUs.p99 / 1000 / steadyP99;
      out.push(
        `  round ${i + 1}: served within 10 s: ${verdict(c.servedMs !== null && c.servedMs <= SERVED_WITHIN_MS)}; ` +
          `max ${maxMs.toFixed(1)} ms = steady p99 + ${(maxMs - steadyP99).toFixed(1)} ms (≤ +100: ${verdict(maxMs - steadyP99 <= 100)}); ` +
          `p99 ${p99Ratio.toFixed(2)}× steady (≤ 2×: ${verdict(p99Ratio <= 2)})`,
      );
      out.push(
        `    slowest: ${c.slowestAfterSave
          .slice(0, 5)
          .map((s) => `${s.serviceMs.toFixed(1)} ms at save${s.atMs >= 0 ? '+' : ''}${s.atMs} ms`)
          .join(', ')}`,
      );
    }
    const ratio = r.rssAfter.totalBytes / r.rssStart.totalBytes;
    out.push(
      `  RSS             after start ${mib(r.rssStart.totalBytes)} MiB (${r.rssStart.perPid.map((p) => mib(p.bytes)).join(' + ')}), ` +
        `after the changes ${mib(r.rssAfter.totalBytes)} MiB (${r.rssAfter.perPid.map((p) => mib(p.bytes)).join(' + ')}): ` +
        `${ratio.toFixed(2)}× (≤ 1.5×: ${verdict(ratio <= 1.5)})`,
    );
  }
  return out.join('\n') + '\n';
}

async function main(): Promise<void> {
  const started = new Date();
  const tmp = mkdtempSync(join(tmpdir(), 'sluice-scale-bench-'));
  if (!values.keep) atExit(() => rmSync(tmp, { recursive: true, force: true }));
  const [upstreamPort, gateway, status, metrics, admin] = await freePorts(5);
  if (
    upstreamPort === undefined ||
    gateway === undefined ||
    status === undefined ||
    metrics === undefined ||
    admin === undefined
  )
    throw new Error('no free ports');
  const ports: Ports = { gateway, status, metrics, admin };
  const busy = Object.entries(await busyNow(Number(values['wait-calm']), progress))
    .map(([c, f]) => `cpu${c} ${(f * 100).toFixed(0)}%`)
    .join(', ');
  const nginx = findNginx();
  const upstream = startUpstream({ nginx, dir: tmp, port: upstreamPort, cpu: null });
  upstreamPid = upstream.pid;
  await until200(`http://127.0.0.1:${upstreamPort}/`, {}, { deadlineMs: 10_000, bodyBytes: BODY_100.length });

  const opts = { gatewayPort: gateway, upstreamPort };
  const shapes = values.only === undefined ? ['scale', 'stress'] : [values.only];
  const results: (ConfigResult | ConfigFailure)[] = [];
  for (const shape of shapes) {
    const config =
      shape === 'scale' ? generateScaleConfig(opts) : shape === 'stress' ? generateStressConfig(opts) : null;
    if (config === null) throw new Error(`--only: scale or stress, got ${shape}`);
    try {
      results.push(await runConfig(config, tmp, ports));
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      progress(`${shape}: ${error}`);
      results.push({ config: shape, error: error.split('\n')[0] ?? error });
    }
  }
  await stop(upstream);
  const info = {
    started: started.toISOString(),
    runtime: `Node ${process.version}; ${availableParallelism()} cores; ${
      /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU'
    }`,
    machine: `busy before start (1 s): ${busy} — other processes`,
    sluice: `${MAIN.startsWith(REPO_ROOT) ? MAIN.slice(REPO_ROOT.length) : MAIN} serve, ${WORKERS === null ? 'default workers (the cores it may use)' : `--workers ${WORKERS}`}; nothing pinned${NICE !== 0 ? `; every process at nice ${NICE}` : ''}`,
    upstream: nginx ? `${nginx.version}, fixed 100-byte body` : 'node:http, fixed 100-byte body',
    load: `bench/lib/paced-load.ts, ${RATE} req/s, 16 connections; steady ${STEADY_S} s, change ${CHANGE_S} s with the save ${SAVE_AT_MS} ms in, after ${WARMUP_S} s warm-up each`,
    change:
      'rename-save of the file with one host added to the benchmark VirtualService (probe-N.scale.test answers 200 once served)',
  };
  if (values.json) process.stdout.write(JSON.stringify({ info, results }, null, 2) + '\n');
  else process.stdout.write(formatText(info, results));
  if (values.keep) progress(`kept ${tmp}`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
  });

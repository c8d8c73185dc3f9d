/**
 * Operations benchmark (issue 4 item 10), not a test: in one run,
 *   1. keep-alive req/s through sluice with `--workers 1` (alone on CPU 0) and `--workers 2` (both
 *      cores, so the workers share them with the upstream and wrk: on a 2-core machine this cannot
 *      show scaling fairly, and the output says so);
 *   2. latency at a paced load through sluice `--workers 1` without reloads, then while the config
 *      file is rename-saved N times (two valid route sets, alternating, both routing the request
 *      to the upstream), checking on the metrics port that each save became an accepted reload
 *      and counting every failed request.
 * Reuses bench/lib (pinning, wrk, the paced client, CPU-disturbance accounting). Only 127.0.0.1.
 *
 *   npm run bench:ops [-- --quick] [-- --json] [-- --help]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { generateConfig, writeConfig, type GeneratedConfig } from './configs/generate.ts';
import { busyNow, readCpuTimes, sharesBetween } from './lib/cpu.ts';
import { runPaced } from './lib/latency.ts';
import { freePorts, until200 } from './lib/net.ts';
import { BODY_100, findNginx, startNginx, upstreamConf } from './lib/nginx.ts';
import type { PacedResult } from './lib/paced-load.ts';
import {
  atExit,
  reapedChildrenCpuSeconds,
  spawnPinned,
  stop,
  stopAll,
  treeCpuSeconds,
  type Proc,
} from './lib/procs.ts';
import {
  backgroundOnLoadCore,
  backgroundOnProxyCore,
  DISTURBED,
  type PhaseCpu,
  type Throughput,
} from './lib/report.ts';
import { REPO_ROOT, sluiceArgs, sluiceAvailable, startSluice, tail, type SluicePorts } from './lib/sluice.ts';
import { findWrk, runWrk } from './lib/wrk.ts';

const HELP = `npm run bench:ops -- [flags]     (node bench/operations.ts [flags])

  --quick                 smoke run: short phases, 10 reloads, one round (figures indicative only)
  --json                  print the results as JSON on stdout (progress stays on stderr)
  --duration S            wrk throughput phase per worker count (default 10, quick 2)
  --warmup S              wrk warm-up before it, not recorded (default 3, quick 1)
  --connections N         wrk connections (default 50; one wrk thread)
  --rate N                paced request rate for the reload phases, req/s (default 1000)
  --latency-duration S    paced phase, recorded (default 12, quick 6)
  --reloads N             config rewrites during a reload phase (default 20, quick 10)
  --reload-interval MS    time between rewrites (default 500: each becomes its own reload)
  --rounds N              latency: N pairs of (without reloads, with reloads), interleaved
                          (default 2, quick 1); each condition reports its round with the lowest p99
  --retries N             measure a phase again when other processes used more than 10 % of a
                          core meanwhile, at most N times per run, a third of them per leg or phase
                          (default 6, quick 1)
  --wait-calm S           first wait up to S s for a second in which no core is over 10 % busy
  --upstream KIND         auto | nginx | node  (default auto: nginx when installed)
  --keep                  keep the temp dir (configs, logs) and print its path
  --help
`;

interface Settings {
  readonly quick: boolean;
  readonly json: boolean;
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly rate: number;
  readonly latencyS: number;
  readonly latencyWarmupS: number;
  readonly pacedConnections: number;
  readonly reloads: number;
  readonly reloadIntervalMs: number;
  readonly rounds: number;
  readonly retries: number;
  readonly upstream: 'auto' | 'nginx' | 'node';
  readonly keep: boolean;
  readonly waitCalmS: number;
}

function readSettings(): Settings | null {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '50' },
      rate: { type: 'string', default: '1000' },
      'latency-duration': { type: 'string' },
      reloads: { type: 'string' },
      'reload-interval': { type: 'string', default: '500' },
      rounds: { type: 'string' },
      retries: { type: 'string' },
      upstream: { type: 'string', default: 'auto' },
      keep: { type: 'boolean', default: false },
      'wait-calm': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return null;
  }
  const quick = values.quick;
  const num = (v: string | undefined, full: number, short: number): number => {
    const n = v === undefined ? (quick ? short : full) : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  const upstream = values.upstream;
  if (upstream !== 'auto' && upstream !== 'nginx' && upstream !== 'node')
    throw new Error(`--upstream: auto, nginx or node, got ${upstream}`);
  const s: Settings = {
    quick,
    json: values.json,
    durationS: num(values.duration, 10, 2),
    warmupS: num(values.warmup, 3, 1),
    connections: Math.round(num(values.connections, 50, 50)),
    rate: num(values.rate, 1000, 1000),
    latencyS: num(values['latency-duration'], 12, 6),
    latencyWarmupS: quick ? 1 : 2,
    pacedConnections: 64,
    reloads: Math.round(num(values.reloads, 20, 10)),
    reloadIntervalMs: num(values['reload-interval'], 500, 500),
    rounds: Math.round(num(values.rounds, 2, 1)),
    retries: values.retries === '0' ? 0 : Math.round(num(values.retries, 6, 1)),
    upstream,
    keep: values.keep,
    waitCalmS: Number(values['wait-calm']),
  };
  // The rewrites must all land inside the recorded window (they start RELOAD_LEAD_MS into it).
  const spanS = (RELOAD_LEAD_MS + s.reloads * s.reloadIntervalMs) / 1000;
  if (spanS > s.latencyS)
    throw new Error(
      `${s.reloads} reloads ${s.reloadIntervalMs} ms apart need ${spanS.toFixed(1)} s: raise --latency-duration`,
    );
  return s;
}

/** Rewrites start this long after the paced client's warm-up would end (its own start-up included). */
const RELOAD_LEAD_MS = 500;

function progress(line: string): void {
  process.stderr.write(`bench:ops: ${line}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cpuModel(): string {
  try {
    return (
      /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU'
    );
  } catch {
    return 'unknown CPU';
  }
}

function exitedReason(proc: Proc): () => string | null {
  let reason: string | null = null;
  void proc.exited.then((r) => (reason = r));
  return () => reason;
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Runs one phase and says where the CPU went meanwhile (as e2e.ts does): per-CPU shares, the
 * proxy's process tree, and the benchmark's load side (upstream tree, reaped children — wrk or
 * the paced client — and this process).
 */
async function withCpu<T>(proxy: Proc, upstreamPid: number, phase: () => Promise<T>): Promise<[T, PhaseCpu]> {
  const loadCpuSeconds = (): number =>
    reapedChildrenCpuSeconds() + treeCpuSeconds(upstreamPid) + ownCpuSeconds();
  const cpuBefore = readCpuTimes();
  const procBefore = treeCpuSeconds(proxy.pid);
  const loadBefore = loadCpuSeconds();
  const t0 = performance.now();
  const value = await phase();
  const wallS = (performance.now() - t0) / 1000;
  const procAfter = treeCpuSeconds(proxy.pid);
  const loadAfter = loadCpuSeconds();
  const shares = sharesBetween(cpuBefore, readCpuTimes());
  return [
    value,
    {
      cpu: Object.fromEntries([...shares].map(([cpu, share]) => [String(cpu), share])),
      proxyCores: (procAfter - procBefore) / wallS,
      benchLoadCores: (loadAfter - loadBefore) / wallS,
    },
  ];
}

/**
 * Process time on all cores not charged to sluice or the bench's load side, in cores: for
 * `--workers 2`, whose workers may run on any core, so per-core accounting does not apply.
 */
function backgroundAllCores(t: PhaseCpu): number {
  const tasks = Object.values(t.cpu).reduce((a, c) => a + c.tasks, 0);
  return Math.max(0, tasks - (t.proxyCores ?? 0) - t.benchLoadCores);
}

/** Why a phase's figures cannot be trusted (other processes on our cores), or null. */
function disturbance(cpu: PhaseCpu, pinned: boolean): string | null {
  const reasons: string[] = [];
  if (pinned) {
    const other0 = backgroundOnProxyCore(cpu);
    const other1 = backgroundOnLoadCore(cpu);
    if (other0 !== undefined && other0 > DISTURBED) reasons.push(`other processes ${pct(other0)} of CPU 0`);
    if (other1 !== undefined && other1 > DISTURBED) reasons.push(`other processes ${pct(other1)} of CPU 1`);
  } else {
    const other = backgroundAllCores(cpu);
    if (other > DISTURBED) reasons.push(`other processes ${pct(other)} of a core (both cores together)`);
  }
  return reasons.length > 0 ? reasons.join(', ') : null;
}

function pct(f: number | undefined): string {
  return f === undefined || !Number.isFinite(f) ? '-' : `${(f * 100).toFixed(0)}%`;
}
function ms(us: number | undefined): string {
  return us === undefined || !Number.isFinite(us) ? '-' : (us / 1000).toFixed(3);
}
function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/**
 * The second route set: the benchmark config plus one rule ahead of the target that never matches
 * the benchmark request and routes to the same upstream. Alternating the two changes the compiled
 * snapshot on every save while every benchmark request keeps reaching the upstream.
 */
function variantConfig(base: GeneratedConfig): string {
  const docs = parseAllDocuments(base.text).map((d) => d.toJS() as Record<string, unknown>);
  const vs = docs.find((d) => d['kind'] === 'VirtualService');
  const spec = vs?.['spec'] as { http?: { route?: unknown }[] } | undefined;
  const target = spec?.http?.[0];
  if (!spec?.http || !target) throw new Error('bench config has no VirtualService http rule to vary');
  spec.http.unshift({
    name: 'reload-variant',
    match: [{ uri: { prefix: '/reload-variant/' } }],
    route: target.route,
  } as { route?: unknown });
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/** Save as editors do: write a hidden temp file beside it (the watcher ignores dot files), rename over. */
function renameSave(file: string, dir: string, text: string): void {
  const temp = join(dir, `.ops-bench-${process.pid}.tmp`);
  writeFileSync(temp, text);
  renameSync(temp, file);
}

type ReloadCounts = Readonly<Record<string, number>>;

/** sluice_config_reloads_total by result, from the metrics port. */
async function reloadCounts(metricsPort: number): Promise<ReloadCounts> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/stats/prometheus`, {
    signal: AbortSignal.timeout(3000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`metrics port answered ${res.status}`);
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^sluice_config_reloads_total\{[^}]*result="([^"]+)"[^}]*\}\s+(\S+)/gm))
    counts[m[1] as string] = Number(m[2]);
  return counts;
}

function delta(after: ReloadCounts, before: ReloadCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)]))
    out[k] = (after[k] ?? 0) - (before[k] ?? 0);
  return out;
}

/** A gauge's value from the metrics port, or null. */
async function gauge(metricsPort: number, name: string): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/stats/prometheus`, {
      signal: AbortSignal.timeout(3000),
    });
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm').exec(await res.text());
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

interface ThroughputResult {
  readonly workers: number;
  readonly placement: string;
  /** The round kept (best req/s) and every round measured. */
  readonly best: Throughput;
  readonly rounds: readonly Throughput[];
  readonly remeasured: readonly string[];
  /** Set when the kept round was still disturbed. */
  readonly warning: string | null;
}

interface LatencyPhase {
  readonly latency: PacedResult;
  readonly cpu: PhaseCpu;
  /** Requests that failed: transport errors plus non-200 answers. */
  readonly failed: number;
  readonly reload?: {
    readonly saves: number;
    /** seconds from the paced client's start to the first and last save */
    readonly firstSaveS: number;
    readonly lastSaveS: number;
    readonly counted: Readonly<Record<string, number>>;
  };
  readonly disturbed: string | null;
}

function failedOf(l: PacedResult): number {
  return l.errors + Object.entries(l.statusCounts).reduce((a, [k, v]) => a + (k === '200' ? 0 : v), 0);
}

interface Sluice {
  readonly proc: Proc;
  readonly url: string;
  readonly ports: SluicePorts;
}

interface Context {
  readonly s: Settings;
  readonly tmp: string;
  readonly loadCpu: number | null;
  /** os.availableParallelism() before this process pinned itself to the load core */
  readonly cores: number;
  readonly upstreamPid: number;
  readonly headers: Readonly<Record<string, string>>;
  retriesLeft: number;
}

async function startSluiceWith(
  ctx: Context,
  name: string,
  workers: number,
  configDir: string,
  ports: SluicePorts,
  /** one CPU, or 'all': every core (children would otherwise inherit this process's CPU 1) */
  cpu: number | 'all' | null,
  url: string,
): Promise<Sluice> {
  const logFile = join(ctx.tmp, `${name}.log`);
  let proc: Proc;
  if (workers === 1 && cpu !== 'all') {
    proc = startSluice({ name, configDir, ports, cpu, logFile });
  } else {
    const args = sluiceArgs(configDir, ports);
    args[args.indexOf('--workers') + 1] = String(workers);
    const allCpus = `0-${ctx.cores - 1}`;
    proc = spawnPinned({
      name,
      cpu: cpu === 'all' ? null : cpu,
      command: cpu === 'all' ? 'taskset' : process.execPath,
      args: cpu === 'all' ? ['-c', allCpus, process.execPath, ...args] : args,
      logFile,
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'production' },
    });
  }
  return { proc, url, ports };
}

async function waitServing(ctx: Context, sl: Sluice, workers: number): Promise<void> {
  try {
    await until200(sl.url, ctx.headers, {
      deadlineMs: 30_000,
      bodyBytes: BODY_100.length,
      alive: exitedReason(sl.proc),
    });
    if (workers > 1) {
      const end = Date.now() + 15_000;
      let n: number | null = null;
      while (Date.now() < end && (n = await gauge(sl.ports.metrics, 'sluice_workers')) !== workers)
        await sleep(200);
      if (n !== workers) throw new Error(`sluice_workers is ${n}, expected ${workers}`);
    }
  } catch (err) {
    throw new Error(
      `${sl.proc.name}: ${err instanceof Error ? err.message : String(err)}\n    log ${sl.proc.logFile}:\n${tail(sl.proc.logFile).replace(/^/gm, '      ')}`,
      { cause: err },
    );
  }
}

interface ThroughputLeg {
  readonly workers: number;
  readonly sl: Sluice;
  /** per-core disturbance accounting (sluice alone on CPU 0) or all cores together */
  readonly pinned: boolean;
  readonly placement: string;
  readonly rounds: Throughput[];
  readonly remeasured: string[];
  retries: number;
}

/** One throughput round of one leg (warm-up first the first time), measured again while disturbed. */
async function throughputRound(ctx: Context, leg: ThroughputLeg, round: number): Promise<void> {
  const { s } = ctx;
  const wrkOpts = {
    cpu: ctx.loadCpu,
    url: leg.sl.url,
    threads: 1,
    connections: s.connections,
    headers: ctx.headers,
    logFile: join(ctx.tmp, `wrk-workers-${leg.workers}.log`),
  };
  const tag = `--workers ${leg.workers} [round ${round + 1}/${s.rounds}]`;
  if (round === 0) {
    progress(`${tag}: wrk warm-up ${s.warmupS} s`);
    await runWrk({ ...wrkOpts, durationS: s.warmupS });
  }
  for (;;) {
    progress(`${tag}: throughput ${s.durationS} s`);
    const [wrk, cpu] = await withCpu(leg.sl.proc, ctx.upstreamPid, () =>
      runWrk({ ...wrkOpts, durationS: s.durationS }),
    );
    const t: Throughput = { ...wrk, ...cpu };
    leg.rounds.push(t);
    progress(
      `${tag}: ${int(t.requestsPerSec)} req/s, sluice used ${pct(t.proxyCores ?? undefined)} of a core`,
    );
    const why = disturbance(t, leg.pinned);
    if (why === null || ctx.retriesLeft <= 0 || leg.retries <= 0) return;
    ctx.retriesLeft--;
    leg.retries--;
    leg.remeasured.push(why);
    progress(`${tag}: disturbed (${why}); measuring again (${ctx.retriesLeft} retries left)`);
  }
}

function throughputResult(leg: ThroughputLeg): ThroughputResult {
  const best = leg.rounds.reduce((a, b) => (b.requestsPerSec > a.requestsPerSec ? b : a));
  const why = disturbance(best, leg.pinned);
  return {
    workers: leg.workers,
    placement: leg.placement,
    best,
    rounds: leg.rounds,
    remeasured: leg.remeasured,
    warning: why === null ? null : `${why} in the reported round: figures disturbed`,
  };
}

async function pacedPhase(
  ctx: Context,
  sl: Sluice,
  reload: { file: string; dir: string; texts: readonly [string, string] } | null,
): Promise<LatencyPhase> {
  const { s } = ctx;
  const run = (): Promise<PacedResult> =>
    runPaced({
      cpu: ctx.loadCpu,
      url: sl.url,
      rate: s.rate,
      durationS: s.latencyS,
      warmupS: s.latencyWarmupS,
      connections: s.pacedConnections,
      headers: ctx.headers,
      logFile: join(ctx.tmp, 'paced.log'),
    });
  if (!reload) {
    const [latency, cpu] = await withCpu(sl.proc, ctx.upstreamPid, run);
    return { latency, cpu, failed: failedOf(latency), disturbed: disturbance(cpu, true) };
  }
  const before = await reloadCounts(sl.ports.metrics);
  const t0 = performance.now();
  const measured = withCpu(sl.proc, ctx.upstreamPid, run);
  // Let the client start and warm up; then save every interval. texts[1] is the variant, so the
  // first save changes the routes, and an even count ends on the base config.
  await sleep(s.latencyWarmupS * 1000 + RELOAD_LEAD_MS);
  let firstSaveS = NaN;
  let lastSaveS = NaN;
  for (let i = 0; i < s.reloads; i++) {
    const at = performance.now();
    renameSave(reload.file, reload.dir, reload.texts[(i + 1) % 2] as string);
    if (i === 0) firstSaveS = (at - t0) / 1000;
    lastSaveS = (at - t0) / 1000;
    if (i < s.reloads - 1) await sleep(Math.max(0, s.reloadIntervalMs - (performance.now() - at)));
  }
  const [latency, cpu] = await measured;
  // The last save may still be in its debounce: wait for the count, then read it.
  const end = Date.now() + 5000;
  let counted = delta(await reloadCounts(sl.ports.metrics), before);
  while ((counted['accepted'] ?? 0) < s.reloads && Date.now() < end) {
    await sleep(200);
    counted = delta(await reloadCounts(sl.ports.metrics), before);
  }
  if (s.reloads % 2 === 1) {
    // leave the base routes in place for the next phase (outside any measurement)
    renameSave(reload.file, reload.dir, reload.texts[0]);
    await sleep(s.reloadIntervalMs);
  }
  return {
    latency,
    cpu,
    failed: failedOf(latency),
    reload: { saves: s.reloads, firstSaveS, lastSaveS, counted },
    disturbed: disturbance(cpu, true),
  };
}

/** Measures a phase again while other processes disturbed it, within the run's retry budget. */
async function withRetries(
  ctx: Context,
  label: string,
  measure: () => Promise<LatencyPhase>,
): Promise<{ kept: LatencyPhase[]; remeasured: string[] }> {
  const kept: LatencyPhase[] = [];
  const remeasured: string[] = [];
  let legRetries = Math.max(1, Math.ceil(ctx.s.retries / 3));
  for (;;) {
    const p = await measure();
    kept.push(p);
    progress(
      `${label}: p50 ${ms(p.latency.serviceUs.p50)} p99 ${ms(p.latency.serviceUs.p99)} max ${ms(p.latency.serviceUs.max)} ms, ` +
        `${p.failed} failed${p.reload ? `, accepted reloads +${p.reload.counted['accepted'] ?? 0}` : ''}`,
    );
    if (p.disturbed === null || ctx.retriesLeft <= 0 || legRetries <= 0) break;
    ctx.retriesLeft--;
    legRetries--;
    remeasured.push(p.disturbed);
    progress(`${label}: disturbed (${p.disturbed}); measuring again (${ctx.retriesLeft} retries left)`);
  }
  return { kept, remeasured };
}

function lowestP99(phases: readonly LatencyPhase[]): LatencyPhase {
  return phases.reduce((a, b) => (b.latency.serviceUs.p99 < a.latency.serviceUs.p99 ? b : a));
}

interface LatencySummary {
  readonly baseline: LatencyPhase;
  readonly reloading: LatencyPhase;
  readonly baselineRounds: readonly LatencyPhase[];
  readonly reloadRounds: readonly LatencyPhase[];
  readonly remeasured: readonly string[];
  readonly p99Ratio: number;
  readonly p99AddedMs: number;
  readonly totalFailed: number;
  readonly totalRequests: number;
  readonly reloadsAccepted: number;
  readonly reloadsSaved: number;
}

const SCALING_NOTE =
  'This machine has 2 cores: with --workers 2 the two workers share them with the upstream and wrk ' +
  '(pinned to CPU 1), so no worker has a core of its own and the load generator competes with them. ' +
  '2 cores cannot show scaling fairly; both raw figures are printed, not a scaling factor. Judge ' +
  'scaling on a machine with at least 4 cores (each worker on its own core, the load elsewhere).';

async function main(): Promise<void> {
  const s = readSettings();
  if (!s) return;
  const started = new Date();
  const cores = availableParallelism();
  const pinned = cores >= 2;
  const proxyCpu = pinned ? 0 : null;
  const loadCpu = pinned ? 1 : null;
  if (pinned)
    spawnSync('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)], { stdio: 'ignore' });

  const missing = sluiceAvailable();
  if (missing) throw new Error(missing);
  const wrk = findWrk();
  if (!wrk) throw new Error('wrk is not installed: apt-get install -y wrk (the throughput figures need it)');
  const nginx = findNginx();
  const upstreamKind = s.upstream === 'auto' ? (nginx ? 'nginx' : 'node') : s.upstream;
  if (upstreamKind === 'nginx' && !nginx)
    throw new Error('--upstream nginx: nginx is not installed (apt-get install -y nginx-light)');

  const tmp = mkdtempSync(join(tmpdir(), 'sluice-ops-bench-'));
  if (!s.keep) atExit(() => rmSync(tmp, { recursive: true, force: true }));
  // every port at once: two calls could hand back the same port
  const [upstreamPort, gw1, gw2, decoyPort, ...admin] = await freePorts(10);
  if (upstreamPort === undefined || gw1 === undefined || gw2 === undefined || decoyPort === undefined)
    throw new Error('no free ports');
  const portsOf = (i: number): SluicePorts => ({
    status: admin[i * 3] as number,
    metrics: admin[i * 3 + 1] as number,
    admin: admin[i * 3 + 2] as number,
  });
  const config1 = generateConfig('one-rule', { gatewayPort: gw1, upstreamPort, decoyPort });
  const config2 = generateConfig('one-rule', { gatewayPort: gw2, upstreamPort, decoyPort });
  const dir1 = writeConfig(join(tmp, 'workers-1'), config1);
  const dir2 = writeConfig(join(tmp, 'workers-2'), config2);
  const file1 = join(dir1, config1.fileName);
  const texts: readonly [string, string] = [config1.text, variantConfig(config1)];
  const request = config1.request;
  const headers = { host: request.host, ...request.headers };

  const idleBusy = await busyNow(s.waitCalmS, progress);
  progress(`temp dir ${tmp}; upstream ${upstreamKind} on 127.0.0.1:${upstreamPort}`);
  const upstream =
    upstreamKind === 'nginx'
      ? startNginx({
          nginx: (nginx as { path: string }).path,
          name: 'upstream',
          dir: join(tmp, 'nginx-upstream'),
          conf: upstreamConf(join(tmp, 'nginx-upstream'), upstreamPort),
          cpu: loadCpu,
        })
      : spawnPinned({
          name: 'upstream',
          cpu: loadCpu,
          command: process.execPath,
          args: [new URL('./lib/upstream-node.ts', import.meta.url).pathname, String(upstreamPort)],
          logFile: join(tmp, 'upstream-node.log'),
        });
  await until200(`http://127.0.0.1:${upstreamPort}${request.path}`, headers, {
    deadlineMs: 10_000,
    bodyBytes: BODY_100.length,
    alive: exitedReason(upstream),
  });
  const ctx: Context = { s, tmp, loadCpu, cores, upstreamPid: upstream.pid, headers, retriesLeft: s.retries };

  // Both sluices start up front (the idle one costs nothing measurable), so throughput rounds
  // interleave: other work on the machine then tends to hit both worker counts alike.
  progress(`--workers 1: starting sluice on 127.0.0.1:${gw1} (CPU ${proxyCpu ?? 'any'})`);
  const w1 = await startSluiceWith(
    ctx,
    'sluice-workers-1',
    1,
    dir1,
    portsOf(0),
    proxyCpu,
    `http://127.0.0.1:${gw1}${request.path}`,
  );
  progress(`--workers 2: starting sluice on 127.0.0.1:${gw2} (both cores)`);
  const w2 = await startSluiceWith(
    ctx,
    'sluice-workers-2',
    2,
    dir2,
    portsOf(1),
    pinned ? 'all' : null,
    `http://127.0.0.1:${gw2}${request.path}`,
  );
  await waitServing(ctx, w1, 1);
  await waitServing(ctx, w2, 2);
  const legRetries = Math.max(1, Math.ceil(s.retries / 3));
  const legs: ThroughputLeg[] = [
    {
      workers: 1,
      sl: w1,
      pinned,
      placement: pinned ? 'sluice alone on CPU 0; upstream + wrk on CPU 1' : 'nothing pinned (1 core)',
      rounds: [],
      remeasured: [],
      retries: legRetries,
    },
    {
      workers: 2,
      sl: w2,
      pinned: false,
      placement: pinned
        ? 'sluice primary + 2 workers on both cores (taskset -c 0-1); upstream + wrk on CPU 1'
        : 'nothing pinned (1 core)',
      rounds: [],
      remeasured: [],
      retries: legRetries,
    },
  ];
  for (let round = 0; round < s.rounds; round++)
    for (const leg of legs) await throughputRound(ctx, leg, round);
  const [t1, t2] = legs.map(throughputResult) as [ThroughputResult, ThroughputResult];
  await stop(w2.proc);

  // Latency pairs on the 1-worker sluice, alone on CPU 0: without reloads, then with.
  const baselineRounds: LatencyPhase[] = [];
  const reloadRounds: LatencyPhase[] = [];
  const remeasured: string[] = [];
  for (let round = 0; round < s.rounds; round++) {
    const tag = `[round ${round + 1}/${s.rounds}]`;
    progress(`latency ${tag}: ${s.rate} req/s for ${s.latencyS} s, no reloads`);
    const b = await withRetries(ctx, `no reloads ${tag}`, () => pacedPhase(ctx, w1, null));
    baselineRounds.push(...b.kept);
    remeasured.push(...b.remeasured.map((w) => `no reloads: ${w}`));
    progress(
      `latency ${tag}: ${s.rate} req/s for ${s.latencyS} s, ${s.reloads} rename-saves ${s.reloadIntervalMs} ms apart`,
    );
    const r = await withRetries(ctx, `${s.reloads} reloads ${tag}`, () =>
      pacedPhase(ctx, w1, { file: file1, dir: dir1, texts }),
    );
    reloadRounds.push(...r.kept);
    remeasured.push(...r.remeasured.map((w) => `reloads: ${w}`));
  }
  await stop(w1.proc);
  await stop(upstream);

  const baseline = lowestP99(baselineRounds);
  const reloading = lowestP99(reloadRounds);
  const all = [...baselineRounds, ...reloadRounds];
  const summary: LatencySummary = {
    baseline,
    reloading,
    baselineRounds,
    reloadRounds,
    remeasured,
    p99Ratio: reloading.latency.serviceUs.p99 / baseline.latency.serviceUs.p99,
    p99AddedMs: (reloading.latency.serviceUs.p99 - baseline.latency.serviceUs.p99) / 1000,
    totalFailed: all.reduce((a, p) => a + p.failed, 0),
    totalRequests: all.reduce((a, p) => a + p.latency.sent, 0),
    reloadsAccepted: reloadRounds.reduce((a, p) => a + (p.reload?.counted['accepted'] ?? 0), 0),
    reloadsSaved: reloadRounds.reduce((a, p) => a + (p.reload?.saves ?? 0), 0),
  };

  const info = {
    startedAt: started.toISOString(),
    elapsedS: (Date.now() - started.getTime()) / 1000,
    node: process.version,
    cores,
    cpuModel: cpuModel(),
    idleCpuBusy: idleBusy,
    upstream:
      upstreamKind === 'nginx'
        ? `${nginx?.version ?? 'nginx'} answering a fixed 100-byte body (return 200), keep-alive, on CPU 1`
        : 'node:http server (bench/lib/upstream-node.ts), 100-byte body, keep-alive, on CPU 1',
    request: `GET ${request.path}  host: ${request.host}  ${Object.entries(request.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  ')}`,
    config: `bench/configs one-rule (${config1.size.resources} resources); the reload variant adds one rule ahead of the target that the request does not match, same upstream`,
    throughputSettings: `wrk ${wrk.version} -t1 -c${s.connections} -d${s.durationS}s, keep-alive, after a ${s.warmupS} s warm-up; best of the rounds measured`,
    latencySettings: `bench/lib/paced-load.ts (undici Pool, ${s.pacedConnections} connections, open loop) at ${s.rate} req/s for ${s.latencyS} s after ${s.latencyWarmupS} s; sluice --workers 1 alone on CPU 0; ${s.rounds} interleaved pair(s), each condition's round with the lowest p99 reported`,
    reloadSettings: `${s.reloads} rename-saves (temp file + rename) ${s.reloadIntervalMs} ms apart of ${file1.slice(tmp.length + 1)}, alternating two valid route sets, starting ${RELOAD_LEAD_MS} ms into the recorded window`,
    quick: s.quick,
    tempDir: tmp,
  };
  const throughput = {
    workers1: t1,
    workers2: t2,
    ratio2to1: t2.best.requestsPerSec / t1.best.requestsPerSec,
    note: SCALING_NOTE,
  };
  if (s.json) {
    process.stdout.write(JSON.stringify({ info, throughput, reload: summary }, null, 2) + '\n');
  } else {
    process.stdout.write(formatText(info, throughput, summary, s));
  }
  if (s.keep) progress(`kept ${tmp}`);
}

function formatText(
  info: {
    startedAt: string;
    elapsedS: number;
    node: string;
    cores: number;
    cpuModel: string;
    idleCpuBusy: Record<string, number>;
    upstream: string;
    request: string;
    config: string;
    throughputSettings: string;
    latencySettings: string;
    reloadSettings: string;
    quick: boolean;
  },
  throughput: { workers1: ThroughputResult; workers2: ThroughputResult; ratio2to1: number; note: string },
  r: LatencySummary,
  s: Settings,
): string {
  const out: string[] = [];
  out.push(
    `sluice operations benchmark${info.quick ? ' (--quick: short phases, figures are indicative only)' : ''}`,
  );
  out.push(`  started     ${info.startedAt}, took ${info.elapsedS.toFixed(0)} s`);
  out.push(`  runtime     Node ${info.node}; ${info.cores} cores; ${info.cpuModel}`);
  out.push(
    `  machine     busy before start (1 s): ${
      Object.entries(info.idleCpuBusy)
        .map(([c, f]) => `cpu${c} ${pct(f)}`)
        .join(', ') || 'n/a'
    } — other processes`,
  );
  out.push(`  upstream    ${info.upstream}`);
  out.push(`  request     ${info.request}`);
  out.push(`  config      ${info.config}`);
  out.push('');
  out.push(`workers: keep-alive throughput (${info.throughputSettings})`);
  const cpuIds = [
    ...new Set([throughput.workers1, throughput.workers2].flatMap((t) => Object.keys(t.best.cpu))),
  ].sort();
  out.push(
    pad('', 14) +
      lpad('req/s', 10) +
      lpad('sluice cpu', 11) +
      cpuIds.map((c) => lpad(`cpu${c}`, 6)).join('') +
      lpad('other', 7) +
      lpad('wrk p50', 9) +
      lpad('wrk p99', 9) +
      '  errors  placement',
  );
  for (const t of [throughput.workers1, throughput.workers2]) {
    const b = t.best;
    const other =
      t.workers === 1
        ? (backgroundOnProxyCore(b) ?? 0) + (backgroundOnLoadCore(b) ?? 0)
        : backgroundAllCores(b);
    out.push(
      pad(`--workers ${t.workers}`, 14) +
        lpad(int(b.requestsPerSec), 10) +
        lpad(pct(b.proxyCores ?? undefined), 11) +
        cpuIds.map((c) => lpad(pct(b.cpu[c]?.busy), 6)).join('') +
        lpad(pct(other), 7) +
        lpad(b.latencyMs.p50.toFixed(2), 9) +
        lpad(b.latencyMs.p99.toFixed(2), 9) +
        lpad(String(b.non2xx + b.socketErrors), 8) +
        `  ${t.placement}`,
    );
  }
  for (const t of [throughput.workers1, throughput.workers2]) {
    if (t.rounds.length > 1)
      out.push(
        `  --workers ${t.workers} rounds: ${t.rounds.map((x) => `${int(x.requestsPerSec)} req/s`).join(' | ')}`,
      );
    if (t.remeasured.length > 0)
      out.push(`  --workers ${t.workers} measured again after disturbed rounds: ${t.remeasured.join('; ')}`);
    if (t.warning) out.push(`  --workers ${t.workers} WARNING: ${t.warning}`);
  }
  out.push(
    '  sluice cpu: its process tree (primary + workers) in cores; other: process time of other work on the machine during the phase, in cores',
  );
  out.push(
    `  2 workers / 1 worker: ${throughput.ratio2to1.toFixed(2)}× raw (${int(throughput.workers2.best.requestsPerSec)} vs ${int(throughput.workers1.best.requestsPerSec)} req/s)`,
  );
  out.push(`  NOTE: ${throughput.note}`);
  out.push('');
  out.push(`reload under load (${info.latencySettings})`);
  out.push(`  reloads     ${info.reloadSettings}`);
  out.push(
    pad('', 22) +
      lpad('p50 ms', 8) +
      lpad('p90 ms', 8) +
      lpad('p99 ms', 8) +
      lpad('p99.9', 8) +
      lpad('max ms', 8) +
      lpad('CO p99', 8) +
      lpad('rate', 7) +
      lpad('sent', 8) +
      lpad('failed', 8) +
      '  reloads (metrics delta)',
  );
  const row = (label: string, p: LatencyPhase): string => {
    const l = p.latency;
    const counted = p.reload
      ? `${p.reload.saves} saved, accepted +${p.reload.counted['accepted'] ?? 0}` +
        Object.entries(p.reload.counted)
          .filter(([k, v]) => k !== 'accepted' && v !== 0)
          .map(([k, v]) => `, ${k} +${v}`)
          .join('')
      : '-';
    return (
      pad(label, 22) +
      lpad(ms(l.serviceUs.p50), 8) +
      lpad(ms(l.serviceUs.p90), 8) +
      lpad(ms(l.serviceUs.p99), 8) +
      lpad(ms(l.serviceUs.p999), 8) +
      lpad(ms(l.serviceUs.max), 8) +
      lpad(ms(l.correctedUs.p99), 8) +
      lpad(int(l.achievedRate), 7) +
      lpad(int(l.sent), 8) +
      lpad(String(p.failed), 8) +
      `  ${counted}`
    );
  };
  out.push(row('without reloads', r.baseline));
  out.push(row(`during ${s.reloads} reloads`, r.reloading));
  const signed = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`;
  out.push(
    `  p99 during reloads / without: ${r.p99Ratio.toFixed(2)}× (${signed(r.p99AddedMs)}); max ${ms(r.reloading.latency.serviceUs.max)} vs ${ms(r.baseline.latency.serviceUs.max)} ms`,
  );
  out.push(
    `  failed requests: ${r.totalFailed} of ${int(r.totalRequests)} sent in all latency rounds${r.totalFailed === 0 ? ' (none failed)' : ' — SOME REQUESTS FAILED'}`,
  );
  const acceptedOk = r.reloadsAccepted === r.reloadsSaved;
  out.push(
    `  reloads: ${r.reloadsAccepted} accepted of ${r.reloadsSaved} saves (sluice_config_reloads_total{result="accepted"} on the metrics port)` +
      (acceptedOk ? '' : ' — NOT every save became its own accepted reload'),
  );
  if (r.reloading.reload)
    out.push(
      `  saves in the reported round: ${r.reloading.reload.firstSaveS.toFixed(1)} s … ${r.reloading.reload.lastSaveS.toFixed(1)} s after the paced client started (recording begins after its ${s.latencyWarmupS} s warm-up plus start-up)`,
    );
  out.push(
    "  CO p99: coordinated-omission corrected (from each request's scheduled send time), so a stall that delays later sends counts too",
  );
  if (r.baselineRounds.length + r.reloadRounds.length > 2) {
    const list = (ps: readonly LatencyPhase[]): string =>
      ps.map((p) => `p99 ${ms(p.latency.serviceUs.p99)} max ${ms(p.latency.serviceUs.max)}`).join(' | ');
    out.push(`  rounds without reloads: ${list(r.baselineRounds)}`);
    out.push(`  rounds with reloads:    ${list(r.reloadRounds)}`);
  }
  if (r.remeasured.length > 0)
    out.push(`  measured again after disturbed rounds: ${r.remeasured.join('; ')}`);
  for (const [label, p] of [
    ['without reloads', r.baseline],
    ['during reloads', r.reloading],
  ] as const)
    if (p.disturbed)
      out.push(`  WARNING (${label}): ${p.disturbed} in the reported round: figures disturbed`);
  return out.join('\n') + '\n';
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:ops: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
  });

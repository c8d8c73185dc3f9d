/**
 * The measuring machinery the end-to-end benchmarks share (bench/e2e.ts, bench/security.ts): legs
 * — the bench upstream reached directly or through one proxy — all started up front, then
 * measured in interleaved rounds (wrk keep-alive throughput, then the paced client's latency),
 * with every core's CPU accounted during each phase; a leg disturbed by other processes is
 * measured again, and each leg keeps its best round. See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { join } from 'node:path';
import type { BenchRequest } from '../configs/generate.ts';
import { readCpuTimes, sharesBetween } from './cpu.ts';
import { runPaced } from './latency.ts';
import { until200 } from './net.ts';
import { BODY_100, findNginx, startNginx, upstreamConf } from './nginx.ts';
import type { PacedResult } from './paced-load.ts';
import {
  reapedChildrenCpuSeconds,
  setChildNiceness,
  spawnPinned,
  stop,
  stopAll,
  treeCpuSeconds,
  treeRss,
  type Proc,
} from './procs.ts';
import {
  backgroundOnLoadCore,
  backgroundOnProxyCore,
  DISTURBED,
  type BaseRunInfo,
  type PhaseCpu,
  type ScenarioResult,
  type Throughput,
} from './report.ts';
import { startSluice, tail, type SluicePorts } from './sluice.ts';
import type { VaryingHeader } from './vary-header.ts';
import { findWrk, runWrk } from './wrk.ts';

// ---------------------------------------------------------------- flags

/** The flags every leg-based benchmark takes (node:util parseArgs options). */
export const RUN_OPTIONS = {
  quick: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  'latency-duration': { type: 'string' },
  rate: { type: 'string', default: '2000' },
  connections: { type: 'string', default: '50' },
  upstream: { type: 'string', default: 'auto' },
  keep: { type: 'boolean', default: false },
  rounds: { type: 'string' },
  retries: { type: 'string' },
  nice: { type: 'string', default: '0' },
  'wait-calm': { type: 'string', default: '0' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Help lines for RUN_OPTIONS (each benchmark adds its own). */
export function runHelp(defaults: { rounds: number; retries: number }): string {
  return `  --quick                 smoke run: 2 s phases (figures indicative only)
  --json                  print the results as JSON on stdout (progress stays on stderr)
  --duration S            wrk throughput phase per leg (default 10, quick 2)
  --warmup S              wrk warm-up before a leg's first round, not recorded (default 3, quick 1)
  --latency-duration S    paced phase per leg (default 10, quick 2)
  --rate N                paced request rate, req/s (default 2000)
  --connections N         wrk connections (default 50; one wrk thread)
  --upstream KIND         auto | nginx | node  (default auto: nginx when installed)
  --rounds N              measure every leg N times, interleaved (default ${defaults.rounds}, quick 1);
                          req/s is the best round, latency the round with the lowest p99
  --retries N             measure a leg again when other processes used more than 10 % of a
                          core meanwhile, at most N times per run, half of them per leg
                          (default ${defaults.retries}, quick 1)
  --nice=N                run the benchmark's processes at niceness N (e.g. -10, needs root) so
                          other work on a shared machine disturbs it less (default 0)
  --wait-calm S           first wait up to S s for a second in which no core is over 10 % busy,
                          then up to min(S, ${CALM_BEFORE_ROUND_S}) s before every round and every re-measure
  --keep                  keep the temp dir (configs, logs) and print its path
  --help
`;
}

export interface RunSettings {
  readonly quick: boolean;
  readonly json: boolean;
  readonly durationS: number;
  readonly warmupS: number;
  readonly latencyS: number;
  readonly latencyWarmupS: number;
  readonly rate: number;
  readonly connections: number;
  readonly pacedConnections: number;
  readonly upstream: 'auto' | 'nginx' | 'node';
  readonly keep: boolean;
  readonly rounds: number;
  readonly retries: number;
  readonly nice: number;
  readonly waitCalmS: number;
}

/** What parseArgs gives for RUN_OPTIONS. */
export interface RunValues {
  readonly quick: boolean;
  readonly json: boolean;
  readonly duration?: string | undefined;
  readonly warmup?: string | undefined;
  readonly 'latency-duration'?: string | undefined;
  readonly rate: string;
  readonly connections: string;
  readonly upstream: string;
  readonly keep: boolean;
  readonly rounds?: string | undefined;
  readonly retries?: string | undefined;
  readonly nice: string;
  readonly 'wait-calm': string;
}

export function runSettings(values: RunValues, defaults: { rounds: number; retries: number }): RunSettings {
  const quick = values.quick;
  const num = (v: string | undefined, full: number, short: number): number => {
    const n = v === undefined ? (quick ? short : full) : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  const upstream = values.upstream;
  if (upstream !== 'auto' && upstream !== 'nginx' && upstream !== 'node')
    throw new Error(`--upstream: auto, nginx or node, got ${upstream}`);
  const nice = Number(values.nice);
  if (!Number.isInteger(nice) || nice < -20 || nice > 19)
    throw new Error(`--nice: -20..19, got ${values.nice}`);
  return {
    quick,
    json: values.json,
    durationS: num(values.duration, 10, 2),
    warmupS: num(values.warmup, 3, 1),
    latencyS: num(values['latency-duration'], 10, 2),
    latencyWarmupS: quick ? 1 : 2,
    rate: num(values.rate, 2000, 2000),
    connections: num(values.connections, 50, 50),
    pacedConnections: 64,
    upstream,
    keep: values.keep,
    rounds: Math.round(num(values.rounds, defaults.rounds, 1)),
    retries: values.retries === '0' ? 0 : Math.round(num(values.retries, defaults.retries, 1)),
    nice,
    waitCalmS: Number(values['wait-calm']),
  };
}

// ---------------------------------------------------------------- the machine

export function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Runs a benchmark's main: an error goes to stderr (exit code 1); every child process is ended. */
export function runBenchmark(main: () => Promise<void>): void {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(async () => {
      await stopAll();
      // with --json, stdout is the report: say on stderr that nothing more comes
      if (process.argv.includes('--json')) progress('done');
    });
}

function cpuModel(): string {
  try {
    return (
      /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU'
    );
  } catch {
    return 'unknown CPU';
  }
}

/** Where the processes run: the proxy under test alone on CPU 0, the load side on CPU 1. */
export interface Placement {
  readonly cores: number;
  readonly proxyCpu: number | null;
  readonly loadCpu: number | null;
}

/** Applies --nice and pins this process (all its threads) to the load core. */
export function placeProcesses(s: RunSettings): Placement {
  const cores = availableParallelism();
  const pinned = cores >= 2;
  if (s.nice !== 0) {
    setChildNiceness(s.nice);
    setPriority(s.nice);
  }
  // This process stays off the proxy's core; its children are pinned themselves.
  if (pinned) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  return { cores, proxyCpu: pinned ? 0 : null, loadCpu: pinned ? 1 : null };
}

function pinningText(p: Placement, nice: number, proxy: string, load: string): string {
  return (
    (p.proxyCpu !== null
      ? `${proxy} alone on CPU 0 (taskset -c 0); ${load} on CPU 1 (taskset -c 1)`
      : `only ${p.cores} core: nothing pinned, proxy, upstream and load share it (figures not comparable with 2-core runs)`) +
    (nice !== 0 ? `; all at niceness ${nice}` : '')
  );
}

export function exitedReason(proc: Proc): () => string | null {
  let reason: string | null = null;
  void proc.exited.then((r) => (reason = r));
  return () => reason;
}

/**
 * Busy share per CPU over one second; with waitS > 0, keeps sampling until no CPU is more than
 * DISTURBED busy or waitS has passed. Returns the last sample. `before` names what waits (for the
 * progress line); a wait that found calm at once says nothing unless it is the run's first.
 */
export async function waitForCalm(waitS: number, before = 'the run'): Promise<Map<number, number>> {
  const start = Date.now();
  const end = start + waitS * 1000;
  for (let sample = 1; ; sample++) {
    const cpu = readCpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = new Map([...sharesBetween(cpu, readCpuTimes())].map(([c, share]) => [c, share.busy]));
    const calm = [...busy.values()].every((f) => f <= DISTURBED);
    if (calm || Date.now() >= end) {
      const waited = Math.round((Date.now() - start) / 1000);
      if (waitS > 0 && (sample > 1 || before === 'the run' || !calm))
        progress(
          calm
            ? `calm after ${waited} s; starting ${before}`
            : `still busy after ${waited} s; starting ${before} anyway`,
        );
      return busy;
    }
  }
}

/** With --wait-calm, the longest wait for a calm second before each measurement. */
const CALM_BEFORE_ROUND_S = 30;

/** The run's description shared by every leg-based benchmark's report. */
export function baseRunInfo(o: {
  s: RunSettings;
  placement: Placement;
  tools: Tools;
  started: Date;
  idleBusy: ReadonlyMap<number, number>;
  tempDir: string;
  /** What runs on the proxy core, and on the load core. */
  pinned: readonly [proxy: string, load: string];
  request: BenchRequest;
  /** Said after the request's headers, e.g. headers added to it, or that every leg sends it. */
  requestNote: string;
}): BaseRunInfo {
  const { s, tools } = o;
  return {
    startedAt: o.started.toISOString(),
    elapsedS: (Date.now() - o.started.getTime()) / 1000,
    node: process.version,
    cores: o.placement.cores,
    cpuModel: cpuModel(),
    pinning: pinningText(o.placement, s.nice, o.pinned[0], o.pinned[1]),
    ...upstreamText(tools),
    wrk: tools.wrk.version,
    throughputSettings: `wrk ${tools.wrk.version} -t1 -c${s.connections} -d${s.durationS}s --latency, keep-alive, after a ${s.warmupS} s wrk warm-up; best of ${s.rounds} interleaved round(s)`,
    latencySettings: `bench/lib/paced-load.ts (undici Pool, ${s.pacedConnections} connections, open loop) at ${s.rate} req/s for ${s.latencyS} s after ${s.latencyWarmupS} s at the same rate`,
    request: `GET ${o.request.path}  host: ${o.request.host}  ${Object.entries(o.request.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  ')}  ${o.requestNote}`,
    quick: s.quick,
    rounds: s.rounds,
    idleCpuBusy: Object.fromEntries([...o.idleBusy].map(([cpu, f]) => [String(cpu), f])),
    tempDir: o.tempDir,
  };
}

// ---------------------------------------------------------------- tools and the upstream

export interface Tools {
  readonly wrk: { path: string; version: string };
  readonly nginx: { path: string; version: string } | null;
  readonly upstreamKind: 'nginx' | 'node';
}

export function findTools(s: RunSettings): Tools {
  const wrk = findWrk();
  if (!wrk) throw new Error('wrk is not installed: apt-get install -y wrk (the throughput figures need it)');
  const nginx = findNginx();
  const upstreamKind = s.upstream === 'auto' ? (nginx ? 'nginx' : 'node') : s.upstream;
  if (upstreamKind === 'nginx' && !nginx)
    throw new Error('--upstream nginx: nginx is not installed (apt-get install -y nginx-light)');
  return { wrk, nginx, upstreamKind };
}

/** Starts the upstream (nginx `return 200`, or node:http) on the load core; resolves once it answers. */
export async function startUpstream(
  tools: Tools,
  tmp: string,
  port: number,
  loadCpu: number | null,
  probe: { path: string; headers: Readonly<Record<string, string>> },
): Promise<Proc> {
  const upstream =
    tools.upstreamKind === 'nginx' && tools.nginx
      ? startNginx({
          nginx: tools.nginx.path,
          name: 'upstream',
          dir: join(tmp, 'nginx-upstream'),
          conf: upstreamConf(join(tmp, 'nginx-upstream'), port),
          cpu: loadCpu,
        })
      : spawnPinned({
          name: 'upstream',
          cpu: loadCpu,
          command: process.execPath,
          args: [new URL('./upstream-node.ts', import.meta.url).pathname, String(port)],
          logFile: join(tmp, 'upstream-node.log'),
        });
  await until200(`http://127.0.0.1:${port}${probe.path}`, probe.headers, {
    deadlineMs: 10_000,
    bodyBytes: BODY_100.length,
    alive: exitedReason(upstream),
  });
  return upstream;
}

function upstreamText(tools: Tools): { upstream: string; upstreamWhy: string } {
  return tools.upstreamKind === 'nginx'
    ? {
        upstream: `${tools.nginx?.version ?? 'nginx'} answering a fixed 100-byte body from memory (return 200), keep-alive, 1 worker, on the load core`,
        upstreamWhy:
          'it shares the load core with the load generator, so it must cost as little CPU per request as possible; nginx serves ~1.4× what node:http does there (84k vs 59k req/s direct in one measurement), leaving more of that core to wrk',
      }
    : {
        upstream:
          'node:http server (bench/lib/upstream-node.ts) answering a fixed 100-byte body, keep-alive, on the load core',
        upstreamWhy:
          'nginx is not installed (or --upstream node); a node:http upstream on the load core may limit the fastest leg',
      };
}

// ---------------------------------------------------------------- legs

export interface Leg {
  readonly id: string;
  readonly label: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** A header whose value changes on every request (both load generators). */
  readonly vary?: VaryingHeader;
  /** The proxy process whose CPU and RSS are measured; null for direct. */
  readonly proxy: Proc | null;
  readonly startupMs?: number;
  readonly rssAtStart?: number;
  /** What was checked before measuring (the request took the intended path). */
  readonly checks: string[];
  readonly rounds: Round[];
  /** Rounds measured again because other processes used our cores. */
  readonly disturbed: string[];
}

export interface Round {
  readonly throughput: Throughput;
  readonly latency: PacedResult;
  readonly latencyCpu: PhaseCpu;
}

export function directLeg(url: string, headers: Readonly<Record<string, string>>): Leg {
  return { id: 'direct', label: 'direct', url, headers, proxy: null, checks: [], rounds: [], disturbed: [] };
}

/**
 * Starts `sluice serve --workers 1` for one leg on the proxy core and waits for the benchmark
 * request to answer 200; `check` then runs once (its lines go to the report). A sluice that does
 * not come up is a failed scenario, not an error of the run.
 */
export async function startSluiceLeg(opts: {
  id: string;
  label: string;
  configDir: string;
  ports: SluicePorts;
  gatewayPort: number;
  path: string;
  headers: Readonly<Record<string, string>>;
  cpu: number | null;
  logDir: string;
  /** Another checkout of sluice (its src/main.ts); default this one. */
  root?: string;
  vary?: VaryingHeader;
  check?: (url: string) => Promise<readonly string[]>;
}): Promise<Leg | ScenarioResult> {
  const logFile = join(opts.logDir, `${opts.id}.log`);
  const url = `http://127.0.0.1:${opts.gatewayPort}${opts.path}`;
  progress(`${opts.label}: starting sluice on 127.0.0.1:${opts.gatewayPort} (config ${opts.configDir})`);
  const t0 = performance.now();
  const proc = startSluice({
    name: opts.id,
    configDir: opts.configDir,
    ports: opts.ports,
    cpu: opts.cpu,
    logFile,
    ...(opts.root !== undefined ? { root: opts.root } : {}),
  });
  try {
    await until200(url, opts.headers, {
      deadlineMs: 30_000,
      bodyBytes: BODY_100.length,
      alive: exitedReason(proc),
    });
    const startupMs = performance.now() - t0;
    const rssAtStart = treeRss(proc.pid).totalBytes;
    const checks = opts.check ? [...(await opts.check(url))] : [];
    return {
      id: opts.id,
      label: opts.label,
      url,
      headers: opts.headers,
      ...(opts.vary ? { vary: opts.vary } : {}),
      proxy: proc,
      startupMs,
      rssAtStart,
      checks,
      rounds: [],
      disturbed: [],
    };
  } catch (err) {
    const reason = `${err instanceof Error ? err.message : String(err)}\n    log ${logFile}:\n${tail(logFile).replace(/^/gm, '      ')}`;
    progress(`${opts.label}: failed: ${reason}`);
    await stop(proc);
    return { id: opts.id, label: opts.label, status: 'failed', reason };
  }
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Runs one phase and says where the CPU went meanwhile: per-CPU busy share, the proxy's process
 * tree, and the benchmark's own load side (the upstream and any helper servers, children reaped
 * during the phase — wrk or the paced client — and this process).
 */
async function withCpu<T>(
  proxy: Proc | null,
  loadPids: readonly number[],
  phase: () => Promise<T>,
): Promise<[T, PhaseCpu]> {
  const loadCpuSeconds = (): number =>
    reapedChildrenCpuSeconds() + loadPids.reduce((a, pid) => a + treeCpuSeconds(pid), 0) + ownCpuSeconds();
  const cpuBefore = readCpuTimes();
  const procBefore = proxy ? treeCpuSeconds(proxy.pid) : 0;
  const loadBefore = loadCpuSeconds();
  const t0 = performance.now();
  const value = await phase();
  const wallS = (performance.now() - t0) / 1000;
  const procAfter = proxy ? treeCpuSeconds(proxy.pid) : 0;
  const loadAfter = loadCpuSeconds();
  const shares = sharesBetween(cpuBefore, readCpuTimes());
  return [
    value,
    {
      cpu: Object.fromEntries([...shares].map(([cpu, share]) => [String(cpu), share])),
      proxyCores: proxy ? (procAfter - procBefore) / wallS : null,
      benchLoadCores: (loadAfter - loadBefore) / wallS,
    },
  ];
}

async function measureRound(
  s: RunSettings,
  loadCpu: number | null,
  loadPids: readonly number[],
  leg: Leg,
  tag: string,
  warmUp: boolean,
  logDir: string,
): Promise<Round> {
  const logFile = join(logDir, `load-${leg.id}.log`);
  const wrkOpts = {
    cpu: loadCpu,
    url: leg.url,
    threads: 1,
    connections: s.connections,
    headers: leg.headers,
    logFile,
    ...(leg.vary ? { script: leg.vary.wrkScript } : {}),
  };
  if (warmUp) {
    progress(`${tag}: wrk warm-up ${s.warmupS} s`);
    await runWrk({ ...wrkOpts, durationS: s.warmupS });
  }
  progress(`${tag}: throughput ${s.durationS} s`);
  const [wrk, wrkCpu] = await withCpu(leg.proxy, loadPids, () =>
    runWrk({ ...wrkOpts, durationS: s.durationS }),
  );
  progress(`${tag}: ${Math.round(wrk.requestsPerSec)} req/s; paced ${s.rate} req/s for ${s.latencyS} s`);
  const [latency, latencyCpu] = await withCpu(leg.proxy, loadPids, () =>
    runPaced({
      cpu: loadCpu,
      url: leg.url,
      rate: s.rate,
      durationS: s.latencyS,
      warmupS: s.latencyWarmupS,
      connections: s.pacedConnections,
      headers: leg.headers,
      logFile,
      ...(leg.vary ? { vary: leg.vary } : {}),
    }),
  );
  return { throughput: { ...wrk, ...wrkCpu }, latency, latencyCpu };
}

/** Why a round's figures cannot be trusted (other processes on our cores), or null. */
function disturbance(leg: Leg, r: Round): string | null {
  const reasons: string[] = [];
  const check = (phase: string, cpu: PhaseCpu): void => {
    const other0 = leg.proxy ? backgroundOnProxyCore(cpu) : undefined;
    const other1 = backgroundOnLoadCore(cpu);
    if (other0 !== undefined && other0 > DISTURBED)
      reasons.push(`${phase}: other processes ${(other0 * 100).toFixed(0)}% of CPU 0`);
    if (other1 !== undefined && other1 > DISTURBED)
      reasons.push(`${phase}: other processes ${(other1 * 100).toFixed(0)}% of CPU 1`);
  };
  check('throughput', r.throughput);
  check('latency', r.latencyCpu);
  return reasons.length > 0 ? reasons.join(', ') : null;
}

/**
 * Measures the legs `s.rounds` times, interleaved: each round goes through `schedule` in order (a
 * leg may stand in it twice, e.g. A B … B A, to be measured twice per round), and a disturbed
 * measurement is taken again at once while retries last. A leg warms up before its first
 * measurement. Returns the legs that failed. `loadPids`: the load side's long-running processes
 * (upstream, helper servers) whose CPU is the benchmark's own on the load core.
 */
export async function measureLegs(
  s: RunSettings,
  schedule: readonly Leg[],
  loadCpu: number | null,
  loadPids: readonly number[],
  logDir: string,
): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  let retriesLeft = s.retries;
  const retriesPerLeg = Math.max(1, Math.ceil(s.retries / 2));
  for (let round = 0; round < s.rounds; round++) {
    for (const leg of schedule) {
      if (failed.has(leg.id)) continue;
      try {
        let tag = `${leg.label} [round ${round + 1}/${s.rounds}]`;
        if (s.waitCalmS > 0) await waitForCalm(Math.min(s.waitCalmS, CALM_BEFORE_ROUND_S), tag);
        let r = await measureRound(s, loadCpu, loadPids, leg, tag, leg.rounds.length === 0, logDir);
        leg.rounds.push(r);
        // one leg may not use up every retry: the others may need one later
        let legRetries = retriesPerLeg;
        for (
          let why = disturbance(leg, r);
          why !== null && retriesLeft > 0 && legRetries > 0;
          why = disturbance(leg, r)
        ) {
          retriesLeft--;
          legRetries--;
          leg.disturbed.push(why);
          tag = `${leg.label} [round ${round + 1}/${s.rounds}, again]`;
          progress(`${leg.label}: disturbed (${why}); measuring again (${retriesLeft} retries left)`);
          if (s.waitCalmS > 0) await waitForCalm(Math.min(s.waitCalmS, CALM_BEFORE_ROUND_S), tag);
          r = await measureRound(s, loadCpu, loadPids, leg, tag, false, logDir);
          leg.rounds.push(r);
        }
      } catch (err) {
        const logNote = leg.proxy
          ? `\n    log ${leg.proxy.logFile}:\n${tail(leg.proxy.logFile).replace(/^/gm, '      ')}`
          : '';
        failed.set(leg.id, `${err instanceof Error ? err.message : String(err)}${logNote}`);
      }
    }
  }
  return failed;
}

/** Throughput: the best round (interference only ever lowers it); latency: the round with the lowest p99. */
function bestOf(rounds: readonly Round[]): Round {
  const best = rounds.reduce((a, b) => (b.throughput.requestsPerSec > a.throughput.requestsPerSec ? b : a));
  const calm = rounds.reduce((a, b) => (b.latency.serviceUs.p99 < a.latency.serviceUs.p99 ? b : a));
  return { throughput: best.throughput, latency: calm.latency, latencyCpu: calm.latencyCpu };
}

/** One leg's figures for the report (its process still running, for the RSS after the run). */
export function scenarioOf(leg: Leg, failure: string | undefined): ScenarioResult {
  if (failure || leg.rounds.length === 0)
    return { id: leg.id, label: leg.label, status: 'failed', reason: failure ?? 'no rounds completed' };
  const best = bestOf(leg.rounds);
  return {
    id: leg.id,
    label: leg.label,
    status: 'ok',
    url: leg.url,
    ...(leg.startupMs !== undefined ? { startupMs: leg.startupMs } : {}),
    ...(leg.checks.length > 0 ? { checks: leg.checks } : {}),
    throughput: best.throughput,
    latency: best.latency,
    latencyCpu: best.latencyCpu,
    ...(leg.disturbed.length > 0 ? { remeasured: leg.disturbed } : {}),
    ...(leg.proxy
      ? {
          rss: {
            ...treeRss(leg.proxy.pid),
            ...(leg.rssAtStart !== undefined ? { atStartBytes: leg.rssAtStart } : {}),
          },
        }
      : {}),
    rounds: leg.rounds.map((r) => ({
      requestsPerSec: r.throughput.requestsPerSec,
      p50Us: r.latency.serviceUs.p50,
      p99Us: r.latency.serviceUs.p99,
    })),
  };
}

/** Every scenario in `order`: measured legs, and those that did not start. */
export function scenariosInOrder(
  order: readonly string[],
  legs: readonly Leg[],
  notRun: readonly ScenarioResult[],
  failed: ReadonlyMap<string, string>,
): ScenarioResult[] {
  const out: ScenarioResult[] = [];
  for (const id of order) {
    const leg = legs.find((l) => l.id === id);
    if (leg) out.push(scenarioOf(leg, failed.get(id)));
    else {
      const skipped = notRun.find((n) => n.id === id);
      if (skipped) out.push(skipped);
    }
  }
  return out;
}

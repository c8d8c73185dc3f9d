/**
 * End-to-end benchmark (not a test): the same upstream reached directly, through sluice (one
 * worker, a 1-rule and a 100-rule config) and through nginx as a reverse proxy, all in one run,
 * with keep-alive throughput (wrk), latency at a paced load (bench/lib/paced-load.ts), ratios,
 * sluice's RSS and the targets from the issue. The proxy runs alone on CPU 0; the upstream and
 * the load generators share CPU 1. Only 127.0.0.1 is used. See bench/README.md.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --help]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  generateConfig,
  writeConfig,
  type GeneratedConfig,
  type GenerateOptions,
} from './configs/generate.ts';
import { readCpuTimes, sharesBetween } from './lib/cpu.ts';
import { runPaced } from './lib/latency.ts';
import { freePorts, probe, until200 } from './lib/net.ts';
import { BODY_100, findNginx, proxyConf, startNginx, upstreamConf } from './lib/nginx.ts';
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
import {
  backgroundOnLoadCore,
  backgroundOnProxyCore,
  buildReport,
  DISTURBED,
  formatText,
  type PhaseCpu,
  type ScenarioId,
  type ScenarioResult,
  type Throughput,
} from './lib/report.ts';
import { sluiceAvailable, startSluice, tail } from './lib/sluice.ts';
import { findWrk, runWrk } from './lib/wrk.ts';

const HELP = `npm run bench -- [flags]     (node bench/e2e.ts [flags])

  --quick                 smoke run: 2 s phases (figures indicative only)
  --json                  print the results as JSON on stdout (progress stays on stderr)
  --duration S            wrk throughput phase per scenario (default 10, quick 2)
  --warmup S              wrk warm-up before it, not recorded (default 3, quick 1)
  --latency-duration S    paced phase per scenario (default 10, quick 2)
  --rate N                paced request rate, req/s (default 2000)
  --connections N         wrk connections (default 50; one wrk thread)
  --upstream KIND         auto | nginx | node  (default auto: nginx when installed)
  --only LIST             scenarios to run: direct,sluice-1,sluice-100,nginx (default all)
  --rounds N              measure every scenario N times, interleaved (default 2, quick 1);
                          req/s is the best round, latency the round with the lowest p99
  --retries N             measure a leg again when other processes used more than 10 % of a
                          core meanwhile, at most N times per run, half of them per leg
                          (default 4, quick 1)
  --nice=N                run the benchmark's processes at niceness N (e.g. -10, needs root) so
                          other work on a shared machine disturbs it less (default 0)
  --wait-calm S           first wait up to S s for a second in which no core is over 10 % busy
  --keep                  keep the temp dir (configs, logs) and print its path
  --help
`;

interface Settings {
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
  readonly only: ReadonlySet<ScenarioId>;
  readonly keep: boolean;
  readonly rounds: number;
  readonly retries: number;
  readonly nice: number;
  readonly waitCalmS: number;
}

const ALL: readonly ScenarioId[] = ['direct', 'sluice-1', 'sluice-100', 'nginx'];

function readSettings(): Settings | null {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'latency-duration': { type: 'string' },
      rate: { type: 'string', default: '2000' },
      connections: { type: 'string', default: '50' },
      upstream: { type: 'string', default: 'auto' },
      only: { type: 'string' },
      keep: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      retries: { type: 'string' },
      nice: { type: 'string', default: '0' },
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
  const only = new Set<ScenarioId>();
  for (const id of (values.only ?? ALL.join(',')).split(',').map((s) => s.trim())) {
    if (!ALL.includes(id as ScenarioId))
      throw new Error(`--only: unknown scenario ${id} (${ALL.join(', ')})`);
    only.add(id as ScenarioId);
  }
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
    only,
    keep: values.keep,
    rounds: Math.round(num(values.rounds, 2, 1)),
    retries: values.retries === '0' ? 0 : Math.round(num(values.retries, 4, 1)),
    nice: Number(values.nice),
    waitCalmS: Number(values['wait-calm']),
  };
}

let jsonMode = false;
function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
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

function exitedReason(proc: Proc): () => string | null {
  let reason: string | null = null;
  void proc.exited.then((r) => (reason = r));
  return () => reason;
}

interface Leg {
  readonly id: ScenarioId;
  readonly label: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The proxy process whose CPU and RSS are measured; null for direct. */
  readonly proxy: Proc | null;
  readonly startupMs?: number;
  readonly rssAtStart?: number;
  readonly routingCheck?: string;
  readonly rounds: Round[];
  /** Rounds measured again because other processes used our cores. */
  readonly disturbed: string[];
}

interface Round {
  readonly throughput: Throughput;
  readonly latency: PacedResult;
  readonly latencyCpu: PhaseCpu;
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Runs one phase and says where the CPU went meanwhile: per-CPU busy share, the proxy's process
 * tree, and the benchmark's own load side (upstream tree, children reaped during the phase — wrk
 * or the paced client — and this process).
 */
async function withCpu<T>(
  proxy: Proc | null,
  upstreamPid: number,
  phase: () => Promise<T>,
): Promise<[T, PhaseCpu]> {
  const loadCpuSeconds = (): number =>
    reapedChildrenCpuSeconds() + treeCpuSeconds(upstreamPid) + ownCpuSeconds();
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
  s: Settings,
  loadCpu: number | null,
  upstreamPid: number,
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
  };
  if (warmUp) {
    progress(`${tag}: wrk warm-up ${s.warmupS} s`);
    await runWrk({ ...wrkOpts, durationS: s.warmupS });
  }
  progress(`${tag}: throughput ${s.durationS} s`);
  const [wrk, wrkCpu] = await withCpu(leg.proxy, upstreamPid, () =>
    runWrk({ ...wrkOpts, durationS: s.durationS }),
  );
  progress(`${tag}: ${Math.round(wrk.requestsPerSec)} req/s; paced ${s.rate} req/s for ${s.latencyS} s`);
  const [latency, latencyCpu] = await withCpu(leg.proxy, upstreamPid, () =>
    runPaced({
      cpu: loadCpu,
      url: leg.url,
      rate: s.rate,
      durationS: s.latencyS,
      warmupS: s.latencyWarmupS,
      connections: s.pacedConnections,
      headers: leg.headers,
      logFile,
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
 * Busy share per CPU over one second; with waitS > 0, keeps sampling until no CPU is more than
 * DISTURBED busy or waitS has passed. Returns the last sample.
 */
async function waitForCalm(waitS: number): Promise<Map<number, number>> {
  const end = Date.now() + waitS * 1000;
  for (;;) {
    const before = readCpuTimes();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = new Map([...sharesBetween(before, readCpuTimes())].map(([cpu, share]) => [cpu, share.busy]));
    const calm = [...busy.values()].every((f) => f <= DISTURBED);
    if (calm || Date.now() >= end) {
      if (waitS > 0) progress(calm ? 'machine is calm' : `still busy after ${waitS} s; starting anyway`);
      return busy;
    }
  }
}

/** Throughput: the best round (interference only ever lowers it); latency: the round with the lowest p99. */
function bestOf(rounds: readonly Round[]): Round {
  const best = rounds.reduce((a, b) => (b.throughput.requestsPerSec > a.throughput.requestsPerSec ? b : a));
  const calm = rounds.reduce((a, b) => (b.latency.serviceUs.p99 < a.latency.serviceUs.p99 ? b : a));
  return { throughput: best.throughput, latency: calm.latency, latencyCpu: calm.latencyCpu };
}

async function main(): Promise<void> {
  const s = readSettings();
  if (!s) return;
  jsonMode = s.json;
  const started = new Date();
  const cores = availableParallelism();
  const pinned = cores >= 2;
  const proxyCpu = pinned ? 0 : null;
  const loadCpu = pinned ? 1 : null;
  if (s.nice !== 0) {
    if (!Number.isInteger(s.nice) || s.nice < -20 || s.nice > 19)
      throw new Error(`--nice: -20..19, got ${s.nice}`);
    setChildNiceness(s.nice);
    setPriority(s.nice);
  }
  // This process too stays off the proxy's core (all its threads; children are pinned themselves).
  if (pinned)
    spawnSync('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)], { stdio: 'ignore' });

  const wrk = findWrk();
  if (!wrk) throw new Error('wrk is not installed: apt-get install -y wrk (the throughput figures need it)');
  const nginx = findNginx();
  const upstreamKind = s.upstream === 'auto' ? (nginx ? 'nginx' : 'node') : s.upstream;
  if (upstreamKind === 'nginx' && !nginx)
    throw new Error('--upstream nginx: nginx is not installed (apt-get install -y nginx-light)');

  const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  if (!s.keep) atExit(() => rmSync(tmp, { recursive: true, force: true }));
  const [upstreamPort, nginxPort, gw1, gw100, decoyPort, st1, me1, ad1, st100, me100, ad100] =
    (await freePorts(11)) as number[];
  const genOpts = (gatewayPort: number): GenerateOptions => ({ gatewayPort, upstreamPort, decoyPort });
  const configs: Record<'sluice-1' | 'sluice-100', GeneratedConfig> = {
    'sluice-1': generateConfig('one-rule', genOpts(gw1)),
    'sluice-100': generateConfig('many-rules', genOpts(gw100)),
  };
  const request = configs['sluice-1'].request;
  const headers = { host: request.host, ...request.headers };

  const idleBusy = await waitForCalm(s.waitCalmS);

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
  const directUrl = `http://127.0.0.1:${upstreamPort}${request.path}`;
  await until200(directUrl, headers, {
    deadlineMs: 10_000,
    bodyBytes: BODY_100.length,
    alive: exitedReason(upstream),
  });

  // Start every proxy first (each idle until its turn), so rounds can interleave the legs.
  const legs: Leg[] = [];
  const notRun: ScenarioResult[] = [];
  if (s.only.has('direct'))
    legs.push({
      id: 'direct',
      label: 'direct',
      url: directUrl,
      headers,
      proxy: null,
      rounds: [],
      disturbed: [],
    });

  for (const id of ['sluice-1', 'sluice-100'] as const) {
    if (!s.only.has(id)) continue;
    const config = configs[id];
    const label = id === 'sluice-1' ? 'sluice (1 rule)' : 'sluice (100 rules)';
    const missing = sluiceAvailable();
    if (missing) {
      notRun.push({ id, label, status: 'skipped', reason: missing });
      continue;
    }
    const configDir = writeConfig(join(tmp, 'configs'), config);
    const ports =
      id === 'sluice-1'
        ? { status: st1, metrics: me1, admin: ad1 }
        : { status: st100, metrics: me100, admin: ad100 };
    const gatewayPort = id === 'sluice-1' ? gw1 : gw100;
    const logFile = join(tmp, `${id}.log`);
    const url = `http://127.0.0.1:${gatewayPort}${request.path}`;
    progress(`${label}: starting sluice on 127.0.0.1:${gatewayPort} (config ${configDir})`);
    const t0 = performance.now();
    const proc = startSluice({ name: id, configDir, ports, cpu: proxyCpu, logFile });
    try {
      await until200(url, headers, {
        deadlineMs: 30_000,
        bodyBytes: BODY_100.length,
        alive: exitedReason(proc),
      });
      const startupMs = performance.now() - t0;
      const rssAtStart = treeRss(proc.pid).totalBytes;
      let routingCheck: string | undefined;
      if (id === 'sluice-100') {
        // A request for an earlier rule must reach that rule (its decoy port: nothing listens).
        const p = await probe(url, { ...headers, 'x-tenant': 'tenant-0' });
        routingCheck = `routing check: x-tenant: tenant-0 → ${p.status} (${p.status >= 500 ? 'the earlier decoy rule matched, as expected' : 'UNEXPECTED: expected the decoy rule and a 5xx'})`;
      }
      legs.push({
        id,
        label,
        url,
        headers,
        proxy: proc,
        startupMs,
        rssAtStart,
        ...(routingCheck ? { routingCheck } : {}),
        rounds: [],
        disturbed: [],
      });
    } catch (err) {
      const reason = `${err instanceof Error ? err.message : String(err)}\n    log ${logFile}:\n${tail(logFile).replace(/^/gm, '      ')}`;
      progress(`${label}: failed: ${reason}`);
      notRun.push({ id, label, status: 'failed', reason });
      await stop(proc);
    }
  }

  if (s.only.has('nginx')) {
    if (!nginx) {
      notRun.push({ id: 'nginx', label: 'nginx proxy', status: 'skipped', reason: 'nginx not installed' });
    } else {
      const dir = join(tmp, 'nginx-proxy');
      progress(`nginx proxy: starting on 127.0.0.1:${nginxPort}`);
      const proc = startNginx({
        nginx: nginx.path,
        name: 'nginx-proxy',
        dir,
        conf: proxyConf(dir, nginxPort, upstreamPort),
        cpu: proxyCpu,
      });
      const url = `http://127.0.0.1:${nginxPort}${request.path}`;
      try {
        await until200(url, headers, {
          deadlineMs: 10_000,
          bodyBytes: BODY_100.length,
          alive: exitedReason(proc),
        });
        legs.push({
          id: 'nginx',
          label: 'nginx proxy',
          url,
          headers,
          proxy: proc,
          rounds: [],
          disturbed: [],
        });
      } catch (err) {
        notRun.push({
          id: 'nginx',
          label: 'nginx proxy',
          status: 'failed',
          reason: `${err instanceof Error ? err.message : String(err)} (${join(dir, 'error.log')})`,
        });
        await stop(proc);
      }
    }
  }

  const failedMidRun = new Map<ScenarioId, string>();
  let retriesLeft = s.retries;
  const retriesPerLeg = Math.max(1, Math.ceil(s.retries / 2));
  for (let round = 0; round < s.rounds; round++) {
    for (const leg of legs) {
      if (failedMidRun.has(leg.id)) continue;
      try {
        let tag = `${leg.label} [round ${round + 1}/${s.rounds}]`;
        let r = await measureRound(s, loadCpu, upstream.pid, leg, tag, round === 0, tmp);
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
          r = await measureRound(s, loadCpu, upstream.pid, leg, tag, false, tmp);
          leg.rounds.push(r);
        }
      } catch (err) {
        const logNote = leg.proxy
          ? `\n    log ${leg.proxy.logFile}:\n${tail(leg.proxy.logFile).replace(/^/gm, '      ')}`
          : '';
        failedMidRun.set(leg.id, `${err instanceof Error ? err.message : String(err)}${logNote}`);
      }
    }
  }

  const scenarios: ScenarioResult[] = [];
  for (const id of ALL) {
    const leg = legs.find((l) => l.id === id);
    if (!leg) {
      const skipped = notRun.find((n) => n.id === id);
      if (skipped) scenarios.push(skipped);
      continue;
    }
    const failure = failedMidRun.get(id);
    if (failure || leg.rounds.length === 0) {
      scenarios.push({ id, label: leg.label, status: 'failed', reason: failure ?? 'no rounds completed' });
      continue;
    }
    const best = bestOf(leg.rounds);
    scenarios.push({
      id,
      label: leg.label,
      status: 'ok',
      url: leg.url,
      ...(leg.startupMs !== undefined ? { startupMs: leg.startupMs } : {}),
      ...(leg.routingCheck ? { routingCheck: leg.routingCheck } : {}),
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
    });
  }
  await Promise.all(legs.map((l) => (l.proxy ? stop(l.proxy) : Promise.resolve())));
  await stop(upstream);

  const report = buildReport(
    {
      startedAt: started.toISOString(),
      elapsedS: (Date.now() - started.getTime()) / 1000,
      node: process.version,
      cores,
      cpuModel: cpuModel(),
      pinning:
        (pinned
          ? 'proxy under test (sluice / nginx) alone on CPU 0 (taskset -c 0); upstream, wrk and the paced client on CPU 1 (taskset -c 1)'
          : `only ${cores} core: nothing pinned, proxy, upstream and load share it (figures not comparable with 2-core runs)`) +
        (s.nice !== 0 ? `; all at niceness ${s.nice}` : ''),
      upstream:
        upstreamKind === 'nginx'
          ? `${nginx?.version ?? 'nginx'} answering a fixed 100-byte body from memory (return 200), keep-alive, 1 worker, on the load core`
          : 'node:http server (bench/lib/upstream-node.ts) answering a fixed 100-byte body, keep-alive, on the load core',
      upstreamWhy:
        upstreamKind === 'nginx'
          ? 'it shares the load core with the load generator, so it must cost as little CPU per request as possible; nginx serves ~1.4× what node:http does there (84k vs 59k req/s direct in one measurement), leaving more of that core to wrk'
          : 'nginx is not installed (or --upstream node); a node:http upstream on the load core may limit the fastest leg',
      wrk: wrk.version,
      nginx: nginx
        ? `${nginx.version} as a reverse proxy: worker_processes 1 (master + 1 worker on CPU 0), upstream keepalive 128, proxy_http_version 1.1, access_log off`
        : null,
      throughputSettings: `wrk ${wrk.version} -t1 -c${s.connections} -d${s.durationS}s --latency, keep-alive, after a ${s.warmupS} s wrk warm-up; best of ${s.rounds} interleaved round(s)`,
      latencySettings: `bench/lib/paced-load.ts (undici Pool, ${s.pacedConnections} connections, open loop) at ${s.rate} req/s for ${s.latencyS} s after ${s.latencyWarmupS} s at the same rate`,
      request: `GET ${request.path}  host: ${request.host}  ${Object.entries(request.headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join('  ')}  (same for every scenario)`,
      configs: { '1 rule': configs['sluice-1'].size, '100 rules': configs['sluice-100'].size },
      quick: s.quick,
      rounds: s.rounds,
      idleCpuBusy: Object.fromEntries([...idleBusy].map(([cpu, f]) => [String(cpu), f])),
      tempDir: tmp,
    },
    scenarios,
  );
  if (s.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatText(report));
  if (s.keep) progress(`kept ${tmp}`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    if (jsonMode) progress('done');
  });

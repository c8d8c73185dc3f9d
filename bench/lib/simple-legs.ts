/**
 * Legs of a side-by-side benchmark: one `sluice serve --workers 1` per configuration, pinned to
 * the proxy core, each measured by rounds of wrk (closed loop, keep-alive) and a paced load
 * (service-time percentiles), with the share of the proxy core other processes took, so a
 * disturbed round can be measured again. Used by bench/mirror.ts and bench/ratelimit.ts (bench/lib/legs.ts is the fuller e2e/security
 * machinery, with re-measuring budgets and a baseline checkout).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runPaced } from './latency.ts';
import { freePorts, until200 } from './net.ts';
import { BODY_100 } from './nginx.ts';
import type { PacedResult } from './paced-load.ts';
import type { Proc } from './procs.ts';
import { startSluice, tail } from './sluice.ts';
import { runWrk, type WrkResult } from './wrk.ts';
import { watched } from './watched.ts';

export const PROXY_CPU = cpus().length > 1 ? 0 : null;
export const LOAD_CPU = cpus().length > 1 ? 1 : null;
/** Other processes' share of the proxy core above which a phase is measured again. */
export const DISTURBED = 0.1;

export interface Round {
  readonly wrk: WrkResult;
  readonly cpuPerRequestUs: number;
  readonly paced: PacedResult;
  /** Share of the proxy core other processes used during the wrk and the paced phase. */
  readonly other: { readonly wrk: number; readonly paced: number };
  /** What `LegLoad.count` counted per request during the wrk and the paced phase. */
  readonly counted: { readonly wrk: number; readonly paced: number } | null;
}

export interface Leg {
  readonly name: string;
  readonly proc: Proc;
  readonly port: number;
  readonly metricsPort: number;
  readonly rounds: Round[];
}

export interface LegLoad {
  readonly quick: boolean;
  readonly durationS: number;
  readonly rate: number;
  readonly connections: number;
  readonly headers: Record<string, string>;
  readonly path: string;
  /** A running total the leg's sluice reports (e.g. from its metrics port), read around each phase. */
  readonly count?: (leg: Leg) => Promise<number>;
  /** wrk seconds before each round's measured run (default 3; 1 with `quick`). */
  readonly warmupS?: number;
}

/**
 * A sluice on the proxy core serving `config(port)`, answering 200 on the Host of `load`; with
 * `cpuProfDir`, under `node --cpu-prof` (a profile per thread, written when it stops).
 */
export async function startLeg(
  dir: string,
  name: string,
  config: (port: number) => string,
  headers: Record<string, string>,
  cpuProfDir: string | null = null,
): Promise<Leg> {
  const [port, status, metrics, admin] = await freePorts(4);
  const cdir = join(dir, name, 'config');
  mkdirSync(cdir, { recursive: true });
  writeFileSync(join(cdir, 'bench.yaml'), config(port!));
  const logFile = join(dir, name, 'sluice.log');
  const proc = startSluice({
    name,
    configDir: cdir,
    ports: { status: status!, metrics: metrics!, admin: admin! },
    cpu: PROXY_CPU,
    logFile,
    ...(cpuProfDir === null ? {} : { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', join(cpuProfDir, name)] }),
  });
  await until200(`http://127.0.0.1:${port}/warm`, headers, {
    deadlineMs: 20_000,
    bodyBytes: BODY_100.length,
  }).catch((err: unknown) => {
    throw new Error(`${name} did not start: ${String(err)}\n${tail(logFile)}`);
  });
  return { name, proc, port: port!, metricsPort: metrics!, rounds: [] };
}

export async function measureRound(leg: Leg, dir: string, round: number, load: LegLoad): Promise<Round> {
  const url = `http://127.0.0.1:${leg.port}${load.path}`;
  const log = (what: string): string => join(dir, leg.name, `${what}-${round}.log`);
  const wrk = (durationS: number, what: string): Promise<WrkResult> =>
    runWrk({
      cpu: LOAD_CPU,
      url,
      threads: 1,
      connections: load.connections,
      durationS,
      headers: load.headers,
      logFile: log(what),
    });
  await wrk(load.quick ? 1 : (load.warmupS ?? 3), 'warmup');
  const count = load.count;
  const c0 = count === undefined ? 0 : await count(leg);
  const w = await watched(leg.proc.pid, PROXY_CPU, () => wrk(load.durationS, 'wrk'));
  const c1 = count === undefined ? 0 : await count(leg);
  const warmupS = load.quick ? 1 : 2;
  const paced = await watched(leg.proc.pid, PROXY_CPU, () =>
    runPaced({
      cpu: LOAD_CPU,
      url,
      rate: load.rate,
      durationS: load.durationS,
      warmupS,
      connections: 64,
      headers: load.headers,
      logFile: log('paced'),
    }),
  );
  return {
    wrk: w.value,
    cpuPerRequestUs: (w.cpuS / w.value.requests) * 1e6,
    paced: paced.value,
    other: { wrk: w.other, paced: paced.other },
    counted:
      count === undefined
        ? null
        : {
            wrk: (c1 - c0) / w.value.requests,
            // The paced phase's warm-up is counted too: its requests at the achieved rate.
            paced: ((await count(leg)) - c1) / (paced.value.achievedRate * (load.durationS + warmupS)),
          },
  };
}

/**
 * Every leg measured `rounds` times, legs alternating, in reverse order every other round (so no
 * leg is always measured first or last in a round while the machine drifts); a disturbed round
 * again (at most `retries` in all).
 */
export async function measureLegs(
  legs: readonly Leg[],
  dir: string,
  load: LegLoad,
  rounds: number,
  retries: number,
): Promise<void> {
  let left = retries;
  for (let r = 0; r < rounds; r++) {
    for (const leg of r % 2 === 0 ? legs : [...legs].reverse()) {
      for (let attempt = 0; ; attempt++) {
        process.stderr.write(`bench: ${leg.name} round ${r + 1}/${rounds}\n`);
        const round = await measureRound(leg, dir, r * 10 + attempt, load);
        const disturbed = Math.max(round.other.wrk, round.other.paced) > DISTURBED;
        if (!disturbed || left === 0) {
          leg.rounds.push(round);
          break;
        }
        left -= 1;
        process.stderr.write(
          `bench: ${leg.name}: other processes took ${(100 * Math.max(round.other.wrk, round.other.paced)).toFixed(0)} % of the proxy core; measuring again\n`,
        );
      }
    }
  }
}

/** The round with the most req/s, and the one with the lowest paced p99. */
export const bestRound = (leg: Leg): Round =>
  leg.rounds.reduce((a, b) => (b.wrk.requestsPerSec > a.wrk.requestsPerSec ? b : a));
export const calmRound = (leg: Leg): Round =>
  leg.rounds.reduce((a, b) => (b.paced.serviceUs.p99 < a.paced.serviceUs.p99 ? b : a));

const ms = (us: number): string => (us / 1000).toFixed(2);
const pct = (share: number): string => `${(100 * share).toFixed(0)} %`;

/** The table rows: one per leg (best req/s, calmest latency), then each round. */
export function legLines(legs: readonly Leg[]): string[] {
  const lines = [
    'leg            req/s    sluice CPU/req   wrk p99    paced p50   paced p99   errors   other on proxy core (wrk, paced)',
  ];
  for (const leg of legs) {
    const b = bestRound(leg);
    const c = calmRound(leg);
    const errors = b.wrk.non2xx + b.wrk.socketErrors + c.paced.errors;
    lines.push(
      `${leg.name.padEnd(12)} ${b.wrk.requestsPerSec.toFixed(0).padStart(7)} ${`${b.cpuPerRequestUs.toFixed(1)} µs`.padStart(16)} ${`${b.wrk.latencyMs.p99.toFixed(2)} ms`.padStart(10)} ${`${ms(c.paced.serviceUs.p50)} ms`.padStart(11)} ${`${ms(c.paced.serviceUs.p99)} ms`.padStart(11)}   ${String(errors).padEnd(6)}   ${pct(b.other.wrk)}, ${pct(c.other.paced)}`,
    );
    for (const [i, x] of leg.rounds.entries())
      lines.push(
        `  round ${i + 1}: ${x.wrk.requestsPerSec.toFixed(0)} req/s, ${x.cpuPerRequestUs.toFixed(1)} µs/req, paced p99 ${ms(x.paced.serviceUs.p99)} ms, other ${pct(x.other.wrk)} / ${pct(x.other.paced)}`,
      );
  }
  return lines;
}

/**
 * `on`'s req/s over `off`'s, round by round: a round measures every leg before the next round
 * starts, so the two legs of a pair ran minutes closer together than rounds do, and this VM moves
 * a leg's CPU per request by up to a quarter between rounds minutes apart. The median of the pairs
 * is the run's ratio: one disturbed round moves it little, where each leg's best round, taken
 * from different minutes, carries the drift.
 */
export function pairedRatio(
  on: Leg,
  off: Leg,
): { median: number; min: number; max: number; pairs: number[] } {
  const n = Math.min(on.rounds.length, off.rounds.length);
  const pairs: number[] = [];
  for (let i = 0; i < n; i++)
    pairs.push(on.rounds[i]!.wrk.requestsPerSec / off.rounds[i]!.wrk.requestsPerSec);
  const sorted = [...pairs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, pairs };
}

/**
 * `on / off` in this one run: req/s (median of the paired rounds, their range, and the best
 * rounds' ratio), CPU per request of the best rounds, paced p99 and p50 of the calmest rounds.
 */
export function ratioLine(on: Leg, off: Leg): string {
  const b = bestRound(on);
  const a = bestRound(off);
  const p = pairedRatio(on, off);
  return `${on.name} / ${off.name}: req/s ${p.median.toFixed(2)}x (median of ${p.pairs.length} paired rounds, ${p.min.toFixed(2)}-${p.max.toFixed(2)}; best rounds ${(b.wrk.requestsPerSec / a.wrk.requestsPerSec).toFixed(2)}x), CPU per request ${(b.cpuPerRequestUs / a.cpuPerRequestUs).toFixed(2)}x, paced p99 ${(calmRound(on).paced.serviceUs.p99 / calmRound(off).paced.serviceUs.p99).toFixed(2)}x (+${ms(calmRound(on).paced.serviceUs.p99 - calmRound(off).paced.serviceUs.p99)} ms), paced p50 +${ms(calmRound(on).paced.serviceUs.p50 - calmRound(off).paced.serviceUs.p50)} ms`;
}

const legUsage = (d: LegDefaults): string => `flags:
  --duration S       wrk seconds per round and leg (default ${d.durationS}; --quick 2)
  --rounds N         rounds, legs interleaved, every other round in reverse order (default ${d.rounds}; --quick 1)
  --rate N           paced phase: requests/s (default 2000)
  --connections N    wrk connections (default 50)
  --retries N        at most N disturbed rounds (other processes over 10 % of the proxy core) redone (default 4)
  --cpu-prof DIR     run each leg's sluice under node --cpu-prof, profiles in DIR/<leg>
  --quick            short smoke run (indicative only)
  --help
`;

export interface LegDefaults {
  readonly durationS: number;
  readonly rounds: number;
}

/**
 * The command line both leg benchmarks take: --quick, --duration, --rounds, --rate, --connections,
 * --retries, --cpu-prof DIR (each leg's sluice under `node --cpu-prof`, profiles in DIR/<leg>).
 */
export function legOptions(defaults: LegDefaults = { durationS: 10, rounds: 2 }): {
  quick: boolean;
  durationS: number;
  rounds: number;
  rate: number;
  connections: number;
  retries: number;
  cpuProfDir: string | null;
} {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        duration: { type: 'string' },
        rounds: { type: 'string' },
        rate: { type: 'string', default: '2000' },
        connections: { type: 'string', default: '50' },
        retries: { type: 'string', default: '4' },
        'cpu-prof': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${legUsage(defaults)}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(legUsage(defaults));
    process.exit(0);
  }
  const quick = values.quick;
  return {
    quick,
    durationS: Number(values.duration ?? (quick ? 2 : defaults.durationS)),
    rounds: Number(values.rounds ?? (quick ? 1 : defaults.rounds)),
    rate: Number(values.rate),
    connections: Number(values.connections),
    retries: Number(values.retries),
    cpuProfDir: values['cpu-prof'] === undefined ? null : resolve(values['cpu-prof']),
  };
}

/**
 * Mirroring benchmark (not a test): what 100 % request mirroring (VS-27) costs the primary path.
 * One run, two legs through the same `sluice serve --workers 1` build, pinned to the proxy core
 * (cpu 0), upstreams and load generators on cpu 1:
 *   - no mirror:   client → sluice → primary nginx
 *   - mirror 100%: the same, and every request also copied to a second nginx (its answers dropped)
 * Per leg: keep-alive req/s (wrk, closed loop), sluice CPU per request, and latency at a paced
 * rate (bench/lib/paced-load.ts, service time p50/p99). Legs alternate for `--rounds` rounds;
 * req/s is the best round, latency the round with the lowest p99. A round in which other
 * processes took more than 10 % of the proxy core is measured again (at most `--retries` times
 * per run), and what they took is printed. The ratios compare the legs of this one run. The
 * mirror leg's copies are checked on sluice's own metrics port.
 *
 *   npm run bench:mirror [-- --duration 10] [-- --rounds 2] [-- --rate 2000] [-- --quick]
 * Needs nginx and wrk (apt-get install nginx-light wrk).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runPaced } from './lib/latency.ts';
import { freePorts, until200 } from './lib/net.ts';
import { BODY_100, findNginx, startNginx, upstreamConf } from './lib/nginx.ts';
import type { PacedResult } from './lib/paced-load.ts';
import { stop, stopAll, type Proc } from './lib/procs.ts';
import { watched } from './lib/watched.ts';
import { startSluice, tail } from './lib/sluice.ts';
import { findWrk, runWrk, type WrkResult } from './lib/wrk.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    rate: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '50' },
    retries: { type: 'string', default: '4' },
  },
});
const QUICK = values.quick;
const DURATION_S = Number(values.duration ?? (QUICK ? 2 : 10));
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 2));
const RATE = Number(values.rate);
const CONNECTIONS = Number(values.connections);
const RETRIES = Number(values.retries);
/** Other processes' share of the proxy core above which a phase is measured again. */
const DISTURBED = 0.1;
const PROXY_CPU = cpus().length > 1 ? 0 : null;
const LOAD_CPU = cpus().length > 1 ? 1 : null;
const HOST = 'shop.bench.test';
const HEADERS = { host: HOST };

function config(port: number, primary: number, mirror: number, mirrored: boolean): string {
  const entry = (name: string, p: number): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.bench.internal]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${p} } }]
---
`;
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bench, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: ${port}, name: http, protocol: HTTP }, hosts: ['*'] }]
---
${entry('primary', primary)}${entry('mirror', mirror)}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bench, namespace: default }
spec:
  hosts: [${HOST}]
  gateways: [istio-system/bench]
  http:
    - route: [{ destination: { host: primary.bench.internal } }]
${mirrored ? '      mirror: { host: mirror.bench.internal }\n' : ''}`;
}

interface Round {
  readonly wrk: WrkResult;
  readonly cpuPerRequestUs: number;
  readonly paced: PacedResult;
  /** Share of the proxy core other processes used during the wrk and the paced phase. */
  readonly other: { readonly wrk: number; readonly paced: number };
}

interface Leg {
  readonly name: string;
  readonly proc: Proc;
  readonly port: number;
  readonly metricsPort: number;
  readonly rounds: Round[];
}

async function startLeg(
  dir: string,
  name: string,
  upstreams: { primary: number; mirror: number },
  mirrored: boolean,
): Promise<Leg> {
  const [port, status, metrics, admin] = await freePorts(4);
  const cdir = join(dir, name, 'config');
  mkdirSync(cdir, { recursive: true });
  writeFileSync(join(cdir, 'bench.yaml'), config(port!, upstreams.primary, upstreams.mirror, mirrored));
  const logFile = join(dir, name, 'sluice.log');
  const proc = startSluice({
    name,
    configDir: cdir,
    ports: { status: status!, metrics: metrics!, admin: admin! },
    cpu: PROXY_CPU,
    logFile,
  });
  await until200(`http://127.0.0.1:${port}/warm`, HEADERS, {
    deadlineMs: 20_000,
    bodyBytes: BODY_100.length,
  }).catch((err: unknown) => {
    throw new Error(`${name} did not start: ${String(err)}\n${tail(logFile)}`);
  });
  return { name, proc, port: port!, metricsPort: metrics!, rounds: [] };
}

async function measure(leg: Leg, dir: string, round: number): Promise<Round> {
  const url = `http://127.0.0.1:${leg.port}/item/42`;
  const log = (what: string): string => join(dir, leg.name, `${what}-${round}.log`);
  const wrk = (durationS: number, what: string): Promise<WrkResult> =>
    runWrk({
      cpu: LOAD_CPU,
      url,
      threads: 1,
      connections: CONNECTIONS,
      durationS,
      headers: HEADERS,
      logFile: log(what),
    });
  await wrk(QUICK ? 1 : 3, 'warmup');
  const w = await watched(leg.proc.pid, PROXY_CPU, () => wrk(DURATION_S, 'wrk'));
  const paced = await watched(leg.proc.pid, PROXY_CPU, () =>
    runPaced({
      cpu: LOAD_CPU,
      url,
      rate: RATE,
      durationS: DURATION_S,
      warmupS: QUICK ? 1 : 2,
      connections: 64,
      headers: HEADERS,
      logFile: log('paced'),
    }),
  );
  return {
    wrk: w.value,
    cpuPerRequestUs: (w.cpuS / w.value.requests) * 1e6,
    paced: paced.value,
    other: { wrk: w.other, paced: paced.other },
  };
}

async function mirroredCounts(leg: Leg): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${leg.metricsPort}/stats/prometheus`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith('sluice_mirror_requests_total{'));
  const out = lines.map((l) => `${/result="(\w+)"/.exec(l)?.[1]} ${l.slice(l.lastIndexOf(' ') + 1)}`);
  return out.length > 0 ? out.join(', ') : 'none';
}

async function main(): Promise<void> {
  const nginx = findNginx();
  if (nginx === null) throw new Error('nginx not found: apt-get install nginx-light');
  if (findWrk() === null) throw new Error('wrk not found: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-mirror-'));
  const [primaryPort, mirrorPort] = await freePorts(2);
  for (const [name, port] of [
    ['primary', primaryPort!],
    ['mirror', mirrorPort!],
  ] as const)
    startNginx({
      nginx: nginx.path,
      name,
      dir: join(dir, name),
      conf: upstreamConf(join(dir, name), port),
      cpu: LOAD_CPU,
    });
  const upstreams = { primary: primaryPort!, mirror: mirrorPort! };
  const legs = [
    await startLeg(dir, 'no-mirror', upstreams, false),
    await startLeg(dir, 'mirror-100', upstreams, true),
  ];
  let retries = RETRIES;
  for (let r = 0; r < ROUNDS; r++) {
    for (const leg of legs) {
      for (let attempt = 0; ; attempt++) {
        process.stderr.write(`bench: ${leg.name} round ${r + 1}/${ROUNDS}\n`);
        const round = await measure(leg, dir, r * 10 + attempt);
        const disturbed = Math.max(round.other.wrk, round.other.paced) > DISTURBED;
        if (!disturbed || retries === 0) {
          leg.rounds.push(round);
          break;
        }
        retries -= 1;
        process.stderr.write(
          `bench: ${leg.name}: other processes took ${(100 * Math.max(round.other.wrk, round.other.paced)).toFixed(0)} % of the proxy core; measuring again\n`,
        );
      }
    }
  }
  const copies = await mirroredCounts(legs[1]!);
  for (const leg of legs) await stop(leg.proc);
  await stopAll();

  const best = (leg: Leg) =>
    leg.rounds.reduce((a, b) => (b.wrk.requestsPerSec > a.wrk.requestsPerSec ? b : a));
  const calm = (leg: Leg) =>
    leg.rounds.reduce((a, b) => (b.paced.serviceUs.p99 < a.paced.serviceUs.p99 ? b : a));
  const ms = (us: number): string => (us / 1000).toFixed(2);
  const pct = (share: number): string => `${(100 * share).toFixed(0)} %`;
  const lines = [
    `node ${process.version}, ${nginx.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), sluice --workers 1 on cpu ${PROXY_CPU}, upstreams and load on cpu ${LOAD_CPU}`,
    `wrk -c${CONNECTIONS} ${DURATION_S}s keep-alive (best of ${ROUNDS}); paced ${RATE} req/s ${DURATION_S}s, 64 connections (round with the lowest p99)`,
    'leg          req/s    sluice CPU/req   wrk p99    paced p50   paced p99   errors   other on proxy core (wrk, paced)',
  ];
  for (const leg of legs) {
    const b = best(leg);
    const c = calm(leg);
    const errors = b.wrk.non2xx + b.wrk.socketErrors + c.paced.errors;
    lines.push(
      `${leg.name.padEnd(10)} ${b.wrk.requestsPerSec.toFixed(0).padStart(7)} ${`${b.cpuPerRequestUs.toFixed(1)} µs`.padStart(16)} ${`${b.wrk.latencyMs.p99.toFixed(2)} ms`.padStart(10)} ${`${ms(c.paced.serviceUs.p50)} ms`.padStart(11)} ${`${ms(c.paced.serviceUs.p99)} ms`.padStart(11)}   ${String(errors).padEnd(6)}   ${pct(b.other.wrk)}, ${pct(c.other.paced)}`,
    );
    for (const [i, x] of leg.rounds.entries())
      lines.push(
        `  round ${i + 1}: ${x.wrk.requestsPerSec.toFixed(0)} req/s, ${x.cpuPerRequestUs.toFixed(1)} µs/req, paced p99 ${ms(x.paced.serviceUs.p99)} ms, other ${pct(x.other.wrk)} / ${pct(x.other.paced)}`,
      );
  }
  const [off, on] = [legs[0]!, legs[1]!];
  lines.push(
    `mirror-100 / no-mirror: req/s ${(best(on).wrk.requestsPerSec / best(off).wrk.requestsPerSec).toFixed(2)}x, CPU per request ${(best(on).cpuPerRequestUs / best(off).cpuPerRequestUs).toFixed(2)}x, paced p99 ${(calm(on).paced.serviceUs.p99 / calm(off).paced.serviceUs.p99).toFixed(2)}x (+${ms(calm(on).paced.serviceUs.p99 - calm(off).paced.serviceUs.p99)} ms), paced p50 +${ms(calm(on).paced.serviceUs.p50 - calm(off).paced.serviceUs.p50)} ms`,
  );
  lines.push(`mirror-100 copies (sluice_mirror_requests_total): ${copies}`);
  lines.push(`logs: ${dir}`);
  console.log(lines.join('\n'));
}

main().catch(async (err: unknown) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});

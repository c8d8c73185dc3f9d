/**
 * Consistent hashing vs LEAST_REQUEST (not a test), side by side in one run: three
 * `sluice serve --workers 1` processes of the same build, all pinned to the proxy core (CPU 0),
 * one per balancer — LEAST_REQUEST (Istio's default), RING_HASH and MAGLEV keyed by `x-user` —
 * in front of the same four nginx upstreams; wrk (keep-alive, a different `x-user` on every
 * request) and the upstreams on CPU 1. Only the leg being measured gets load. Legs alternate for
 * `--rounds` rounds; a round in which other processes took more than 10 % of the proxy core is
 * measured again (at most `--retries` times per run). Each fresh process first gets `--warmup`
 * seconds of load (its first seconds cost more per request: JIT, connection pools). Per leg the
 * best round's req/s and sluice's own CPU per request; the ratios compare the legs of this one run.
 * Only 127.0.0.1 is used.
 *
 *   node bench/consistent-hash.ts [--duration S] [--rounds N] [--retries N] [--warmup S] [--quick]
 * Needs nginx and wrk (apt-get install nginx-light wrk).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, until200 } from './lib/net.ts';
import { BODY_100, findNginx, startNginx, upstreamConf } from './lib/nginx.ts';
import { stop, stopAll, type Proc } from './lib/procs.ts';
import { startSluice, tail } from './lib/sluice.ts';
import { findWrk, runWrk, type WrkResult } from './lib/wrk.ts';
import { watched } from './lib/watched.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    retries: { type: 'string', default: '4' },
    warmup: { type: 'string' },
  },
});
const QUICK = values.quick;
const DURATION_S = Number(values.duration ?? (QUICK ? 2 : 8));
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 3));
const RETRIES = Number(values.retries);
/** Load each fresh process gets once before the rounds: its first seconds cost more (JIT, pools). */
const WARMUP_S = Number(values.warmup ?? (QUICK ? 2 : 8));
/** Other processes' share of the proxy core above which a round is measured again. */
const DISTURBED = 0.1;
const PROXY_CPU = cpus().length > 1 ? 0 : null;
const LOAD_CPU = cpus().length > 1 ? 1 : null;
const HEADERS = { host: 'example.com' };

const POLICIES: readonly (readonly [name: string, lb: string])[] = [
  ['LEAST_REQUEST', '{ simple: LEAST_REQUEST }'],
  ['RING_HASH', '{ consistentHash: { httpHeaderName: x-user } }'],
  ['MAGLEV', '{ consistentHash: { httpHeaderName: x-user, maglev: { tableSize: 65537 } } }'],
];

function config(gatewayPort: number, upstreams: readonly number[], lb: string): string {
  const endpoints = upstreams.map((p) => `{ address: 127.0.0.1, ports: { http: ${p} } }`).join(', ');
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: ${gatewayPort}, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: users, namespace: default }
spec:
  hosts: [users.default.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [${endpoints}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: users, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: users.default.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: users, namespace: default }
spec:
  host: users.default.svc.cluster.local
  trafficPolicy: { loadBalancer: ${lb} }
`;
}

interface Round {
  readonly wrk: WrkResult;
  readonly cpuPerRequestUs: number;
  /** Share of the proxy core other processes took during the measured phase. */
  readonly other: number;
}

interface Leg {
  readonly name: string;
  readonly proc: Proc;
  readonly port: number;
  readonly rounds: Round[];
}

async function startLeg(dir: string, name: string, upstreams: readonly number[], lb: string): Promise<Leg> {
  const [port, status, metrics, admin] = await freePorts(4);
  const cdir = join(dir, name, 'config');
  mkdirSync(cdir, { recursive: true });
  writeFileSync(join(cdir, 'bench.yaml'), config(port!, upstreams, lb));
  const logFile = join(dir, name, 'sluice.log');
  const proc = startSluice({
    name,
    configDir: cdir,
    ports: { status: status!, metrics: metrics!, admin: admin! },
    cpu: PROXY_CPU,
    logFile,
  });
  await until200(`http://127.0.0.1:${port}/`, HEADERS, {
    deadlineMs: 20_000,
    bodyBytes: BODY_100.length,
  }).catch((err: unknown) => {
    throw new Error(`${name} did not start: ${String(err)}\n${tail(logFile)}`);
  });
  return { name, proc, port: port!, rounds: [] };
}

function load(leg: Leg, dir: string, script: string, durationS: number, what: string): Promise<WrkResult> {
  return runWrk({
    cpu: LOAD_CPU,
    url: `http://127.0.0.1:${leg.port}/`,
    threads: 1,
    connections: 50,
    durationS,
    headers: HEADERS,
    logFile: join(dir, leg.name, `${what}.log`),
    script,
  });
}

async function measure(leg: Leg, dir: string, script: string, round: number): Promise<Round> {
  await load(leg, dir, script, QUICK ? 1 : 2, `warmup-${round}`);
  const w = await watched(leg.proc.pid, PROXY_CPU, () => load(leg, dir, script, DURATION_S, `wrk-${round}`));
  return { wrk: w.value, cpuPerRequestUs: (w.cpuS / w.value.requests) * 1e6, other: w.other };
}

async function main(): Promise<void> {
  const nginx = findNginx();
  if (nginx === null) throw new Error('nginx not found: apt-get install nginx-light');
  if (findWrk() === null) throw new Error('wrk not found: apt-get install wrk');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-hash-'));
  const upstreams = await freePorts(4);
  for (const port of upstreams)
    startNginx({
      nginx: nginx.path,
      name: `upstream-${port}`,
      dir: join(dir, `upstream-${port}`),
      conf: upstreamConf(join(dir, `upstream-${port}`), port),
      cpu: LOAD_CPU,
    });
  const script = join(dir, 'users.lua');
  writeFileSync(
    script,
    'request = function()\n  wrk.headers["x-user"] = "user-" .. math.random(1, 100000)\n  return wrk.format()\nend\n',
  );
  const legs: Leg[] = [];
  for (const [name, lb] of POLICIES) legs.push(await startLeg(dir, name, upstreams, lb));
  for (const leg of legs) {
    process.stderr.write(`bench: ${leg.name} warm-up ${WARMUP_S} s\n`);
    await load(leg, dir, script, WARMUP_S, 'prewarm');
  }
  let retries = RETRIES;
  for (let r = 0; r < ROUNDS; r++) {
    for (const leg of legs) {
      for (let attempt = 0; ; attempt++) {
        process.stderr.write(`bench: ${leg.name} round ${r + 1}/${ROUNDS}\n`);
        const round = await measure(leg, dir, script, r * 10 + attempt);
        if (round.other <= DISTURBED || retries === 0) {
          leg.rounds.push(round);
          break;
        }
        retries -= 1;
        process.stderr.write(
          `bench: ${leg.name}: other processes took ${(100 * round.other).toFixed(0)} % of the proxy core; measuring again\n`,
        );
      }
    }
  }
  for (const leg of legs) await stop(leg.proc);
  await stopAll();

  const best = (leg: Leg): Round =>
    leg.rounds.reduce((a, b) => (b.wrk.requestsPerSec > a.wrk.requestsPerSec ? b : a));
  const pct = (share: number): string => `${(100 * share).toFixed(0)} %`;
  const base = best(legs[0]!);
  const lines = [
    `node ${process.version}, ${nginx.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), each sluice --workers 1 on cpu ${PROXY_CPU}, 4 nginx upstreams and wrk on cpu ${LOAD_CPU}`,
    `wrk -t1 -c50 ${DURATION_S}s keep-alive, a random x-user per request (best of ${ROUNDS} rounds, legs alternating, after ${WARMUP_S} s of warm-up each)`,
    '',
    '| balancer | req/s | sluice CPU µs per request | wrk p50 / p99 ms | vs LEAST_REQUEST: req/s, CPU per request | non-2xx | other on proxy core |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const leg of legs) {
    const b = best(leg);
    lines.push(
      `| ${leg.name} | ${Math.round(b.wrk.requestsPerSec).toLocaleString('en')} | ${b.cpuPerRequestUs.toFixed(1)} | ${b.wrk.latencyMs.p50} / ${b.wrk.latencyMs.p99} | ${(b.wrk.requestsPerSec / base.wrk.requestsPerSec).toFixed(2)}×, ${(b.cpuPerRequestUs / base.cpuPerRequestUs).toFixed(2)}× | ${b.wrk.non2xx + b.wrk.socketErrors} | ${pct(b.other)} |`,
    );
  }
  lines.push('');
  for (const leg of legs)
    lines.push(
      `${leg.name} rounds: ${leg.rounds.map((x) => `${Math.round(x.wrk.requestsPerSec)} req/s ${x.cpuPerRequestUs.toFixed(1)} µs (other ${pct(x.other)})`).join('; ')}`,
    );
  lines.push(`logs: ${dir}`);
  console.log(lines.join('\n'));
}

main().catch(async (err: unknown) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});

/**
 * Rate-limit benchmark (not a test): what one rate-limit rule costs a request, issue 12 item 9.
 * One run, four legs through the same `sluice serve --workers 1` build on the proxy core (cpu 0),
 * nginx upstream, redis-server and load generators on cpu 1:
 *   - none:         no RateLimitPolicy
 *   - local:        one Local rule keyed by client address (a limit never reached)
 *   - global:       the same rule with storage Global on a loopback redis-server (one script call
 *                   per request)
 *   - redis-down:   storage Global, failureMode Open, Redis not listening (the breaker's path:
 *                   every request decided by the local fallback without waiting)
 * Per leg: keep-alive req/s (wrk), sluice CPU per request, paced service-time p50/p99, and for
 * the Global legs the script calls per request (checks of concurrent requests share a call; read
 * from sluice's Redis latency histogram); ratios against `none` from this one run. Targets:
 * global ≥ 0.85×, local ≥ 0.95× req/s.
 *
 *   npm run bench:ratelimit [-- --duration 10] [-- --rounds 2] [-- --rate 2000] [-- --quick]
 *                           [-- --cpu-prof DIR]   (each leg's sluice under node --cpu-prof)
 * Needs nginx, wrk and redis-server (apt-get install nginx-light wrk redis-server).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOAD_CPU,
  PROXY_CPU,
  bestRound,
  legLines,
  measureLegs,
  ratioLine,
  startLeg,
  legOptions,
  type Leg,
} from './lib/simple-legs.ts';
import { freePorts } from './lib/net.ts';
import { RATE_LIMIT_BENCH_HOST, rateLimitBenchConfig as config, type Mode } from './configs/ratelimit.ts';
import { findNginx, startNginx, upstreamConf } from './lib/nginx.ts';
import { spawnPinned, stop, stopAll } from './lib/procs.ts';
import { findWrk } from './lib/wrk.ts';

const OPTS = legOptions();
const QUICK = OPTS.quick;
const DURATION_S = OPTS.durationS;
const ROUNDS = OPTS.rounds;
const HEADERS = { host: RATE_LIMIT_BENCH_HOST };

/** Script calls answered so far: the count of sluice's Redis round-trip histogram (0 without one). */
async function scriptCalls(leg: Leg): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${leg.metricsPort}/stats/prometheus`)).text();
  const m = /^sluice_ratelimit_redis_duration_seconds_count(?:\{[^}]*\})? (\d+)/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** Per round, in order: during wrk and during the paced load. */
function callsLine(leg: Leg): string {
  return leg.rounds
    .map((r) => `wrk ${r.counted?.wrk.toFixed(3) ?? '?'}, paced ${r.counted?.paced.toFixed(2) ?? '?'}`)
    .join('; ');
}

async function main(): Promise<void> {
  const nginx = findNginx();
  if (nginx === null) throw new Error('nginx not found: apt-get install nginx-light');
  if (findWrk() === null) throw new Error('wrk not found: apt-get install wrk');
  if (spawnSync('redis-server', ['--version']).error !== undefined)
    throw new Error('redis-server not found: apt-get install redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-ratelimit-'));
  const [upstreamPort, redisPort, deadPort] = await freePorts(3);
  startNginx({
    nginx: nginx.path,
    name: 'upstream',
    dir: join(dir, 'upstream'),
    conf: upstreamConf(join(dir, 'upstream'), upstreamPort!),
    cpu: LOAD_CPU,
  });
  mkdirSync(join(dir, 'redis'), { recursive: true });
  spawnPinned({
    name: 'redis',
    cpu: LOAD_CPU,
    command: 'redis-server',
    args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    logFile: join(dir, 'redis', 'redis.log'),
  });
  const leg = (name: Mode, port: number) =>
    startLeg(dir, name, (p) => config(p, upstreamPort!, name, port), HEADERS, OPTS.cpuProfDir);
  const legs = [
    await leg('none', redisPort!),
    await leg('local', redisPort!),
    await leg('global', redisPort!),
    await leg('redis-down', deadPort!),
  ];
  await measureLegs(
    legs,
    dir,
    {
      quick: QUICK,
      durationS: DURATION_S,
      rate: OPTS.rate,
      connections: OPTS.connections,
      headers: HEADERS,
      path: '/item/42',
      count: scriptCalls,
    },
    ROUNDS,
    OPTS.retries,
  );
  for (const l of legs) await stop(l.proc);
  await stopAll();
  const [none, local, global, down] = [legs[0]!, legs[1]!, legs[2]!, legs[3]!];
  const ratio = (l: typeof none): number =>
    bestRound(l).wrk.requestsPerSec / bestRound(none).wrk.requestsPerSec;
  const lines = [
    `node ${process.version}, ${nginx.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), sluice --workers 1 on cpu ${PROXY_CPU}, upstream, redis-server and load on cpu ${LOAD_CPU}`,
    `wrk -c${OPTS.connections} ${DURATION_S}s keep-alive (best of ${ROUNDS}); paced ${OPTS.rate} req/s ${DURATION_S}s, 64 connections (round with the lowest p99)`,
    ...legLines(legs),
    ratioLine(local, none),
    ratioLine(global, none),
    ratioLine(down, none),
    `global: script calls per request ${callsLine(global)}`,
    `targets: local ${ratio(local).toFixed(2)}x (≥ 0.95: ${ratio(local) >= 0.95 ? 'met' : 'NOT met'}), global ${ratio(global).toFixed(2)}x (≥ 0.85: ${ratio(global) >= 0.85 ? 'met' : 'NOT met'})`,
    `logs: ${dir}`,
  ];
  console.log(lines.join('\n'));
}

main().catch(async (err: unknown) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});

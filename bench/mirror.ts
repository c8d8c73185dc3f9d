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
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOAD_CPU,
  PROXY_CPU,
  legLines,
  measureLegs,
  ratioLine,
  startLeg,
  type Leg,
  legOptions,
} from './lib/simple-legs.ts';
import { freePorts } from './lib/net.ts';
import { findNginx, startNginx, upstreamConf } from './lib/nginx.ts';
import { stop, stopAll } from './lib/procs.ts';
import { findWrk } from './lib/wrk.ts';

const OPTS = legOptions();
const QUICK = OPTS.quick;
const DURATION_S = OPTS.durationS;
const ROUNDS = OPTS.rounds;
const RATE = OPTS.rate;
const CONNECTIONS = OPTS.connections;
const RETRIES = OPTS.retries;
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
    await startLeg(
      dir,
      'no-mirror',
      (port) => config(port, upstreams.primary, upstreams.mirror, false),
      HEADERS,
    ),
    await startLeg(
      dir,
      'mirror-100',
      (port) => config(port, upstreams.primary, upstreams.mirror, true),
      HEADERS,
    ),
  ];
  const load = {
    quick: QUICK,
    durationS: DURATION_S,
    rate: RATE,
    connections: CONNECTIONS,
    headers: HEADERS,
    path: '/item/42',
  };
  await measureLegs(legs, dir, load, ROUNDS, RETRIES);
  const copies = await mirroredCounts(legs[1]!);
  for (const leg of legs) await stop(leg.proc);
  await stopAll();

  const [off, on] = [legs[0]!, legs[1]!];
  const lines = [
    `node ${process.version}, ${nginx.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), sluice --workers 1 on cpu ${PROXY_CPU}, upstreams and load on cpu ${LOAD_CPU}`,
    `wrk -c${CONNECTIONS} ${DURATION_S}s keep-alive (best of ${ROUNDS}); paced ${RATE} req/s ${DURATION_S}s, 64 connections (round with the lowest p99)`,
    ...legLines(legs),
    ratioLine(on, off),
  ];
  lines.push(`mirror-100 copies (sluice_mirror_requests_total): ${copies}`);
  lines.push(`logs: ${dir}`);
  console.log(lines.join('\n'));
}

main().catch(async (err: unknown) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});

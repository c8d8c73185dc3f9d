/**
 * What observability costs on the request path (issue 4 item 10), not a test: the same sluice
 * request path (bench/observability-gateway.ts) with the request observer off, with metrics only
 * (the default: tracing off), with metrics + the JSON access log to a file, and with metrics +
 * OpenTelemetry tracing at 1 % (Istio's default) and 100 % sampling to a loopback OTLP/HTTP
 * receiver; nginx as a reverse proxy alongside when installed, for the per-core ratio. Proxies
 * run alone on CPU 0; upstream, wrk and the OTLP receiver share CPU 1. Keep-alive throughput
 * with wrk, legs interleaved over rounds, best round kept.
 *
 *   node bench/observability.ts [--quick] [--json] [--duration S] [--rounds N] [--connections N]
 *     [--only off,metrics,metrics+log,metrics+trace1,metrics+trace100,nginx] [--keep]
 */
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, until200 } from './lib/net.ts';
import { BODY_100, findNginx, proxyConf, startNginx, startUpstream } from './lib/nginx.ts';
import { readCpuTimes, sharesBetween } from './lib/cpu.ts';
import { spawnPinned, stop, stopAll, treeCpuSeconds, type Proc } from './lib/procs.ts';
import { findWrk, runWrk, type WrkResult } from './lib/wrk.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
    only: { type: 'string' },
    retries: { type: 'string' },
  },
});
const quick = args.quick;
const durationS = Number(args.duration ?? (quick ? 2 : 8));
const warmupS = Number(args.warmup ?? (quick ? 1 : 2));
const rounds = Number(args.rounds ?? (quick ? 1 : 3));
const connections = Number(args.connections);
/** Re-measure a leg when other processes took more than this share of the proxy core. */
const DISTURBED = 0.1;
let retriesLeft = Number(args.retries ?? (quick ? 1 : 6));

const progress = (msg: string): void => void process.stderr.write(`[observability-bench] ${msg}\n`);

const wrk = findWrk();
if (wrk === null) {
  progress('wrk is not installed (apt-get install wrk); nothing measured');
  process.exit(2);
}
const nginx = findNginx();
const cores = availableParallelism();
const proxyCpu = cores >= 2 ? 0 : null;
const loadCpu = cores >= 2 ? 1 : null;
const tmp = mkdtempSync(join(tmpdir(), 'sluice-obs-bench-'));

const HOST = 'bench.example.com';
const PATH = '/bench/item/42';

// A loopback OTLP/HTTP receiver: drains and counts, does not parse (it shares the load core).
let otlpRequests = 0;
let otlpBytes = 0;
const receiver = createServer((req, res) => {
  otlpRequests += 1;
  req.on('data', (c: Buffer) => (otlpBytes += c.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const otlpPort = (receiver.address() as { port: number }).port;

interface LegSpec {
  readonly id: string;
  readonly what: string;
  readonly observer: 'on' | 'off';
  readonly mesh: string;
}

const accessLogFile = join(tmp, 'access.log');
const LEGS: LegSpec[] = [
  { id: 'off', what: 'observer off (no onRequestDone)', observer: 'off', mesh: '' },
  {
    id: 'metrics',
    what: 'istio_* metrics on, access log off, tracing off (the default)',
    observer: 'on',
    mesh: '',
  },
  {
    id: 'metrics+log',
    what: 'metrics + JSON access log to a file',
    observer: 'on',
    mesh: `  accessLogFile: ${accessLogFile}\n  accessLogEncoding: JSON\n`,
  },
  {
    id: 'metrics+trace1',
    what: 'metrics + OpenTelemetry tracing, 1 % sampled',
    observer: 'on',
    mesh: otelMesh(1),
  },
  {
    id: 'metrics+trace100',
    what: 'metrics + OpenTelemetry tracing, 100 % sampled (OTLP/HTTP to loopback)',
    observer: 'on',
    mesh: otelMesh(100),
  },
];

function otelMesh(percent: number): string {
  return `  extensionProviders:
    - name: otel
      opentelemetry: { service: 127.0.0.1, port: ${otlpPort}, http: { path: /v1/traces } }
  tracing: { provider: otel, randomSamplingPercentage: ${percent} }
`;
}

function configYaml(gatewayPort: number, upstreamPort: number, mesh: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bench, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${gatewayPort}, name: http, protocol: HTTP }
      hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: upstream, namespace: bench }
spec:
  hosts: [upstream.bench.svc.cluster.local]
  ports: [{ number: ${upstreamPort}, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bench, namespace: bench }
spec:
  hosts: [${HOST}]
  gateways: [istio-system/bench]
  http:
    - name: bench-target
      match: [{ uri: { prefix: /bench/ } }]
      route: [{ destination: { host: upstream.bench.svc.cluster.local, port: { number: ${upstreamPort} } } }]
${
  mesh === ''
    ? ''
    : `---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
${mesh}`
}`;
}

interface Leg {
  readonly id: string;
  readonly what: string;
  readonly url: string;
  readonly proc: Proc;
  readonly results: (WrkResult & { otherOnProxyCore: number | null; cpuUsPerRequest: number })[];
}

async function main(): Promise<void> {
  const ports = await freePorts(LEGS.length + 2);
  const upstreamPort = ports[0]!;
  const upstream = startUpstream({ nginx, dir: tmp, port: upstreamPort, cpu: loadCpu });
  const headers = { host: HOST };
  await until200(`http://127.0.0.1:${upstreamPort}${PATH}`, headers, {
    deadlineMs: 10_000,
    bodyBytes: BODY_100.length,
  });

  const legs: Leg[] = [];
  const only = args.only === undefined ? null : new Set(args.only.split(','));
  for (let i = 0; i < LEGS.length; i++) {
    const spec = LEGS[i]!;
    if (only !== null && !only.has(spec.id)) continue;
    const port = ports[i + 2]!;
    const file = join(tmp, `${spec.id}.yaml`);
    writeFileSync(file, configYaml(port, upstreamPort, spec.mesh));
    const proc = spawnPinned({
      name: spec.id,
      cpu: proxyCpu,
      command: process.execPath,
      args: [
        new URL('./observability-gateway.ts', import.meta.url).pathname,
        '--config',
        file,
        '--observer',
        spec.observer,
      ],
      logFile: join(tmp, `${spec.id}.log`),
      env: { ...process.env, NODE_ENV: 'production' },
    });
    const url = `http://127.0.0.1:${port}${PATH}`;
    await until200(url, headers, { deadlineMs: 15_000, bodyBytes: BODY_100.length });
    legs.push({ id: spec.id, what: spec.what, url, proc, results: [] });
  }
  if (nginx && (only === null || only.has('nginx'))) {
    const port = ports[1]!;
    const dir = join(tmp, 'nginx-proxy');
    const proc = startNginx({
      nginx: nginx.path,
      name: 'nginx',
      dir,
      conf: proxyConf(dir, port, upstreamPort),
      cpu: proxyCpu,
    });
    const url = `http://127.0.0.1:${port}${PATH}`;
    await until200(url, headers, { deadlineMs: 10_000, bodyBytes: BODY_100.length });
    legs.push({ id: 'nginx', what: 'nginx reverse proxy, 1 worker (reference)', url, proc, results: [] });
  }

  for (let r = 0; r < rounds; r++) {
    for (const leg of legs) {
      progress(`round ${r + 1}/${rounds}: ${leg.id}`);
      const common = {
        cpu: loadCpu,
        url: leg.url,
        threads: 1,
        connections,
        headers,
        logFile: join(tmp, 'wrk.log'),
      };
      if (warmupS > 0) await runWrk({ ...common, durationS: warmupS });
      for (;;) {
        const cpuBefore = readCpuTimes();
        const procBefore = treeCpuSeconds(leg.proc.pid);
        const t0 = performance.now();
        const result = await runWrk({ ...common, durationS });
        const wallS = (performance.now() - t0) / 1000;
        const procS = treeCpuSeconds(leg.proc.pid) - procBefore;
        const share = proxyCpu === null ? undefined : sharesBetween(cpuBefore, readCpuTimes()).get(proxyCpu);
        const other = share === undefined ? null : Math.max(0, share.tasks - procS / wallS);
        if (other !== null && other > DISTURBED && retriesLeft > 0) {
          retriesLeft -= 1;
          progress(
            `  other processes took ${(other * 100).toFixed(0)} % of CPU ${proxyCpu}; measuring again`,
          );
          continue;
        }
        leg.results.push({
          ...result,
          otherOnProxyCore: other,
          cpuUsPerRequest: (procS * 1e6) / result.requests,
        });
        break;
      }
    }
  }

  const median = (xs: number[]): number => {
    const a = [...xs].sort((x, y) => x - y);
    return a.length % 2 === 1 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
  };
  const best = (leg: Leg): Leg['results'][number] =>
    leg.results.reduce((a, b) => (b.requestsPerSec > a.requestsPerSec ? b : a));
  const base = best(legs[0]!).requestsPerSec;
  const ng = legs.find((l) => l.id === 'nginx');
  const rows = legs.map((leg) => {
    const b = best(leg);
    return {
      leg: leg.id,
      what: leg.what,
      reqPerSec: Math.round(b.requestsPerSec),
      vsOff: +(b.requestsPerSec / base).toFixed(3),
      // The proxy's own CPU time per request, median over rounds: robust when other work shares the core.
      cpuUsPerRequest: +median(leg.results.map((x) => x.cpuUsPerRequest)).toFixed(1),
      vsNginx: ng ? +(b.requestsPerSec / best(ng).requestsPerSec).toFixed(3) : null,
      p50Ms: b.latencyMs.p50,
      p99Ms: b.latencyMs.p99,
      non2xx: b.non2xx,
      socketErrors: b.socketErrors,
      otherOnProxyCore: b.otherOnProxyCore === null ? null : +b.otherOnProxyCore.toFixed(3),
      rounds: leg.results.map((x) => Math.round(x.requestsPerSec)),
    };
  });
  await Promise.all(legs.map((l) => stop(l.proc)));
  await stop(upstream);
  const logLines = existsSync(accessLogFile) ? readFileSync(accessLogFile, 'utf8').split('\n').length - 1 : 0;
  const report = {
    node: process.version,
    cores,
    pinned:
      proxyCpu !== null ? 'proxy on CPU 0; upstream, wrk, OTLP receiver on CPU 1' : 'not pinned (one core)',
    upstream: nginx ? `nginx (${nginx.version})` : 'node:http (bench/lib/upstream-node.ts)',
    wrk: `${wrk!.version}, 1 thread, ${connections} connections, keep-alive, ${durationS} s per leg (+${warmupS} s warm-up), best of ${rounds}`,
    rows,
    accessLogLinesWritten: logLines,
    otlp: { exportRequests: otlpRequests, bytes: otlpBytes },
  };
  if (args.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const lines = [
      `sluice observability cost — Node ${report.node}, ${cores} cores, ${report.pinned}`,
      `upstream ${report.upstream}; wrk ${report.wrk}`,
      '',
      'leg                 req/s     vs off  vs nginx  CPU µs/req   p50 ms   p99 ms  other%  rounds',
      ...rows.map(
        (r) =>
          `${r.leg.padEnd(18)} ${String(r.reqPerSec).padStart(7)}   ${r.vsOff.toFixed(3).padStart(6)}  ${(r.vsNginx === null ? '-' : r.vsNginx.toFixed(3)).padStart(8)}  ${r.cpuUsPerRequest.toFixed(1).padStart(10)}  ${r.p50Ms.toFixed(2).padStart(7)}  ${r.p99Ms.toFixed(2).padStart(7)}  ${(r.otherOnProxyCore === null ? '-' : (r.otherOnProxyCore * 100).toFixed(0)).padStart(6)}  ${r.rounds.join(' / ')}` +
          (r.non2xx + r.socketErrors > 0 ? `  (non-2xx ${r.non2xx}, socket errors ${r.socketErrors})` : ''),
      ),
      '',
      ...rows.map((r) => `  ${r.leg}: ${r.what}`),
      '',
      "CPU µs/req: the proxy process tree's own CPU time per request (median of rounds); the cost figure that holds when the machine is busy",
      `other%: CPU ${proxyCpu ?? '-'} time other processes took during the kept run (runs over ${DISTURBED * 100} % are measured again, ${retriesLeft} retries left)`,
      `access log lines written: ${logLines}; OTLP export requests: ${otlpRequests} (${otlpBytes} bytes)`,
      cores < 2
        ? 'one core: load generator and proxy share it; figures are not comparable to the e2e bench'
        : '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
}

try {
  await main();
} finally {
  await stopAll();
  receiver.close();
  if (args.keep) progress(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

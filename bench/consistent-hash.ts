/**
 * Consistent hashing vs LEAST_REQUEST (not a test): one sluice worker pinned to CPU 0 in front of
 * four Node upstreams on CPU 1, wrk (keep-alive, 50 connections) sending a different `x-user` on
 * every request, for each balancer in turn: LEAST_REQUEST (Istio's default), RING_HASH and
 * MAGLEV keyed by that header. Only 127.0.0.1 is used.
 *
 *   node bench/consistent-hash.ts [--duration S]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, until200 } from './lib/net.ts';
import { spawnPinned, stop, stopAll, treeCpuSeconds } from './lib/procs.ts';
import { startSluice } from './lib/sluice.ts';
import { findWrk, runWrk } from './lib/wrk.ts';
import { BODY_100 } from './lib/upstream-node.ts';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '8' } } });
const durationS = Number(values.duration);
if (findWrk() === null) throw new Error('wrk is not installed (apt-get install wrk)');
const cpus = availableParallelism();
const proxyCpu = cpus >= 2 ? 0 : null;
const loadCpu = cpus >= 2 ? 1 : null;
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-hash-'));
const log = join(dir, 'bench.log');

const upstreamPorts = await freePorts(4);
for (const port of upstreamPorts) {
  spawnPinned({
    name: `upstream-${port}`,
    cpu: loadCpu,
    command: process.execPath,
    args: [new URL('./lib/upstream-node.ts', import.meta.url).pathname, String(port)],
    logFile: log,
  });
}
const script = join(dir, 'users.lua');
writeFileSync(
  script,
  'request = function()\n  wrk.headers["x-user"] = "user-" .. math.random(1, 100000)\n  return wrk.format()\nend\n',
);

const POLICIES: Record<string, string> = {
  LEAST_REQUEST: '{ simple: LEAST_REQUEST }',
  'RING_HASH (x-user)': '{ consistentHash: { httpHeaderName: x-user } }',
  'MAGLEV (x-user)': '{ consistentHash: { httpHeaderName: x-user, maglev: { tableSize: 65537 } } }',
};

function config(gatewayPort: number, lb: string): string {
  const endpoints = upstreamPorts.map((p) => `{ address: 127.0.0.1, ports: { http: ${p} } }`).join(', ');
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

const rows: string[] = [];
try {
  for (const [name, lb] of Object.entries(POLICIES)) {
    const [gatewayPort, status, metrics, admin] = await freePorts(4);
    const cfg = mkdtempSync(join(dir, 'config-'));
    writeFileSync(join(cfg, 'config.yaml'), config(gatewayPort!, lb));
    const sluice = startSluice({
      name: 'sluice',
      configDir: cfg,
      ports: { status: status!, metrics: metrics!, admin: admin! },
      cpu: proxyCpu,
      logFile: log,
    });
    const url = `http://127.0.0.1:${gatewayPort}/`;
    await until200(url, { host: 'example.com' }, { deadlineMs: 20_000, bodyBytes: BODY_100.length });
    const common = {
      cpu: loadCpu,
      url,
      threads: 1,
      connections: 50,
      headers: { host: 'example.com' },
      logFile: log,
      script,
    };
    await runWrk({ ...common, durationS: 2 });
    // The load side (wrk's Lua, four upstreams) may saturate first: sluice's own CPU per request
    // is the figure that compares the balancers.
    const cpuBefore = treeCpuSeconds(sluice.pid);
    const r = await runWrk({ ...common, durationS });
    const cpuUs = ((treeCpuSeconds(sluice.pid) - cpuBefore) * 1e6) / r.requests;
    rows.push(
      `| ${name} | ${cpuUs.toFixed(1)} | ${Math.round(r.requestsPerSec).toLocaleString('en')} | ${r.latencyMs.p50} / ${r.latencyMs.p99} | ${r.non2xx} |`,
    );
    process.stderr.write(`${name}: ${Math.round(r.requestsPerSec)} req/s\n`);
    await stop(sluice);
  }
} finally {
  await stopAll();
}
process.stdout.write(
  `Node ${process.version}, ${cpus} cores, sluice --workers 1 on CPU ${proxyCpu ?? 'any'}, 4 upstreams and wrk on CPU ${loadCpu ?? 'any'}, ${durationS} s per balancer\n\n` +
    '| balancer | sluice CPU µs per request | req/s | wrk p50 / p99 ms (closed loop) | non-2xx |\n| --- | --- | --- | --- | --- |\n' +
    rows.join('\n') +
    '\n',
);
rmSync(dir, { recursive: true, force: true });

/**
 * The egress proxy (not a test): one sluice worker pinned to CPU 0 with --egress-proxy-port; the
 * external servers and the clients on CPU 1. Two figures, each beside the same client reaching the
 * server directly, from one run:
 *
 * - proxied HTTP: wrk (keep-alive, 50 connections) sending absolute-form requests to the proxy
 *   for a ServiceEntry host, against wrk straight to the 100-byte upstream;
 * - CONNECT tunnel throughput: one client reading `--mib` MiB through a tunnel to a TCP port of a
 *   ServiceEntry, against reading them from the source directly (best of `--rounds`).
 *
 * Only 127.0.0.1 is used.
 *
 *   node bench/egress.ts [--duration S] [--mib N] [--rounds N]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, until200 } from './lib/net.ts';
import { runPinned, spawnPinned, stopAll, treeCpuSeconds } from './lib/procs.ts';
import { REPO_ROOT, sluiceArgs } from './lib/sluice.ts';
import { findWrk, runWrk, type WrkResult } from './lib/wrk.ts';
import { BODY_100 } from './lib/upstream-node.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    mib: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
    /** Route the HTTP leg by a VirtualService bound to mesh instead of the default route. */
    mesh: { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
const bytes = Number(values.mib) * 1024 * 1024;
const rounds = Number(values.rounds);
if (findWrk() === null) throw new Error('wrk is not installed (apt-get install wrk)');
const cpus = availableParallelism();
const proxyCpu = cpus >= 2 ? 0 : null;
const loadCpu = cpus >= 2 ? 1 : null;
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-egress-'));
const log = join(dir, 'bench.log');
const node = process.execPath;
const lib = (f: string): string => new URL(`./lib/${f}`, import.meta.url).pathname;

const [upstreamPort, bulkPort, proxyPort, status, metrics, admin] = await freePorts(6);
spawnPinned({
  name: 'upstream',
  cpu: loadCpu,
  command: node,
  args: [lib('upstream-node.ts'), String(upstreamPort)],
  logFile: log,
});
spawnPinned({
  name: 'bulk',
  cpu: loadCpu,
  command: node,
  args: [lib('bulk.ts'), 'serve', String(bulkPort), String(bytes)],
  logFile: log,
});

const cfg = join(dir, 'config');
mkdirSync(cfg);
writeFileSync(
  join(cfg, 'egress.yaml'),
  `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bench, namespace: default }
spec:
  hosts: [bench.example.test]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1 }]
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${upstreamPort} }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: bulk, namespace: default }
spec:
  hosts: [bulk.example.test]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1 }]
  ports: [{ number: 9000, name: tcp-bulk, protocol: TCP, targetPort: ${bulkPort} }]
${
  values.mesh
    ? `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bench, namespace: default }
spec:
  hosts: [bench.example.test]
  http: [{ route: [{ destination: { host: bench.example.test } }] }]
`
    : ''
}`,
);
const sluice = spawnPinned({
  name: 'sluice',
  cpu: proxyCpu,
  command: node,
  args: [
    ...sluiceArgs(cfg, { status: status!, metrics: metrics!, admin: admin! }),
    '--egress-proxy-port',
    String(proxyPort),
  ],
  logFile: log,
  cwd: REPO_ROOT,
  env: { ...process.env, NODE_ENV: 'production' },
});

/** One absolute-form request through the proxy: 200 with the upstream's body once it serves. */
function proxied(): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: proxyPort,
        path: 'http://bench.example.test/',
        headers: { host: 'bench.example.test' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

const upstreamUrl = `http://127.0.0.1:${upstreamPort}/`;
await until200(upstreamUrl, {}, { deadlineMs: 20_000, bodyBytes: BODY_100.length });
const deadline = Date.now() + 20_000;
while ((await proxied()) !== 200) {
  if (Date.now() > deadline) throw new Error(`the egress proxy did not answer; see ${log}`);
  await new Promise((r) => setTimeout(r, 100));
}

const script = join(dir, 'proxy.lua');
writeFileSync(
  script,
  'wrk.path = "http://bench.example.test/"\nwrk.headers["Host"] = "bench.example.test"\n',
);

async function wrk(url: string, withScript: boolean, seconds: number): Promise<WrkResult> {
  return runWrk({
    cpu: loadCpu,
    url,
    threads: 1,
    connections: 50,
    durationS: seconds,
    headers: {},
    logFile: log,
    ...(withScript ? { script } : {}),
  });
}

async function readMiBps(target: string | null): Promise<number> {
  const args = [lib('bulk.ts'), 'read', String(target === null ? bulkPort : proxyPort), String(bytes)];
  const r = await runPinned({
    name: 'reader',
    cpu: loadCpu,
    command: node,
    args: target === null ? args : [...args, target],
    logFile: log,
    timeoutMs: 600_000,
  });
  if (r.code !== '0') throw new Error(`reader exited ${r.code}; see ${log}`);
  const { ms } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ms: number };
  return bytes / 1024 / 1024 / (ms / 1000);
}

try {
  await wrk(upstreamUrl, false, 2);
  await wrk(`http://127.0.0.1:${proxyPort}/`, true, 2);
  const direct = await wrk(upstreamUrl, false, durationS);
  const cpuBefore = treeCpuSeconds(sluice.pid);
  const viaProxy = await wrk(`http://127.0.0.1:${proxyPort}/`, true, durationS);
  const cpuUs = ((treeCpuSeconds(sluice.pid) - cpuBefore) * 1e6) / viaProxy.requests;
  let tunnelBest = 0;
  let directBest = 0;
  for (let i = 0; i < rounds; i++) {
    directBest = Math.max(directBest, await readMiBps(null));
    tunnelBest = Math.max(tunnelBest, await readMiBps('bulk.example.test:9000'));
  }
  const rps = (r: WrkResult): string => Math.round(r.requestsPerSec).toLocaleString('en');
  process.stdout.write(
    `Node ${process.version}, ${cpus} cores, sluice --workers 1 on CPU ${proxyCpu ?? 'any'}; servers, wrk and the reader on CPU ${loadCpu ?? 'any'}\n\n` +
      '| leg | direct | through the egress proxy | ratio |\n| --- | --- | --- | --- |\n' +
      `| HTTP req/s (wrk -c50, ${durationS} s, 100-byte body) | ${rps(direct)} | ${rps(viaProxy)} (${cpuUs.toFixed(1)} µs sluice CPU per request; non-2xx ${viaProxy.non2xx}) | ${(viaProxy.requestsPerSec / direct.requestsPerSec).toFixed(2)} |\n` +
      `| one stream, ${bytes / 1024 / 1024} MiB, MiB/s (best of ${rounds}) | ${directBest.toFixed(0)} | ${tunnelBest.toFixed(0)} (CONNECT tunnel) | ${(tunnelBest / directBest).toFixed(2)} |\n`,
  );
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Downstream HTTP/2 at the edge, sluice vs nginx in one run: h2load (TLS, ALPN h2, `--connections`
 * connections × `--streams` concurrent streams each) through each proxy to the same nginx
 * upstream (100-byte body, HTTP/1.1 keep-alive). Each proxy runs alone on CPU 0 (sluice
 * `--workers 1`, nginx one worker), h2load and the upstream on CPU 1. Per proxy and round:
 *   - req/s, and req/s per proxy core (req/s ÷ the proxy tree's CPU use), the figure compared;
 *   - request latency p50/p99/max from h2load's per-request log (closed loop, so mostly queueing);
 *   - upstream connections: the most the proxy held open at once, and how many distinct ones it
 *     used (sampled every 100 ms from /proc);
 *   - the proxy's resident memory at its peak during the round.
 * Rounds alternate between the proxies; the report keeps each proxy's best round (other work on
 * the machine only lowers throughput) and prints every round with the share of each core other
 * processes took.
 *
 *   npm run bench:h2 -- [--duration 10] [--rounds 2] [--connections 50] [--streams 10]
 *                       [--wait-calm S] [--cpu-prof DIR] [--keep] [--json]
 *
 * `--cpu-prof DIR` runs sluice under `node --cpu-prof` and leaves the profile in DIR.
 * Needs nginx and h2load (apt-get install nginx-light nghttp2-client).
 */
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { makeCa, makeServerCert } from '../src/tls/self-signed.ts';
import { busyNow, readCpuTimes, sharesBetween } from './lib/cpu.ts';
import { freePorts } from './lib/net.ts';
import { findNginx, startNginx, startUpstream } from './lib/nginx.ts';
import { percentiles } from './lib/paced-load.ts';
import {
  atExit,
  processTree,
  reapedChildrenCpuSeconds,
  runPinned,
  spawnPinned,
  stop,
  stopAll,
  treeCpuSeconds,
  treeRss,
  type Proc,
} from './lib/procs.ts';
import { REPO_ROOT, SLUICE_MAIN, sluiceArgs } from './lib/sluice.ts';
import { nginxTlsConf, sluiceTlsConfig, waitReady } from './lib/tls-proxies.ts';

const HELP = `npm run bench:h2 -- [flags]     (node bench/h2.ts [flags])

  --duration S       measured seconds per round and proxy (default 10; after 2 s of warm-up)
  --rounds N         rounds, alternating nginx and sluice (default 2)
  --connections N    h2load connections (default 50)
  --streams N        concurrent streams per connection (default 10)
  --rps N            paced: N requests/s per connection (h2load --rps) instead of a closed loop;
                     compare CPU per request (µs) rather than req/s
  --max-connections N   a DestinationRule on sluice's upstream with connectionPool.tcp.maxConnections N
                     (the sluice leg only; base keeps the plain config)
  --wait-calm S      first wait up to S s for a second in which no core is over 10 % busy
  --node-flag F      a flag for the sluice leg's node (repeatable), e.g. --node-flag=--max-semi-space-size=32
  --base PATH        also measure another checkout's sluice (PATH/src/main.ts) as leg \`base\`, same config
  --cpu-prof DIR     run sluice under node --cpu-prof, profile written to DIR when it stops
  --keep             keep the temp dir (configs, logs, h2load logs) and print its path
  --json             the results as JSON on stdout
  --help
`;

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    streams: { type: 'string', default: '10' },
    'max-connections': { type: 'string' },
    rps: { type: 'string' },
    'wait-calm': { type: 'string', default: '0' },
    'cpu-prof': { type: 'string' },
    'node-flag': { type: 'string', multiple: true },
    base: { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const DURATION_S = Number(values.duration);
const ROUNDS = Number(values.rounds);
const CONNECTIONS = Number(values.connections);
const STREAMS = Number(values.streams);
const PROXY_CPU = cpus().length > 1 ? 0 : null;
const LOAD_CPU = cpus().length > 1 ? 1 : null;
const MiB = 1024 * 1024;
const progress = (line: string): void => void process.stderr.write(`bench:h2: ${line}\n`);

/** nginx, sluice, or `base` (another checkout's sluice, --base). */
type Who = string;

interface Round {
  readonly who: Who;
  readonly requestsPerSec: number;
  /** CPU the proxy tree used, in cores. */
  readonly proxyCores: number;
  readonly perCore: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly failed: number;
  readonly upstreamPeak: number;
  readonly upstreamDistinct: number;
  readonly rssPeakMiB: number;
  /** Share of each core other processes took during the round. */
  readonly other: Readonly<Record<string, number>>;
}

/** Socket inodes of established IPv4 connections to 127.0.0.1:port, with their local port. */
function connectionsTo(port: number): Map<string, number> {
  const out = new Map<string, number>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local rem st ... inode (field 9)
    if (f.length < 10 || f[3] !== '01' || !f[2]!.endsWith(':' + hexPort)) continue;
    out.set(f[9]!, parseInt(f[1]!.split(':')[1]!, 16));
  }
  return out;
}

/** Local ports of the upstream connections `rootPid`'s process tree holds now. */
function upstreamPortsOf(rootPid: number, upstreamPort: number): number[] {
  const conns = connectionsTo(upstreamPort);
  const ports: number[] = [];
  for (const pid of processTree(rootPid)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      const local = inode === undefined ? undefined : conns.get(inode);
      if (local !== undefined) ports.push(local);
    }
  }
  return ports;
}

/** Samples the proxy's upstream connections and memory until stopped. */
function sampler(
  rootPid: number,
  upstreamPort: number,
): () => { peak: number; distinct: number; rss: number } {
  let peak = 0;
  let rss = 0;
  const seen = new Set<number>();
  const sample = (): void => {
    const ports = upstreamPortsOf(rootPid, upstreamPort);
    peak = Math.max(peak, ports.length);
    for (const p of ports) seen.add(p);
    rss = Math.max(rss, treeRss(rootPid).totalBytes);
  };
  const timer = setInterval(sample, 100);
  return () => {
    clearInterval(timer);
    sample();
    return { peak, distinct: seen.size, rss };
  };
}

async function h2load(
  name: string,
  url: string,
  dir: string,
  durationS: number,
  logFile: string | null,
): Promise<{ rps: number; failed: number; out: string }> {
  const r = await runPinned({
    name,
    cpu: LOAD_CPU,
    command: 'h2load',
    args: [
      '-D',
      String(durationS),
      '-c',
      String(CONNECTIONS),
      '-m',
      String(STREAMS),
      '-t',
      '1',
      ...(values.rps === undefined ? [] : ['--rps', values.rps]),
      ...(logFile === null ? [] : ['--log-file', logFile]),
      url,
    ],
    logFile: join(dir, `${name}.stderr`),
    timeoutMs: (durationS + 60) * 1000,
  });
  writeFileSync(join(dir, `${name}.out`), r.stdout);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout)?.[1] ?? NaN);
  const failed = Number(/(\d+) failed/.exec(r.stdout)?.[1] ?? NaN);
  return { rps, failed, out: r.stdout };
}

/** p50/p99/max in ms from h2load's per-request log (third column: µs to the end of the response). */
function latencyOf(logFile: string): Round['latencyMs'] {
  const lines = readFileSync(logFile, 'utf8').split('\n');
  const us = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const v = Number(line.split('\t')[2]);
    if (Number.isFinite(v) && line.length > 0) us[n++] = v;
  }
  const p = percentiles(us.subarray(0, n));
  return { p50: p.p50 / 1000, p99: p.p99 / 1000, max: p.max / 1000 };
}

async function measure(
  who: Who,
  proc: Proc,
  url: string,
  dir: string,
  round: number,
  upstream: Proc,
  upstreamPort: number,
): Promise<Round> {
  const name = `h2load-${who}-${round}`;
  const logFile = join(dir, `${name}.log`);
  const cpuBefore = readCpuTimes();
  const proxyBefore = treeCpuSeconds(proc.pid);
  const upBefore = treeCpuSeconds(upstream.pid);
  const loadBefore = reapedChildrenCpuSeconds();
  const selfBefore = process.cpuUsage();
  const t0 = performance.now();
  const stopSampling = sampler(proc.pid, upstreamPort);
  const r = await h2load(name, url, dir, DURATION_S, logFile);
  const conns = stopSampling();
  const wallS = (performance.now() - t0) / 1000;
  const shares = sharesBetween(cpuBefore, readCpuTimes());
  const proxyCores = (treeCpuSeconds(proc.pid) - proxyBefore) / wallS;
  const self = process.cpuUsage(selfBefore);
  const loadCores =
    (treeCpuSeconds(upstream.pid) -
      upBefore +
      reapedChildrenCpuSeconds() -
      loadBefore +
      (self.user + self.system) / 1e6) /
    wallS;
  const other: Record<string, number> = {};
  for (const [cpu, s] of shares) {
    const ours = cpu === PROXY_CPU ? proxyCores : cpu === LOAD_CPU ? loadCores : 0;
    other[String(cpu)] = Math.max(0, s.tasks - ours);
  }
  return {
    who,
    requestsPerSec: r.rps,
    proxyCores,
    perCore: r.rps / proxyCores,
    latencyMs: latencyOf(logFile),
    failed: r.failed,
    upstreamPeak: conns.peak,
    upstreamDistinct: conns.distinct,
    rssPeakMiB: conns.rss / MiB,
    other,
  };
}

function best(rounds: readonly Round[], who: Who): Round {
  return rounds.filter((r) => r.who === who).reduce((a, b) => (b.requestsPerSec > a.requestsPerSec ? b : a));
}

function formatRound(r: Round): string {
  const other = Object.entries(r.other)
    .map(([cpu, f]) => `other${cpu} ${(f * 100).toFixed(0)}%`)
    .join(', ');
  return `${r.who.padEnd(7)} ${r.requestsPerSec.toFixed(0).padStart(8)} req/s  ${r.proxyCores.toFixed(2)} cores  ${r.perCore.toFixed(0).padStart(8)} req/s/core (${(1e6 / r.perCore).toFixed(1)} µs CPU/req)  p50 ${r.latencyMs.p50.toFixed(1)} p99 ${r.latencyMs.p99.toFixed(1)} max ${r.latencyMs.max.toFixed(1)} ms  upstream conns peak ${r.upstreamPeak} (${r.upstreamDistinct} used)  RSS peak ${r.rssPeakMiB.toFixed(0)} MiB  failed ${r.failed}  (${other})`;
}

function poolDr(maxConnections: string | undefined): string {
  if (maxConnections === undefined) return '';
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: up, namespace: default }
spec:
  host: up.bench
  trafficPolicy: { connectionPool: { tcp: { maxConnections: ${Number(maxConnections)} } } }
`;
}

async function main(): Promise<void> {
  const nginx = findNginx();
  if (nginx === null) throw new Error('nginx not found: apt-get install nginx-light');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-h2-'));
  if (!values.keep) atExit(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCa({ commonName: 'bench CA' });
  const pair = makeServerCert(ca, ['bench.example.com']);
  writeFileSync(join(dir, 'tls.crt'), pair.certPem + ca.certPem);
  writeFileSync(join(dir, 'tls.key'), pair.keyPem);
  const [upPort, nPort] = await freePorts(2);
  const upstream = startUpstream({ nginx, dir, port: upPort!, cpu: LOAD_CPU });
  const ndir = join(dir, 'nginx');
  const ng = startNginx({
    nginx: nginx.path,
    name: 'nginx',
    dir: ndir,
    conf: nginxTlsConf(ndir, nPort!, upPort!, join(dir, 'tls.crt'), join(dir, 'tls.key')),
    cpu: PROXY_CPU,
  });
  const cdir = join(dir, 'sluice-config');
  mkdirSync(cdir, { recursive: true });
  const prof = values['cpu-prof'];
  const urls: Record<Who, string> = { nginx: `https://127.0.0.1:${nPort}/` };
  const procs: Record<Who, Proc> = { nginx: ng };
  const startLeg = async (who: Who, main: string): Promise<void> => {
    const [port, status, metrics, admin] = await freePorts(4);
    const legDir = join(cdir, who);
    mkdirSync(legDir, { recursive: true });
    writeFileSync(
      join(legDir, 'bench.yaml'),
      sluiceTlsConfig(port!, upPort!, pair, ca, who === 'sluice' ? poolDr(values['max-connections']) : ''),
    );
    procs[who] = spawnPinned({
      name: who,
      cpu: PROXY_CPU,
      command: process.execPath,
      args: [
        ...(who === 'sluice' ? (values['node-flag'] ?? []) : []),
        ...(prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(prof, who)]),
        ...sluiceArgs(legDir, { status: status!, metrics: metrics!, admin: admin! }, 1, main),
      ],
      logFile: join(dir, `${who}.log`),
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'production' },
    });
    urls[who] = `https://127.0.0.1:${port}/`;
    await waitReady(`http://127.0.0.1:${status}/healthz/ready`);
    await waitReady(urls[who]);
  };
  await waitReady(urls.nginx);
  await startLeg('sluice', SLUICE_MAIN);
  if (values.base !== undefined) await startLeg('base', resolve(values.base, 'src', 'main.ts'));
  const legs = Object.keys(urls);
  const busy = await busyNow(Number(values['wait-calm']), progress);
  for (const who of legs) {
    progress(`warming ${who}`);
    await h2load(`warmup-${who}`, urls[who], dir, 2, null);
  }
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++)
    for (const who of legs) {
      progress(`round ${i + 1}: ${who}`);
      const r = await measure(who, procs[who]!, urls[who]!, dir, i, upstream, upPort!);
      progress(formatRound(r));
      rounds.push(r);
    }
  for (const who of legs) if (who !== 'nginx') await stop(procs[who]!, 10_000);
  await stopAll();
  const n = best(rounds, 'nginx');
  const s = best(rounds, 'sluice');
  const b = legs.includes('base') ? best(rounds, 'base') : null;
  const summary = {
    node: process.version,
    nginx: nginx.version,
    cores: cpus().length,
    busyBeforeStart: busy,
    connections: CONNECTIONS,
    streams: STREAMS,
    durationS: DURATION_S,
    rounds,
    ratio: { raw: s.requestsPerSec / n.requestsPerSec, perCore: s.perCore / n.perCore },
    base: b === null ? null : { raw: b.requestsPerSec / n.requestsPerSec, perCore: b.perCore / n.perCore },
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  } else {
    const lines = [
      `node ${process.version}, ${nginx.version}, ${cpus().length} cores, proxy on cpu ${PROXY_CPU}, h2load + upstream on cpu ${LOAD_CPU}`,
      `h2load -c ${CONNECTIONS} -m ${STREAMS}, TLS, ${DURATION_S} s per round; busy before start: ${Object.entries(
        busy,
      )
        .map(([c, f]) => `cpu${c} ${(f * 100).toFixed(0)}%`)
        .join(', ')}`,
      ...rounds.map((r, i) => `round ${Math.floor(i / legs.length) + 1} ${formatRound(r)}`),
      `best rounds: sluice/nginx ${summary.ratio.raw.toFixed(2)}x raw, ${summary.ratio.perCore.toFixed(2)}x per core (target >= 0.50x per core)`,
      ...(summary.base === null
        ? []
        : [
            `best rounds: base/nginx ${summary.base.raw.toFixed(2)}x raw, ${summary.base.perCore.toFixed(2)}x per core`,
          ]),
    ];
    if (values.keep) lines.push(`logs: ${dir}`);
    if (prof !== undefined) lines.push(`cpu profile: ${resolve(prof)}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
}

main().catch(async (err: unknown) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});

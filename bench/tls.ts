/**
 * HTTPS benchmark: sluice vs nginx in one run, both as TLS-terminating reverse proxies in front of
 * the same nginx upstream (100-byte body), each pinned to the proxy core (cpu 0), load generators
 * and upstream on cpu 1. For RSA-2048 and ECDSA P-256:
 *   - keep-alive HTTPS requests/s (wrk, HTTP/1.1)
 *   - full handshakes/s, resumption off (parallel `openssl s_time -new`: never resumes; nginx
 *     also has tickets and its cache off)
 *   - HTTP/2 requests/s (h2load, 10 streams per connection)
 * Usage: npm exec -- node bench/tls.ts [--duration 8] [--connections 50]
 * Needs nginx, wrk, h2load (apt-get install nginx wrk nghttp2-client) and openssl.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeServerCert, type PemPair } from '../src/tls/self-signed.ts';
import { freePorts } from './lib/net.ts';
import { findNginx, startNginx, upstreamConf } from './lib/nginx.ts';
import { runPinned, stop, stopAll, treeCpuSeconds } from './lib/procs.ts';
import { startSluice } from './lib/sluice.ts';
import { nginxTlsConf, sluiceTlsConfig, waitReady } from './lib/tls-proxies.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const DURATION_S = flag('duration', 8);
const CONNECTIONS = flag('connections', 50);
const PROXY_CPU = cpus().length > 1 ? 0 : null;
const LOAD_CPU = cpus().length > 1 ? 1 : null;

function ecdsaPair(ca: PemPair, dir: string): PemPair {
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'ca.key'), ca.keyPem);
  const run = (a: string[]): void => void execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ec.pem']);
  run(['pkcs8', '-topk8', '-nocrypt', '-in', 'ec.pem', '-out', 'ec.key']);
  run(['req', '-new', '-key', 'ec.key', '-subj', '/CN=bench.example.com', '-out', 'ec.csr']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:bench.example.com\n');
  run([
    'x509',
    '-req',
    '-in',
    'ec.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '7',
    '-extfile',
    'ext.cnf',
    '-out',
    'ec.crt',
  ]);
  return {
    certPem: execFileSync('cat', [join(dir, 'ec.crt')]).toString(),
    keyPem: execFileSync('cat', [join(dir, 'ec.key')]).toString(),
  };
}

/**
 * Full handshakes per second: `openssl s_time -new` never resumes a session (wrk does: SSL_clear
 * keeps the session, so with tickets on it would measure resumptions). Several in parallel on
 * the load core so the proxy core, not one client's round trips, is the limit.
 */
async function fullHandshakes(name: string, port: number, dir: string, errors: string[]): Promise<number> {
  const parallel = 6;
  const runs = await Promise.all(
    Array.from({ length: parallel }, (_, i) =>
      runPinned({
        name: `s_time-${name}-${i}`,
        cpu: LOAD_CPU,
        command: 'openssl',
        args: ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(DURATION_S)],
        logFile: join(dir, `s_time-${name}-${i}.log`),
        timeoutMs: (DURATION_S + 30) * 1000,
      }),
    ),
  );
  let total = 0;
  for (const r of runs) {
    const m = /(\d+) connections in (\d+) real seconds/.exec(r.stdout);
    if (m === null) {
      errors.push(`s_time: ${r.stdout.slice(-200)}`);
      continue;
    }
    total += Number(m[1]) / Number(m[2]);
  }
  return total;
}

interface Figures {
  keepAlive: number;
  handshakes: number;
  /** Full handshakes per CPU-second the proxy used: the per-core figure, whatever limits the client. */
  handshakesPerCpuS: number;
  h2: number;
  errors: string[];
}

function parseRps(text: string): number {
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
}

async function measure(name: string, port: number, dir: string, pid: number): Promise<Figures> {
  const url = `https://127.0.0.1:${port}/`;
  const errors: string[] = [];
  const wrk = async (extra: string[], label: string): Promise<number> => {
    const r = await runPinned({
      name: `wrk-${name}-${label}`,
      cpu: LOAD_CPU,
      command: 'wrk',
      args: ['-t1', `-c${CONNECTIONS}`, `-d${DURATION_S}s`, '-H', 'Host: bench.example.com', ...extra, url],
      logFile: join(dir, `wrk-${name}-${label}.log`),
      timeoutMs: (DURATION_S + 30) * 1000,
    });
    const out = r.stdout;
    writeFileSync(join(dir, `wrk-${name}-${label}.out`), out);
    const errs = /Socket errors: .*/.exec(out)?.[0];
    if (errs) errors.push(`${label}: ${errs}`);
    const non = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1];
    if (non) errors.push(`${label}: ${non} non-2xx`);
    return parseRps(out);
  };
  // warm-up (JIT, pools)
  await wrk(['-d', '2s'], 'warmup');
  const keepAlive = await wrk([], 'keepalive');
  const cpuBefore = treeCpuSeconds(pid);
  const handshakes = await fullHandshakes(name, port, dir, errors);
  const cpuUsed = treeCpuSeconds(pid) - cpuBefore;
  const handshakesPerCpuS = cpuUsed > 0 ? (handshakes * DURATION_S) / cpuUsed : NaN;
  const h2run = spawnSync(
    'taskset',
    [
      '-c',
      String(LOAD_CPU ?? 0),
      'h2load',
      '-D',
      String(DURATION_S),
      '-c',
      String(CONNECTIONS),
      '-m',
      '10',
      '-t',
      '1',
      url,
    ],
    { encoding: 'utf8' },
  );
  writeFileSync(join(dir, `h2load-${name}.log`), h2run.stdout + h2run.stderr);
  const h2 = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(h2run.stdout)?.[1] ?? NaN);
  const failed = /(\d+) failed/.exec(h2run.stdout)?.[1];
  if (failed && failed !== '0') errors.push(`h2: ${failed} failed`);
  return { keepAlive, handshakes, handshakesPerCpuS, h2, errors };
}

async function main(): Promise<void> {
  const nginx = findNginx();
  if (nginx === null) throw new Error('nginx not found: apt-get install nginx');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-tls-'));
  const ca = makeCa({ commonName: 'bench CA' });
  const keys: Record<string, PemPair> = {
    'RSA-2048': makeServerCert(ca, ['bench.example.com']),
    'ECDSA-P256': ecdsaPair(ca, dir),
  };
  const [upPort, ...ports] = await freePorts(8);
  const upstream = startNginx({
    nginx: nginx.path,
    name: 'upstream',
    dir: join(dir, 'upstream'),
    conf: upstreamConf(join(dir, 'upstream'), upPort!),
    cpu: LOAD_CPU,
  });
  void upstream;
  const results: { key: string; who: string; f: Figures }[] = [];
  let p = 0;
  for (const [key, pair] of Object.entries(keys)) {
    const kdir = join(dir, key);
    mkdirSync(kdir, { recursive: true });
    writeFileSync(join(kdir, 'tls.crt'), pair.certPem + ca.certPem);
    writeFileSync(join(kdir, 'tls.key'), pair.keyPem);
    // nginx
    const nPort = ports[p++]!;
    const ndir = join(kdir, 'nginx');
    const ng = startNginx({
      nginx: nginx.path,
      name: `nginx-${key}`,
      dir: ndir,
      conf: nginxTlsConf(ndir, nPort, upPort!, join(kdir, 'tls.crt'), join(kdir, 'tls.key')),
      cpu: PROXY_CPU,
    });
    await waitReady(`https://127.0.0.1:${nPort}/`);
    results.push({ key, who: 'nginx', f: await measure(`nginx-${key}`, nPort, kdir, ng.pid) });
    await stop(ng);
    // sluice
    const sPort = ports[p++]!;
    const cdir = join(kdir, 'sluice-config');
    mkdirSync(cdir, { recursive: true });
    writeFileSync(join(cdir, 'bench.yaml'), sluiceTlsConfig(sPort, upPort!, pair, ca));
    const [status, metrics, admin] = await freePorts(3);
    const sl = startSluice({
      name: `sluice-${key}`,
      configDir: cdir,
      ports: { status: status!, metrics: metrics!, admin: admin! },
      cpu: PROXY_CPU,
      logFile: join(kdir, 'sluice.log'),
    });
    await waitReady(`http://127.0.0.1:${status}/healthz/ready`);
    results.push({ key, who: 'sluice', f: await measure(`sluice-${key}`, sPort, kdir, sl.pid) });
    await stop(sl);
  }
  await stopAll();
  const lines: string[] = [];
  lines.push(
    `node ${process.version}, ${nginx.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), proxy pinned to cpu ${PROXY_CPU}, load+upstream cpu ${LOAD_CPU}, ${CONNECTIONS} connections, ${DURATION_S}s per figure`,
  );
  lines.push(
    'key         proxy    keep-alive req/s   handshakes/s   handshakes/proxy-cpu-s   h2 req/s   errors',
  );
  for (const r of results)
    lines.push(
      `${r.key.padEnd(11)} ${r.who.padEnd(8)} ${r.f.keepAlive.toFixed(0).padStart(17)} ${r.f.handshakes.toFixed(0).padStart(14)} ${r.f.handshakesPerCpuS.toFixed(0).padStart(24)} ${r.f.h2.toFixed(0).padStart(10)}   ${r.f.errors.join('; ') || '-'}`,
    );
  for (const key of Object.keys(keys)) {
    const n = results.find((r) => r.key === key && r.who === 'nginx')!.f;
    const s = results.find((r) => r.key === key && r.who === 'sluice')!.f;
    lines.push(
      `${key}: sluice/nginx keep-alive ${(s.keepAlive / n.keepAlive).toFixed(2)}x, handshakes ${(s.handshakes / n.handshakes).toFixed(2)}x (per proxy CPU-second ${(s.handshakesPerCpuS / n.handshakesPerCpuS).toFixed(2)}x), h2 ${(s.h2 / n.h2).toFixed(2)}x`,
    );
  }
  lines.push(`logs: ${dir}`);
  console.log(lines.join('\n'));
}

main().catch(async (err: unknown) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});

/**
 * How much sluice's config watch costs while something unrelated writes beside the config: a
 * benchmark's log next to the config folder, here a writer appending `--rate` lines a second to
 * `bench.log` beside the config folder (and to a non-config file inside it); the config is the
 * e2e benchmark's 100-rule one. `sluice serve --workers 1` runs with its working directory holding
 * both, so `--certs-dir` is the default `./certs`. The
 * report gives the watch wake-ups a second (calls into fs.watch listeners, counted by
 * bench/lib/count-watch.ts) and the CPU sluice used, idle and while the writer runs.
 *
 *   node bench/watch-wakeups.ts [--seconds 10] [--rate 8000] [--main path/to/src/main.ts]
 *
 * `--main` runs another checkout's sluice (to compare with a previous version). Only 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateConfig, writeConfig } from './configs/generate.ts';
import { freePorts, until200 } from './lib/net.ts';
import { atExit, spawnPinned, stop, treeCpuSeconds } from './lib/procs.ts';
import { SLUICE_MAIN, tail } from './lib/sluice.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '8000' },
    main: { type: 'string', default: SLUICE_MAIN },
  },
});
const main = resolve(values.main);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const COUNTER = fileURLToPath(new URL('./lib/count-watch.ts', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'sluice-watch-bench-'));
atExit(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'certs'));
const [gatewayPort, upstreamPort, status, metrics, admin] = await freePorts(5);
// The e2e benchmark's 100-rule config (no upstream needed: nothing is requested through it).
const configDir = writeConfig(
  root,
  generateConfig('many-rules', { gatewayPort, upstreamPort, decoyPort: 9 }),
);
const configName = basename(configDir);
// Outside the watched tree, so counting does not wake what it counts.
const countDir = mkdtempSync(join(tmpdir(), 'sluice-watch-count-'));
atExit(() => rmSync(countDir, { recursive: true, force: true }));
const countFile = join(countDir, 'count');
const sluice = spawnPinned({
  name: 'sluice',
  cpu: null,
  command: process.execPath,
  args: [
    '--import',
    COUNTER,
    main,
    'serve',
    '--config',
    configName,
    '--workers',
    '1',
    '--bind',
    '127.0.0.1',
    '--status-port',
    String(status),
    '--metrics-port',
    String(metrics),
    '--admin-port',
    String(admin),
    '--log-level',
    'warn',
    '--drain-delay',
    '0',
  ],
  logFile: join(root, 'sluice.log'),
  cwd: root,
  env: { ...process.env, SLUICE_BENCH_WATCH_COUNT: countFile },
});
await until200(`http://127.0.0.1:${status}/healthz/ready`, {}, { deadlineMs: 20_000, bodyBytes: 6 }).catch(
  (err: unknown) => {
    throw new Error(`${String(err)}\n${tail(sluice.logFile)}`);
  },
);

const count = (): number => Number(readFileSync(countFile, 'utf8'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function phase(): Promise<{ wakesPerSec: number; cpuPercent: number }> {
  await sleep(300); // a fresh count written
  const c0 = count();
  const cpu0 = treeCpuSeconds(sluice.pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  await sleep(300);
  const elapsed = (performance.now() - t0) / 1000;
  return {
    wakesPerSec: (count() - c0) / elapsed,
    cpuPercent: ((treeCpuSeconds(sluice.pid) - cpu0) / elapsed) * 100,
  };
}

/** One write(2) per line, as a logger does: one inotify event each. */
function startWriter(files: readonly string[]): ReturnType<typeof spawn> {
  const writer = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs');
       const fds = ${JSON.stringify(files)}.map((f) => fs.openSync(f, 'a'));
       const perTick = Math.max(1, Math.round(${rate} / 1000 / fds.length));
       let n = 0;
       setInterval(() => { for (let i = 0; i < perTick; i++) for (const fd of fds) fs.writeSync(fd, 'line ' + n++ + '\\n'); }, 1);`,
    ],
    { stdio: 'ignore' },
  );
  atExit(() => writer.kill('SIGKILL'));
  return writer;
}

const linesIn = (file: string): number => readFileSync(file, 'utf8').split('\n').length - 1;

const idle = await phase();
const beside = join(root, 'bench.log');
let started = performance.now();
let writer = startWriter([beside]);
const besideOnly = await phase();
writer.kill('SIGKILL');
const besideRate = linesIn(beside) / ((performance.now() - started) / 1000);
rmSync(beside);
const inside = join(configDir, 'notes.txt');
started = performance.now();
writer = startWriter([beside, inside]);
const both = await phase();
writer.kill('SIGKILL');
const bothRate = (linesIn(beside) + linesIn(inside)) / ((performance.now() - started) / 1000);
await stop(sluice);

const fmt = (p: { wakesPerSec: number; cpuPercent: number }): string =>
  `${p.wakesPerSec.toFixed(1).padStart(8)} wake-ups/s   ${p.cpuPercent.toFixed(1).padStart(5)} % of a core`;
process.stdout.write(
  [
    `sluice: ${main} (node ${process.version}), ${seconds} s per phase`,
    `idle:                          ${fmt(idle)}`,
    `a log beside the config:       ${fmt(besideOnly)}   (${(besideRate / 1000).toFixed(1)}k lines/s)`,
    `the same plus notes.txt in it: ${fmt(both)}   (${(bothRate / 1000).toFixed(1)}k lines/s, half in each)`,
    '',
  ].join('\n'),
);
process.exit(0);

/**
 * End-to-end benchmark (not a test): the same upstream reached directly, through sluice (one
 * worker, a 1-rule and a 100-rule config) and through nginx as a reverse proxy, all in one run,
 * with keep-alive throughput (wrk), latency at a paced load (bench/lib/paced-load.ts), ratios,
 * sluice's RSS and the targets from the issue. The proxy runs alone on CPU 0; the upstream and
 * the load generators share CPU 1. Only 127.0.0.1 is used. See bench/README.md.
 *
 *   npm run bench [-- --quick] [-- --json] [-- --help]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  generateConfig,
  writeConfig,
  type GeneratedConfig,
  type GenerateOptions,
} from './configs/generate.ts';
import {
  baseRunInfo,
  directLeg,
  exitedReason,
  findTools,
  measureLegs,
  placeProcesses,
  progress,
  RUN_OPTIONS,
  runBenchmark,
  runHelp,
  runSettings,
  scenariosInOrder,
  startSluiceLeg,
  startUpstream,
  waitForCalm,
  type Leg,
  type RunSettings,
} from './lib/legs.ts';
import { freePorts, probe, until200 } from './lib/net.ts';
import { BODY_100, proxyConf, startNginx } from './lib/nginx.ts';
import { atExit, stop } from './lib/procs.ts';
import { buildReport, formatText, type ScenarioId, type ScenarioResult } from './lib/report.ts';
import { sluiceAvailable } from './lib/sluice.ts';

const DEFAULTS = { rounds: 2, retries: 4 };

const HELP = `npm run bench -- [flags]     (node bench/e2e.ts [flags])

  --only LIST             scenarios to run: direct,sluice-1,sluice-100,nginx (default all)
${runHelp(DEFAULTS)}`;

interface Settings extends RunSettings {
  readonly only: ReadonlySet<ScenarioId>;
}

const ALL: readonly ScenarioId[] = ['direct', 'sluice-1', 'sluice-100', 'nginx'];

function readSettings(): Settings | null {
  const { values } = parseArgs({ options: { ...RUN_OPTIONS, only: { type: 'string' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return null;
  }
  const only = new Set<ScenarioId>();
  for (const id of (values.only ?? ALL.join(',')).split(',').map((s) => s.trim())) {
    if (!ALL.includes(id as ScenarioId))
      throw new Error(`--only: unknown scenario ${id} (${ALL.join(', ')})`);
    only.add(id as ScenarioId);
  }
  return { ...runSettings(values, DEFAULTS), only };
}

async function main(): Promise<void> {
  const s = readSettings();
  if (!s) return;
  const started = new Date();
  const placement = placeProcesses(s);
  const { proxyCpu, loadCpu } = placement;
  const tools = findTools(s);
  const { nginx } = tools;

  const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  if (!s.keep) atExit(() => rmSync(tmp, { recursive: true, force: true }));
  const [upstreamPort, nginxPort, gw1, gw100, decoyPort, st1, me1, ad1, st100, me100, ad100] =
    (await freePorts(11)) as number[];
  const genOpts = (gatewayPort: number): GenerateOptions => ({ gatewayPort, upstreamPort, decoyPort });
  const configs: Record<'sluice-1' | 'sluice-100', GeneratedConfig> = {
    'sluice-1': generateConfig('one-rule', genOpts(gw1)),
    'sluice-100': generateConfig('many-rules', genOpts(gw100)),
  };
  const request = configs['sluice-1'].request;
  const headers = { host: request.host, ...request.headers };

  const idleBusy = await waitForCalm(s.waitCalmS);

  progress(`temp dir ${tmp}; upstream ${tools.upstreamKind} on 127.0.0.1:${upstreamPort}`);
  const upstream = await startUpstream(tools, tmp, upstreamPort, loadCpu, { path: request.path, headers });

  // Start every proxy first (each idle until its turn), so rounds can interleave the legs.
  const legs: Leg[] = [];
  const notRun: ScenarioResult[] = [];
  if (s.only.has('direct')) legs.push(directLeg(`http://127.0.0.1:${upstreamPort}${request.path}`, headers));

  for (const id of ['sluice-1', 'sluice-100'] as const) {
    if (!s.only.has(id)) continue;
    const label = id === 'sluice-1' ? 'sluice (1 rule)' : 'sluice (100 rules)';
    const missing = sluiceAvailable();
    if (missing) {
      notRun.push({ id, label, status: 'skipped', reason: missing });
      continue;
    }
    const leg = await startSluiceLeg({
      id,
      label,
      configDir: writeConfig(join(tmp, 'configs'), configs[id]),
      ports:
        id === 'sluice-1'
          ? { status: st1, metrics: me1, admin: ad1 }
          : { status: st100, metrics: me100, admin: ad100 },
      gatewayPort: id === 'sluice-1' ? gw1 : gw100,
      path: request.path,
      headers,
      cpu: proxyCpu,
      logDir: tmp,
      ...(id === 'sluice-100'
        ? {
            // A request for an earlier rule must reach that rule (its decoy port: nothing listens).
            check: async (url: string) => {
              const p = await probe(url, { ...headers, 'x-tenant': 'tenant-0' });
              return [
                `routing check: x-tenant: tenant-0 → ${p.status} (${p.status >= 500 ? 'the earlier decoy rule matched, as expected' : 'UNEXPECTED: expected the decoy rule and a 5xx'})`,
              ];
            },
          }
        : {}),
    });
    if ('status' in leg) notRun.push(leg);
    else legs.push(leg);
  }

  if (s.only.has('nginx')) {
    if (!nginx) {
      notRun.push({ id: 'nginx', label: 'nginx proxy', status: 'skipped', reason: 'nginx not installed' });
    } else {
      const dir = join(tmp, 'nginx-proxy');
      progress(`nginx proxy: starting on 127.0.0.1:${nginxPort}`);
      const proc = startNginx({
        nginx: nginx.path,
        name: 'nginx-proxy',
        dir,
        conf: proxyConf(dir, nginxPort, upstreamPort),
        cpu: proxyCpu,
      });
      const url = `http://127.0.0.1:${nginxPort}${request.path}`;
      try {
        await until200(url, headers, {
          deadlineMs: 10_000,
          bodyBytes: BODY_100.length,
          alive: exitedReason(proc),
        });
        legs.push({
          id: 'nginx',
          label: 'nginx proxy',
          url,
          headers,
          proxy: proc,
          checks: [],
          rounds: [],
          disturbed: [],
        });
      } catch (err) {
        notRun.push({
          id: 'nginx',
          label: 'nginx proxy',
          status: 'failed',
          reason: `${err instanceof Error ? err.message : String(err)} (${join(dir, 'error.log')})`,
        });
        await stop(proc);
      }
    }
  }

  const failed = await measureLegs(s, legs, loadCpu, [upstream.pid], tmp);
  const scenarios = scenariosInOrder(ALL, legs, notRun, failed);
  await Promise.all(legs.map((l) => (l.proxy ? stop(l.proxy) : Promise.resolve())));
  await stop(upstream);

  const report = buildReport(
    {
      ...baseRunInfo({
        s,
        placement,
        tools,
        started,
        idleBusy,
        tempDir: tmp,
        pinned: ['proxy under test (sluice / nginx)', 'upstream, wrk and the paced client'],
        request,
        requestNote: '(same for every scenario)',
      }),
      nginx: nginx
        ? `${nginx.version} as a reverse proxy: worker_processes 1 (master + 1 worker on CPU 0), upstream keepalive 128, proxy_http_version 1.1, access_log off`
        : null,
      configs: { '1 rule': configs['sluice-1'].size, '100 rules': configs['sluice-100'].size },
    },
    scenarios,
  );
  if (s.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatText(report));
  if (s.keep) progress(`kept ${tmp}`);
}

runBenchmark(main);

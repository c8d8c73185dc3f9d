/**
 * Ratios, targets and the printed report (text or JSON) of one e2e run, and the parts of it other
 * leg-based benchmarks print too (header, legs table, targets).
 */
import type { PacedResult } from './paced-load.ts';
import type { WrkResult } from './wrk.ts';
import type { CpuShare } from './cpu.ts';
import type { GeneratedConfig } from '../configs/generate.ts';

export type ScenarioId = 'direct' | 'sluice-1' | 'sluice-100' | 'nginx';

/** Where the CPU went during one phase. */
export interface PhaseCpu {
  /** Per CPU during the phase: busy, process, interrupt and steal shares (0..1). */
  readonly cpu: Readonly<Record<string, CpuShare>>;
  /** CPU used by the proxy's process tree, in cores (0..1 when pinned); null for direct. */
  readonly proxyCores: number | null;
  /** CPU used by the benchmark's own load side (upstream, wrk or paced client, this process), in cores. */
  readonly benchLoadCores: number;
}

export interface Throughput extends WrkResult, PhaseCpu {}

/** Share of a core other processes may take during a phase before its figures count as disturbed. */
export const DISTURBED = 0.1;

export interface ScenarioResult {
  readonly id: string;
  readonly label: string;
  readonly status: 'ok' | 'skipped' | 'failed';
  readonly reason?: string;
  readonly url?: string;
  readonly startupMs?: number;
  /** What was checked before measuring (the request took the intended path). */
  readonly checks?: readonly string[];
  readonly throughput?: Throughput;
  readonly latency?: PacedResult;
  readonly latencyCpu?: PhaseCpu;
  /** Why extra rounds were measured (other processes on our cores). */
  readonly remeasured?: readonly string[];
  readonly rss?: {
    readonly totalBytes: number;
    readonly perPid: readonly { pid: number; bytes: number }[];
    /** Once the first request was answered, before any load. */
    readonly atStartBytes?: number;
  };
  readonly rounds?: readonly {
    readonly requestsPerSec: number;
    readonly p50Us: number;
    readonly p99Us: number;
  }[];
}

/** What every leg-based benchmark says about its run. */
export interface BaseRunInfo {
  readonly startedAt: string;
  readonly elapsedS: number;
  readonly node: string;
  readonly cores: number;
  readonly cpuModel: string;
  readonly pinning: string;
  readonly upstream: string;
  readonly upstreamWhy: string;
  readonly wrk: string;
  readonly throughputSettings: string;
  readonly latencySettings: string;
  readonly request: string;
  readonly quick: boolean;
  readonly rounds: number;
  /** Busy fraction per CPU during 1 s before anything started: other work on the machine. */
  readonly idleCpuBusy: Readonly<Record<string, number>>;
  readonly tempDir: string;
}

export interface RunInfo extends BaseRunInfo {
  readonly nginx: string | null;
  readonly configs: Readonly<Record<string, GeneratedConfig['size']>>;
}

export interface Target {
  readonly name: string;
  readonly value: number | null;
  readonly shown: string;
  readonly target: string;
  /** INFO: a figure to report, with no target to meet. */
  readonly verdict: 'PASS' | 'MISS' | 'INFO' | 'n/a';
  readonly note?: string;
}

export interface Report {
  readonly info: RunInfo;
  readonly scenarios: readonly ScenarioResult[];
  readonly ratios: Readonly<Record<string, number | null>>;
  readonly targets: readonly Target[];
}

const MiB = 1024 * 1024;

export function ok(
  s: ScenarioResult | undefined,
): s is ScenarioResult & { throughput: Throughput; latency: PacedResult } {
  return !!s && s.status === 'ok' && !!s.throughput && !!s.latency;
}

/** Requests per second per fully used proxy core; raw figure when the core use is unknown. */
export function perCore(t: Throughput): number {
  if (t.proxyCores === null || t.proxyCores <= 0.05) return t.requestsPerSec;
  return t.requestsPerSec / Math.min(1, t.proxyCores);
}

export function div(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
    ? null
    : a / b;
}

export function buildReport(info: RunInfo, scenarios: readonly ScenarioResult[]): Report {
  const by = new Map(scenarios.map((s) => [s.id, s]));
  const direct = by.get('direct');
  const s1 = by.get('sluice-1');
  const s100 = by.get('sluice-100');
  const nginx = by.get('nginx');
  const r = (a?: ScenarioResult, b?: ScenarioResult): number | null =>
    ok(a) && ok(b) ? div(a.throughput.requestsPerSec, b.throughput.requestsPerSec) : null;

  const sluiceVsNginxPerCore =
    ok(s1) && ok(nginx) ? div(perCore(s1.throughput), perCore(nginx.throughput)) : null;
  const addedP50Ms =
    ok(s1) && ok(direct) ? (s1.latency.serviceUs.p50 - direct.latency.serviceUs.p50) / 1000 : null;
  const addedP99Ms =
    ok(s1) && ok(direct) ? (s1.latency.serviceUs.p99 - direct.latency.serviceUs.p99) / 1000 : null;
  const rssValues = [s1, s100].filter((s) => s?.rss).map((s) => s?.rss?.totalBytes as number);
  const rssMaxBytes = rssValues.length > 0 ? Math.max(...rssValues) : null;

  const ratios = {
    sluiceVsNginx: r(s1, nginx),
    sluiceVsNginxPerCore,
    sluiceVsDirect: r(s1, direct),
    nginxVsDirect: r(nginx, direct),
    rules100VsRules1: r(s100, s1),
    rules100VsRules1PerCore:
      ok(s100) && ok(s1) ? div(perCore(s100.throughput), perCore(s1.throughput)) : null,
    addedLatencyP50Ms: addedP50Ms,
    addedLatencyP99Ms: addedP99Ms,
    nginxAddedLatencyP50Ms:
      ok(nginx) && ok(direct) ? (nginx.latency.serviceUs.p50 - direct.latency.serviceUs.p50) / 1000 : null,
    nginxAddedLatencyP99Ms:
      ok(nginx) && ok(direct) ? (nginx.latency.serviceUs.p99 - direct.latency.serviceUs.p99) / 1000 : null,
    sluiceRssMiB: rssMaxBytes === null ? null : rssMaxBytes / MiB,
  };

  const verdict = (v: number | null, pass: (v: number) => boolean): Target['verdict'] =>
    v === null ? 'n/a' : pass(v) ? 'PASS' : 'MISS';
  const nginxCores = ok(nginx) ? nginx.throughput.proxyCores : null;
  const targets: Target[] = [
    {
      name: 'keep-alive req/s, sluice / nginx per core',
      value: sluiceVsNginxPerCore,
      shown: sluiceVsNginxPerCore === null ? 'n/a' : `${sluiceVsNginxPerCore.toFixed(3)}×`,
      target: '≥ 0.40×',
      verdict: verdict(sluiceVsNginxPerCore, (v) => v >= 0.4),
      note:
        ratios.sluiceVsNginx === null
          ? 'needs sluice and nginx'
          : `raw ${ratios.sluiceVsNginx.toFixed(2)}×; per core = req/s ÷ proxy CPU used${
              nginxCores !== null && nginxCores < 0.95
                ? ` (nginx used ${(nginxCores * 100).toFixed(0)}% of its core: ${
                    (ok(nginx) ? (backgroundOnProxyCore(nginx.throughput) ?? 0) : 0) > 0.1
                      ? 'other processes took CPU 0'
                      : 'the load core was the limit'
                  })`
                : ''
            }`,
    },
    {
      name: 'added latency p50 at paced load (sluice − direct)',
      value: addedP50Ms,
      shown: addedP50Ms === null ? 'n/a' : `${addedP50Ms >= 0 ? '+' : ''}${addedP50Ms.toFixed(3)} ms`,
      target: '≤ +0.3 ms',
      verdict: verdict(addedP50Ms, (v) => v <= 0.3),
    },
    {
      name: 'added latency p99 at paced load (sluice − direct)',
      value: addedP99Ms,
      shown: addedP99Ms === null ? 'n/a' : `${addedP99Ms >= 0 ? '+' : ''}${addedP99Ms.toFixed(3)} ms`,
      target: '≤ +1.0 ms',
      verdict: verdict(addedP99Ms, (v) => v <= 1.0),
    },
    {
      name: 'sluice RSS after the run (all its processes)',
      value: ratios.sluiceRssMiB,
      shown: ratios.sluiceRssMiB === null ? 'n/a' : `${ratios.sluiceRssMiB.toFixed(1)} MiB`,
      target: '≤ 200 MiB',
      verdict: verdict(ratios.sluiceRssMiB, (v) => v <= 200),
      note: 'largest of the 1-rule and 100-rule runs',
    },
    {
      name: 'keep-alive req/s per core, 100-rule config / 1-rule',
      value: ratios.rules100VsRules1PerCore,
      shown:
        ratios.rules100VsRules1PerCore === null ? 'n/a' : `${ratios.rules100VsRules1PerCore.toFixed(3)}×`,
      target: '≥ 0.90× (within 10 %)',
      verdict: verdict(ratios.rules100VsRules1PerCore, (v) => v >= 0.9),
      ...(ratios.rules100VsRules1 === null ? {} : { note: `raw ${ratios.rules100VsRules1.toFixed(3)}×` }),
    },
  ];
  return { info, scenarios, ratios, targets };
}

/** CPU 0 process time not charged to the proxy under test: other processes' work. */
export function backgroundOnProxyCore(t: PhaseCpu): number | undefined {
  const share = t.cpu['0'];
  if (share === undefined) return undefined;
  return Math.max(0, share.tasks - (t.proxyCores ?? 0));
}

/** CPU 1 process time not charged to the upstream, wrk, the paced client or the bench: other work. */
export function backgroundOnLoadCore(t: PhaseCpu): number | undefined {
  const share = t.cpu['1'];
  if (share === undefined) return undefined;
  return Math.max(0, share.tasks - t.benchLoadCores);
}

export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
function lpad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}
function ms(us: number | undefined): string {
  return us === undefined || !Number.isFinite(us) ? '-' : (us / 1000).toFixed(3);
}
export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
function pct(f: number | undefined): string {
  return f === undefined ? '-' : `${(f * 100).toFixed(0)}%`;
}
/** `+0.123 ms`, or n/a. */
export function signedMs(v: number | null | undefined): string {
  return v === null || v === undefined ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`;
}

/** The run's title and how it was measured: the lines every leg-based benchmark prints first. */
export function headerLines(title: string, info: BaseRunInfo): string[] {
  return [
    `${title}${info.quick ? ' (--quick: short phases, figures are indicative only)' : ''}`,
    `  started     ${info.startedAt}, took ${info.elapsedS.toFixed(0)} s`,
    `  runtime     Node ${info.node}; ${info.cores} cores (os.availableParallelism()); ${info.cpuModel}`,
    `  pinning     ${info.pinning}`,
    `  machine     busy before start (1 s): ${
      Object.entries(info.idleCpuBusy)
        .map(([c, f]) => `cpu${c} ${pct(f)}`)
        .join(', ') || 'n/a'
    }` + ' — other processes; columns other0/other1 below are the same during each throughput phase',
    `  upstream    ${info.upstream}`,
    `              why: ${info.upstreamWhy}`,
    `  throughput  ${info.throughputSettings}`,
    `  latency     ${info.latencySettings}`,
    `  request     ${info.request}`,
  ];
}

/** The table of legs (throughput and paced latency), then each leg's notes and warnings. */
export function scenarioLines(scenarios: readonly ScenarioResult[]): string[] {
  const out: string[] = [];
  const w = Math.max(20, ...scenarios.map((s) => s.label.length + 2));
  const cpuIds = [...new Set(scenarios.flatMap((s) => Object.keys(s.throughput?.cpu ?? {})))].sort();
  const head =
    pad('scenario', w) +
    lpad('req/s', 10) +
    lpad('proxy cpu', 10) +
    cpuIds.map((c) => lpad(`cpu${c}`, 6)).join('') +
    lpad('other0', 7) +
    lpad('other1', 7) +
    lpad('wrk p50', 9) +
    lpad('wrk p99', 9) +
    ' |' +
    lpad('p50 ms', 8) +
    lpad('p90 ms', 8) +
    lpad('p99 ms', 8) +
    lpad('p99.9', 8) +
    lpad('max', 8) +
    lpad('rate', 7) +
    '  errors';
  out.push(
    `${pad('', w)}${pad('keep-alive throughput (wrk, closed loop)', head.indexOf('|') - w)}| paced latency (service time, ms)`,
  );
  out.push(head);
  for (const s of scenarios) {
    if (s.status !== 'ok') {
      out.push(`${pad(s.label, w)}${s.status}: ${s.reason ?? ''}`);
      continue;
    }
    const t = s.throughput;
    const l = s.latency;
    const errors =
      (t ? t.non2xx + t.socketErrors : 0) +
      (l ? l.errors + Object.entries(l.statusCounts).reduce((a, [k, v]) => a + (k === '200' ? 0 : v), 0) : 0);
    out.push(
      pad(s.label, w) +
        lpad(t ? int(t.requestsPerSec) : '-', 10) +
        lpad(t?.proxyCores === null || !t ? '-' : pct(t.proxyCores), 10) +
        cpuIds.map((c) => lpad(pct(t?.cpu[c]?.busy), 6)).join('') +
        lpad(t ? pct(backgroundOnProxyCore(t)) : '-', 7) +
        lpad(t ? pct(backgroundOnLoadCore(t)) : '-', 7) +
        lpad(t ? t.latencyMs.p50.toFixed(2) : '-', 9) +
        lpad(t ? t.latencyMs.p99.toFixed(2) : '-', 9) +
        ' |' +
        lpad(ms(l?.serviceUs.p50), 8) +
        lpad(ms(l?.serviceUs.p90), 8) +
        lpad(ms(l?.serviceUs.p99), 8) +
        lpad(ms(l?.serviceUs.p999), 8) +
        lpad(ms(l?.serviceUs.max), 8) +
        lpad(l ? int(l.achievedRate) : '-', 7) +
        `  ${errors}`,
    );
  }
  out.push('');
  for (const s of scenarios) {
    const bits: string[] = [];
    if (s.rounds && s.rounds.length > 1)
      bits.push(
        `rounds: ${s.rounds.map((r) => `${int(r.requestsPerSec)} req/s p50 ${ms(r.p50Us)} p99 ${ms(r.p99Us)}`).join(' | ')}`,
      );
    if (s.throughput) {
      const cpus = Object.entries(s.throughput.cpu);
      bits.push(`irq+softirq in throughput ${cpus.map(([c, v]) => `cpu${c} ${pct(v.irq)}`).join(' ')}`);
      const steal = cpus.filter(([, v]) => v.steal > 0.01);
      if (steal.length > 0)
        bits.push(`hypervisor steal ${steal.map(([c, v]) => `cpu${c} ${pct(v.steal)}`).join(' ')}`);
    }
    if (s.startupMs !== undefined) bits.push(`first 200 after ${int(s.startupMs)} ms`);
    if (s.checks) bits.push(...s.checks);
    if (s.rss?.atStartBytes !== undefined)
      bits.push(`RSS at start ${(s.rss.atStartBytes / MiB).toFixed(1)} MiB`);
    if (s.rss)
      bits.push(
        `RSS after run ${(s.rss.totalBytes / MiB).toFixed(1)} MiB (${s.rss.perPid.map((p) => `pid ${p.pid}: ${(p.bytes / MiB).toFixed(1)}`).join(', ')})`,
      );
    if (s.latency) {
      bits.push(
        `latency incl. scheduling (coordinated-omission corrected) p50 ${ms(s.latency.correctedUs.p50)} p99 ${ms(s.latency.correctedUs.p99)} ms, ` +
          `client max lag ${s.latency.maxSchedulerLagMs.toFixed(1)} ms`,
      );
      const statuses = Object.entries(s.latency.statusCounts).filter(([k]) => k !== '200');
      if (statuses.length > 0 || s.latency.errors > 0)
        bits.push(
          `paced non-200: ${JSON.stringify(Object.fromEntries(statuses))}, errors ${s.latency.errors}${s.latency.firstError ? ` (${s.latency.firstError})` : ''}`,
        );
    }
    if (s.throughput && (s.throughput.non2xx || s.throughput.socketErrors))
      bits.push(`wrk non-2xx ${s.throughput.non2xx}, socket errors ${s.throughput.socketErrors}`);
    if (bits.length > 0) out.push(`  ${pad(s.label, w)}${bits.join('; ')}`);
    if (s.remeasured)
      out.push(`  ${pad('', w)}measured again after disturbed rounds: ${s.remeasured.join('; ')}`);
    const warnings: string[] = [];
    const check = (phase: string, cpu: PhaseCpu | undefined): void => {
      if (!cpu) return;
      // without a proxy (direct) nothing of ours runs on CPU 0: other work there does not count
      const other0 = cpu.proxyCores === null ? undefined : backgroundOnProxyCore(cpu);
      const other1 = backgroundOnLoadCore(cpu);
      if (other0 !== undefined && other0 > DISTURBED)
        warnings.push(`${pct(other0)} of CPU 0 during ${phase}`);
      if (other1 !== undefined && other1 > DISTURBED)
        warnings.push(`${pct(other1)} of CPU 1 during ${phase}`);
    };
    check('throughput', s.throughput);
    check('latency', s.latencyCpu);
    if (warnings.length > 0)
      out.push(
        `  ${pad('', w)}WARNING: other processes used ${warnings.join(', ')} in the reported round: figures disturbed`,
      );
  }
  return out;
}

export function targetLines(targets: readonly Target[]): string[] {
  return [
    'targets',
    ...targets.map(
      (t) =>
        `  ${pad(t.verdict, 5)} ${pad(t.name, 52)} ${pad(t.shown, 12)} target ${t.target}${t.note ? `  — ${t.note}` : ''}`,
    ),
  ];
}

export function formatText(report: Report): string {
  const { info } = report;
  const out = headerLines('sluice e2e benchmark', info);
  out.push(
    `  nginx       ${info.nginx ?? 'nginx not installed (apt-get install -y nginx-light): nginx leg skipped'}`,
  );
  for (const [name, s] of Object.entries(info.configs)) {
    out.push(
      `  config      ${pad(name, 11)} ${s.resources} resources, ${s.virtualServices} VirtualService(s), ${s.httpRules} http rule(s) over ${s.hosts} host(s), ` +
        `${(s.bytes / 1024).toFixed(1)} KiB YAML; request matches rule ${s.matchedRule} of ${s.rulesOnHost} on its host`,
    );
  }
  out.push('');
  out.push(...scenarioLines(report.scenarios));
  out.push('');
  const fmt = (v: number | null, digits = 2, suffix = '×'): string =>
    v === null ? 'n/a' : `${v.toFixed(digits)}${suffix}`;
  out.push('ratios (keep-alive req/s)');
  out.push(
    `  sluice / nginx            ${fmt(report.ratios.sluiceVsNginx)}   (per proxy core ${fmt(report.ratios.sluiceVsNginxPerCore)})`,
  );
  out.push(`  sluice / direct           ${fmt(report.ratios.sluiceVsDirect)}`);
  out.push(`  nginx / direct            ${fmt(report.ratios.nginxVsDirect)}`);
  out.push(
    `  100 rules / 1 rule        ${fmt(report.ratios.rules100VsRules1, 3)}   (per proxy core ${fmt(report.ratios.rules100VsRules1PerCore, 3)})`,
  );
  out.push('added latency at paced load (proxy − direct, service time)');
  out.push(
    `  sluice (1 rule)           p50 ${signedMs(report.ratios.addedLatencyP50Ms)}   p99 ${signedMs(report.ratios.addedLatencyP99Ms)}`,
  );
  out.push(
    `  nginx proxy               p50 ${signedMs(report.ratios.nginxAddedLatencyP50Ms)}   p99 ${signedMs(report.ratios.nginxAddedLatencyP99Ms)}   (what a second hop costs on this machine)`,
  );
  out.push('');
  out.push(...targetLines(report.targets));
  return out.join('\n') + '\n';
}

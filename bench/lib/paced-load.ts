/**
 * Paced (open-loop) load generator, run as its own process pinned to the load core: sends
 * requests at a fixed rate whatever the responses do, like wrk2, and prints one JSON line of
 * latency percentiles. Two latencies per request:
 *   service   — from the moment the request is handed to the client to the last body byte;
 *   corrected — from the moment it was *scheduled*, so a stall that delays later sends counts
 *               against them too (coordinated omission).
 * Sends are batched per timer tick (~1 ms), so the corrected figure includes up to one tick of
 * timer lateness; the service figure does not.
 *
 *   node bench/lib/paced-load.ts --url http://127.0.0.1:PORT/path --rate 2000 --duration 10 \
 *        [--warmup 2] [--connections 64] [--header 'host: x']
 *        [--vary-header authorization --values-file FILE]   (one value per line, cycled per request)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface PacedResult {
  readonly targetRate: number;
  readonly durationS: number;
  readonly sent: number;
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly statusCounts: Readonly<Record<string, number>>;
  readonly achievedRate: number;
  /** microseconds */
  readonly serviceUs: Percentiles;
  /** microseconds */
  readonly correctedUs: Percentiles;
  readonly maxSchedulerLagMs: number;
  /** Date.now() when the recorded phase started, to place `slowest` on another process's clock. */
  readonly startedAtMs: number;
  /** The slowest requests (service time), with when each was sent: ms after startedAtMs. */
  readonly slowest: readonly { readonly sentAtMs: number; readonly serviceUs: number }[];
}

/** How many of the slowest requests a result lists. */
const SLOWEST = 10;

export function percentiles(values: Float64Array): Percentiles {
  const n = values.length;
  if (n === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN };
  const sorted = values.slice().sort();
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i] as number;
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted[n - 1] as number,
    mean: sum / n,
  };
}

interface Phase {
  readonly total: number;
  readonly record: boolean;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      rate: { type: 'string', default: '2000' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '0' },
      connections: { type: 'string', default: '64' },
      header: { type: 'string', multiple: true, default: [] },
      'vary-header': { type: 'string' },
      'values-file': { type: 'string' },
    },
  });
  if (!values.url) throw new Error('--url is required');
  const url = new URL(values.url);
  const rate = Number(values.rate);
  const durationS = Number(values.duration);
  const warmupS = Number(values.warmup);
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const colon = h.indexOf(':');
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  const varyName = values['vary-header']?.toLowerCase();
  const vary =
    varyName === undefined
      ? null
      : {
          name: varyName,
          values: readFileSync(values['values-file'] ?? '', 'utf8')
            .split('\n')
            .filter((l) => l !== ''),
        };
  if (vary !== null && vary.values.length === 0) throw new Error('--values-file has no values');
  const pool = new Pool(url.origin, {
    connections: Number(values.connections),
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  const path = url.pathname + url.search;

  const phases: Phase[] = [];
  if (warmupS > 0) phases.push({ total: Math.round(rate * warmupS), record: false });
  phases.push({ total: Math.round(rate * durationS), record: true });

  let result: PacedResult | null = null;
  for (const phase of phases) {
    const r = await runPhase(pool, path, headers, vary, rate, phase);
    if (phase.record) result = { ...r, durationS };
  }
  await pool.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

function runPhase(
  pool: Pool,
  path: string,
  headers: Record<string, string>,
  vary: { readonly name: string; readonly values: readonly string[] } | null,
  rate: number,
  phase: Phase,
): Promise<Omit<PacedResult, 'durationS'>> {
  const total = phase.total;
  const intervalNs = 1e9 / rate;
  const service = new Float64Array(total);
  const corrected = new Float64Array(total);
  const sentAt = new Float64Array(total);
  const statusCounts: Record<string, number> = {};
  let completed = 0;
  let errors = 0;
  let firstError: string | null = null;
  let sent = 0;
  let maxLagNs = 0;
  const t0 = Number(process.hrtime.bigint());
  const startedAtMs = Date.now();

  return new Promise((resolve) => {
    const finishIfDone = (): void => {
      if (completed + errors < total) return;
      const elapsedS = (Number(process.hrtime.bigint()) - t0) / 1e9;
      resolve({
        targetRate: rate,
        sent,
        completed,
        errors,
        firstError,
        statusCounts,
        achievedRate: completed / elapsedS,
        serviceUs: percentiles(service.subarray(0, completed)),
        correctedUs: percentiles(corrected.subarray(0, completed)),
        maxSchedulerLagMs: maxLagNs / 1e6,
        startedAtMs,
        slowest: slowestOf(service, sentAt, completed),
      });
    };

    const send = (intendedNs: number): void => {
      const startNs = Number(process.hrtime.bigint());
      let status = 0;
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart() {},
        onResponseStart(_controller, statusCode) {
          status = statusCode;
        },
        onResponseData() {},
        onResponseEnd() {
          const endNs = Number(process.hrtime.bigint());
          const key = String(status);
          statusCounts[key] = (statusCounts[key] ?? 0) + 1;
          service[completed] = (endNs - startNs) / 1e3;
          corrected[completed] = (endNs - intendedNs) / 1e3;
          sentAt[completed] = (startNs - t0) / 1e6;
          completed++;
          finishIfDone();
        },
        onResponseError(_controller, err) {
          errors++;
          firstError ??= err.message;
          finishIfDone();
        },
      };
      const h =
        vary === null ? headers : { ...headers, [vary.name]: vary.values[sent % vary.values.length]! };
      pool.dispatch({ method: 'GET', path, headers: h }, handler);
    };

    const tick = (): void => {
      const now = Number(process.hrtime.bigint());
      while (sent < total) {
        const intended = t0 + sent * intervalNs;
        if (intended > now) break;
        if (now - intended > maxLagNs) maxLagNs = now - intended;
        sent++;
        send(intended);
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
}

function slowestOf(
  service: Float64Array,
  sentAt: Float64Array,
  n: number,
): { sentAtMs: number; serviceUs: number }[] {
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (service[b] as number) - (service[a] as number),
  );
  return order
    .slice(0, SLOWEST)
    .map((i) => ({ sentAtMs: sentAt[i] as number, serviceUs: service[i] as number }));
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`paced-load: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}

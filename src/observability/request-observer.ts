/**
 * The one per-request callback observability gives the gateway (`createGateway({ onRequestDone })`):
 * end time and wire bytes once, then metrics, the access log and the span. What is on follows
 * the snapshot pinned on the request, so a reload that turns the access log or tracing on or off
 * applies from the next request; nothing is captured from the config at creation.
 */
import type { Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { Counter, type Registry } from 'prom-client';
import { createAccessLogger, type AccessLogger } from './access-log.ts';
import { kStreamBytesSent, type FinishedRequest } from './finished-request.ts';
import { createRequestMetrics, type RequestMetrics } from './request-metrics.ts';
import { createTracer, type Tracer } from './tracing.ts';

export interface RequestObserverParts {
  /** Null: no access log whatever MeshConfig says. */
  readonly accessLog: AccessLogger | null;
  /** Null: metrics off. */
  readonly metrics: RequestMetrics | null;
  /** Null: no spans whatever MeshConfig says (sampled requests still propagate trace context). */
  readonly tracing: Tracer | null;
}

const kRead = Symbol('sluice.bytesRead');
const kWritten = Symbol('sluice.bytesWritten');
type CountedSocket = Socket & { [kRead]?: number; [kWritten]?: number };

/**
 * Wire bytes of this exchange: the connection's byte counters since the previous request on it
 * finished (HTTP/1.1 keep-alive requests are sequential). Head + body, which is what Istio's
 * istio_request_bytes / istio_response_bytes measure (request.total_size / response.total_size).
 */
export function measureBytes(ctx: FinishedRequest): void {
  const req = ctx.req;
  if (req.httpVersionMajor >= 2) {
    // One socket carries many streams: the declared request length, and the body bytes the
    // response wrote to its stream.
    const cl = req.headers['content-length'];
    ctx.requestBytes = cl === undefined ? 0 : Number(cl) || 0;
    ctx.responseBytes = (ctx.res as { [kStreamBytesSent]?: number })[kStreamBytesSent] ?? 0;
    return;
  }
  const sock = req.socket as CountedSocket | null;
  if (sock === null) return;
  const read = sock.bytesRead;
  const written = sock.bytesWritten;
  ctx.requestBytes = read - (sock[kRead] ?? 0);
  ctx.responseBytes = written - (sock[kWritten] ?? 0);
  sock[kRead] = read;
  sock[kWritten] = written;
}

export function createRequestObserver(parts: RequestObserverParts): (ctx: FinishedRequest) => void {
  const { accessLog, metrics, tracing } = parts;
  return function onRequestDone(ctx: FinishedRequest): void {
    ctx.endMs = performance.now();
    measureBytes(ctx);
    if (metrics !== null) metrics.record(ctx);
    if (accessLog !== null && ctx.snapshot.settings.accessLog !== undefined) accessLog.log(ctx);
    if (tracing !== null && ctx.trace !== null) tracing.end(ctx);
  };
}

export interface ObservabilityOptions {
  /** The process's registry (the metrics port serves it; workers' registries are merged). */
  readonly registry: Registry;
  /** This gateway: --namespace and --labels. */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** source_workload; default the `app` label, else `sluice`. */
  readonly workload?: string;
  /** Request metrics on (default true): `--metrics-port` serves them whether or not anyone scrapes. */
  readonly metrics?: boolean;
  /** Access log and span export problems, at most once a minute per kind. */
  readonly warn?: (msg: string) => void;
}

export interface Observability {
  /** Pass to createGateway({ onRequestDone }). */
  readonly onRequestDone: (ctx: FinishedRequest) => void;
  readonly accessLog: AccessLogger;
  readonly tracer: Tracer;
  readonly metrics: RequestMetrics | null;
  /** Flush the access log and queued spans (drain, shutdown). */
  close(): Promise<void>;
}

/** Everything `serve` needs, in one call: metrics into `registry`, access log and tracer following the snapshot. */
export function createObservability(opts: ObservabilityOptions): Observability {
  const workload = opts.workload ?? opts.labels['app'] ?? 'sluice';
  const lastWarned = new Map<string, number>();
  const warn = (kind: string, msg: string): void => {
    const now = Date.now();
    if (now - (lastWarned.get(kind) ?? 0) < 60_000) return;
    lastWarned.set(kind, now);
    opts.warn?.(msg);
  };
  const metrics =
    opts.metrics === false
      ? null
      : createRequestMetrics({
          registry: opts.registry,
          workload,
          namespace: opts.namespace,
          labels: opts.labels,
        });
  const accessLog = createAccessLogger({ onWarn: (m) => warn('access-log', m) });
  const l = opts.labels;
  const tracer = createTracer({
    serviceName: `${workload}.${opts.namespace}`,
    nodeId: `router~${localAddress()}~${hostname()}.${opts.namespace}~${opts.namespace}.svc.cluster.local`,
    namespace: opts.namespace,
    canonicalService: l['service.istio.io/canonical-name'] ?? l['app'] ?? workload,
    canonicalRevision: l['service.istio.io/canonical-revision'] ?? l['version'] ?? 'latest',
    onError: (err) => warn('tracing', `span export failed: ${err.message}`),
  });
  registerOutputCounters(opts.registry, accessLog, tracer);
  return {
    onRequestDone: createRequestObserver({ accessLog, metrics, tracing: tracer }),
    accessLog,
    tracer,
    metrics,
    async close(): Promise<void> {
      await Promise.all([accessLog.close(), tracer.close()]);
    },
  };
}

/** Lines written and dropped, spans exported and dropped: read from the outputs at scrape time. */
function registerOutputCounters(registry: Registry, accessLog: AccessLogger, tracer: Tracer): void {
  new Counter({
    name: 'sluice_access_log_lines_total',
    help: 'Access log lines, by result: written (handed to the buffered writer) or dropped (buffer full).',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const s = accessLog.stats();
      this.reset();
      this.inc({ result: 'written' }, s.lines);
      this.inc({ result: 'dropped' }, s.dropped);
    },
  });
  new Counter({
    name: 'sluice_tracing_spans_total',
    help: 'Spans, by result: exported (the collector accepted them) or dropped (queue full or export failed).',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const s = tracer.stats();
      this.reset();
      this.inc({ result: 'exported' }, s.exported);
      this.inc({ result: 'dropped' }, s.dropped);
    },
  });
}

/** The first non-internal IPv4 address (Envoy's node id carries the pod IP), else 127.0.0.1. */
function localAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * Istio's standard request metrics (DP-7) with Istio's names, labels and buckets, so Istio's
 * Grafana dashboards and alert rules read sluice unchanged. A gateway reports as
 * `reporter="source"`: the source is the gateway itself, the destination the cluster's service.
 *
 * Recording is a counter bump on a precomputed series: label values are built once per
 * cluster + protocol + response code + flags (the first request that sees the combination) and
 * kept; a request does two Map lookups and some additions. prom-client's own per-call path
 * (label hashing and validation over 25 labels, four metrics) would cost more than the rest of
 * the observer, so the series are handed to prom-client only at scrape time: the metric objects
 * are prom-client's Counter and Histogram, registered in the caller's Registry (AggregatorRegistry
 * merging across workers works as usual), with `get()` reading the series.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { FinishedRequest } from './finished-request.ts';
import { httpToGrpcStatus } from '../util/grpc.ts';

/**
 * Envoy's default histogram buckets (source/common/stats/histogram_impl.cc defaultBuckets),
 * which Istio's istio_request_duration_milliseconds, istio_request_bytes and
 * istio_response_bytes use unless `sidecar.istio.io/statsHistogramBuckets` overrides them.
 */
export const ISTIO_BUCKETS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

/** Istio's request metric labels (istio.io docs reference/config/metrics; istio/proxy stats plugin). */
export const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

/** TCP metrics carry the same labels but no response code or gRPC status. */
export const ISTIO_TCP_LABELS = ISTIO_LABELS.filter(
  (l) => l !== 'response_code' && l !== 'grpc_response_status',
);

export type IstioLabel = (typeof ISTIO_LABELS)[number];
type Labels = Record<string, string>;

export interface RequestMetricsOptions {
  /** Registry the istio_* metrics register in (the metrics port serves it). */
  readonly registry: Registry;
  /** This gateway's workload name (source_workload), e.g. `sluice` or `istio-ingressgateway`. */
  readonly workload: string;
  /** This gateway's namespace (--namespace). */
  readonly namespace: string;
  /** This gateway's labels (--labels): app, version, service.istio.io/canonical-* are read. */
  readonly labels: Readonly<Record<string, string>>;
  /** source_cluster / destination_cluster (Istio's cluster id); default `unknown`. */
  readonly clusterId?: string;
}

export interface RequestMetrics {
  /** Count one finished HTTP request (ctx.endMs, requestBytes and responseBytes already set). */
  record(ctx: FinishedRequest): void;
  /** TCP proxying (passthrough, TCP routes): a connection to `clusterName` opened. */
  tcpOpened(clusterName: string | null): void;
  /** …closed, with the bytes it moved each way. */
  tcpClosed(clusterName: string | null, flags: string, sentBytes: number, receivedBytes: number): void;
}

/** What TCP proxying (passthrough, tcp routes) reports per connection. */
export type TcpConnectionObserver = Pick<RequestMetrics, 'tcpOpened' | 'tcpClosed'>;

/** One label set of the four HTTP metrics: counts and non-cumulative bucket counts. */
interface Series {
  readonly labels: Labels;
  requests: number;
  durationSum: number;
  readonly duration: Float64Array;
  requestBytesSum: number;
  readonly requestBytes: Float64Array;
  responseBytesSum: number;
  readonly responseBytes: Float64Array;
  /** gRPC messages each way (istio_request/response_messages_total); 0 for HTTP series. */
  requestMessages: number;
  responseMessages: number;
}

interface TcpSeries {
  readonly labels: Labels;
  opened: number;
  closed: number;
  sent: number;
  received: number;
}

/** Per destination cluster: the fixed label values, then series by code and flags (and gRPC status). */
interface ClusterEntry {
  readonly base: Labels;
  readonly http: Map<number, Map<string, Series>>;
  /** Keyed by `flags|grpc-status`. */
  readonly grpc: Map<number, Map<string, Series>>;
  readonly tcp: Map<string, TcpSeries>;
}

const NB = ISTIO_BUCKETS.length;

function bucketIndex(v: number): number {
  for (let i = 0; i < NB; i++) if (v <= ISTIO_BUCKETS[i]!) return i;
  return NB;
}

/**
 * destination_service* from a cluster name `outbound|<port>|<subset>|<host>` (VS-19): a
 * Kubernetes service host `name.ns.svc.<domain>` gives name and namespace; any other host
 * (ServiceEntry, DNS name) is its own name with namespace `unknown`.
 */
export function destinationOf(clusterName: string | null): {
  service: string;
  name: string;
  namespace: string;
} {
  if (clusterName === null || clusterName === '')
    return { service: 'unknown', name: 'unknown', namespace: 'unknown' };
  const parts = clusterName.split('|');
  const host = parts.length === 4 ? parts[3]! : clusterName;
  const labels = host.split('.');
  if (labels.length >= 3 && labels[2] === 'svc')
    return { service: host, name: labels[0]!, namespace: labels[1]! };
  return { service: host, name: host, namespace: 'unknown' };
}

/** Source label values of this gateway, as Istio derives them from workload labels. */
export function sourceLabelsOf(opts: RequestMetricsOptions): Labels {
  const l = opts.labels;
  const app = l['app'] ?? l['app.kubernetes.io/name'];
  const version = l['version'] ?? l['app.kubernetes.io/version'];
  return {
    reporter: 'source',
    source_workload: opts.workload,
    source_canonical_service: l['service.istio.io/canonical-name'] ?? app ?? opts.workload,
    source_canonical_revision: l['service.istio.io/canonical-revision'] ?? version ?? 'latest',
    source_workload_namespace: opts.namespace,
    // No mTLS identity at the edge.
    source_principal: 'unknown',
    source_app: app ?? 'unknown',
    source_version: version ?? 'unknown',
    source_cluster: opts.clusterId ?? 'unknown',
  };
}

function isGrpc(ctx: FinishedRequest): boolean {
  const raw = ctx.req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 12 && name.toLowerCase() === 'content-type') {
      return raw[i + 1]!.startsWith('application/grpc');
    }
  }
  return false;
}

/**
 * The gRPC status as Envoy reports it (grpc/common.cc getGrpcStatus): the response's own
 * `grpc-status` (trailers, or the headers of a trailers-only response), else the HTTP status
 * mapped as DP-3 maps it (a 200 without one is UNKNOWN); none when no response was given.
 */
function grpcStatusOf(ctx: FinishedRequest): string {
  const seen = ctx.grpc?.status;
  if (seen != null) return seen;
  return ctx.status === 0 ? '' : String(httpToGrpcStatus(ctx.status));
}

export function createRequestMetrics(opts: RequestMetricsOptions): RequestMetrics {
  const source = sourceLabelsOf(opts);
  const clusterId = opts.clusterId ?? 'unknown';
  const clusters = new Map<string, ClusterEntry>();
  const all: Series[] = [];
  const allTcp: TcpSeries[] = [];

  function entryFor(clusterName: string | null): ClusterEntry {
    const key = clusterName ?? '';
    let e = clusters.get(key);
    if (e === undefined) {
      const d = destinationOf(clusterName);
      e = {
        base: {
          ...source,
          destination_workload: 'unknown',
          destination_workload_namespace: 'unknown',
          destination_principal: 'unknown',
          destination_app: 'unknown',
          destination_version: 'unknown',
          destination_service: d.service,
          destination_canonical_service: 'unknown',
          destination_canonical_revision: 'latest',
          destination_service_name: d.name,
          destination_service_namespace: d.namespace,
          destination_cluster: clusterId,
          // Istio's value at the source side: the gateway cannot know the server's policy.
          connection_security_policy: 'unknown',
        },
        http: new Map(),
        grpc: new Map(),
        tcp: new Map(),
      };
      clusters.set(key, e);
    }
    return e;
  }

  function seriesFor(e: ClusterEntry, grpcStatus: string | null, code: number, flags: string): Series {
    const grpc = grpcStatus !== null;
    const byCode = grpc ? e.grpc : e.http;
    let byFlags = byCode.get(code);
    if (byFlags === undefined) {
      byFlags = new Map();
      byCode.set(code, byFlags);
    }
    const key = grpc ? flags + '|' + grpcStatus : flags;
    let s = byFlags.get(key);
    if (s === undefined) {
      s = {
        labels: {
          ...e.base,
          request_protocol: grpc ? 'grpc' : 'http',
          response_code: String(code),
          grpc_response_status: grpcStatus ?? '',
          response_flags: flags,
        },
        requests: 0,
        durationSum: 0,
        duration: new Float64Array(NB + 1),
        requestBytesSum: 0,
        requestBytes: new Float64Array(NB + 1),
        responseBytesSum: 0,
        responseBytes: new Float64Array(NB + 1),
        requestMessages: 0,
        responseMessages: 0,
      };
      byFlags.set(key, s);
      all.push(s);
    }
    return s;
  }

  function tcpSeriesFor(clusterName: string | null, flags: string): TcpSeries {
    const e = entryFor(clusterName);
    let s = e.tcp.get(flags);
    if (s === undefined) {
      const labels: Labels = { ...e.base, request_protocol: 'tcp', response_flags: flags };
      s = { labels, opened: 0, closed: 0, sent: 0, received: 0 };
      e.tcp.set(flags, s);
      allTcp.push(s);
    }
    return s;
  }

  const registers = [opts.registry];
  new SeriesCounter({
    name: 'istio_requests_total',
    help: 'Requests handled by the gateway (Istio standard metric).',
    labelNames: ISTIO_LABELS,
    registers,
    read: () => all.map((s) => [s.labels, s.requests] as const),
  });
  new SeriesHistogram({
    name: 'istio_request_duration_milliseconds',
    help: 'Request duration in milliseconds, first byte in to last byte out (Istio standard metric).',
    labelNames: ISTIO_LABELS,
    registers,
    read: () =>
      all.map((s) => ({ labels: s.labels, counts: s.duration, sum: s.durationSum, count: s.requests })),
  });
  new SeriesHistogram({
    name: 'istio_request_bytes',
    help: 'Request size in bytes, headers and body (Istio standard metric).',
    labelNames: ISTIO_LABELS,
    registers,
    read: () =>
      all.map((s) => ({
        labels: s.labels,
        counts: s.requestBytes,
        sum: s.requestBytesSum,
        count: s.requests,
      })),
  });
  new SeriesHistogram({
    name: 'istio_response_bytes',
    help: 'Response size in bytes, headers and body (Istio standard metric).',
    labelNames: ISTIO_LABELS,
    registers,
    read: () =>
      all.map((s) => ({
        labels: s.labels,
        counts: s.responseBytes,
        sum: s.responseBytesSum,
        count: s.requests,
      })),
  });
  const grpcSeries = (): Series[] => all.filter((s) => s.labels['request_protocol'] === 'grpc');
  new SeriesCounter({
    name: 'istio_request_messages_total',
    help: 'gRPC messages sent by clients (Istio standard metric).',
    labelNames: ISTIO_LABELS,
    registers,
    read: () => grpcSeries().map((s) => [s.labels, s.requestMessages] as const),
  });
  new SeriesCounter({
    name: 'istio_response_messages_total',
    help: 'gRPC messages sent by servers (Istio standard metric).',
    labelNames: ISTIO_LABELS,
    registers,
    read: () => grpcSeries().map((s) => [s.labels, s.responseMessages] as const),
  });
  const tcpCounter = (name: string, help: string, pick: (s: TcpSeries) => number): void => {
    new SeriesCounter({
      name,
      help,
      labelNames: ISTIO_TCP_LABELS,
      registers,
      read: () => allTcp.map((s) => [s.labels, pick(s)] as const),
    });
  };
  tcpCounter(
    'istio_tcp_sent_bytes_total',
    'Bytes sent to TCP clients (Istio standard metric).',
    (s) => s.sent,
  );
  tcpCounter(
    'istio_tcp_received_bytes_total',
    'Bytes received from TCP clients (Istio standard metric).',
    (s) => s.received,
  );
  tcpCounter(
    'istio_tcp_connections_opened_total',
    'TCP connections opened (Istio standard metric).',
    (s) => s.opened,
  );
  tcpCounter(
    'istio_tcp_connections_closed_total',
    'TCP connections closed (Istio standard metric).',
    (s) => s.closed,
  );

  return {
    record(ctx: FinishedRequest): void {
      const s = seriesFor(
        entryFor(ctx.clusterName),
        isGrpc(ctx) ? grpcStatusOf(ctx) : null,
        ctx.status,
        ctx.responseFlags,
      );
      s.requests += 1;
      const grpc = ctx.grpc;
      if (grpc !== null) {
        s.requestMessages += grpc.requests.messages;
        s.responseMessages += grpc.responses.messages;
      }
      const ms = ctx.endMs - ctx.startMs;
      s.durationSum += ms;
      s.duration[bucketIndex(ms)]! += 1;
      const rq = ctx.requestBytes;
      s.requestBytesSum += rq;
      s.requestBytes[bucketIndex(rq)]! += 1;
      const rs = ctx.responseBytes;
      s.responseBytesSum += rs;
      s.responseBytes[bucketIndex(rs)]! += 1;
    },
    tcpOpened(clusterName: string | null): void {
      tcpSeriesFor(clusterName, '-').opened += 1;
    },
    tcpClosed(clusterName, flags, sentBytes, receivedBytes): void {
      const s = tcpSeriesFor(clusterName, flags);
      s.closed += 1;
      s.sent += sentBytes;
      s.received += receivedBytes;
    },
  };
}

// ---------------------------------------------------------------- prom-client adapters

type CounterGet = Awaited<ReturnType<Counter['get']>>;
type HistogramGet = Awaited<ReturnType<Histogram['get']>>;

interface HistogramRead {
  readonly labels: Labels;
  /** Non-cumulative counts per ISTIO_BUCKETS bound, then the overflow slot. */
  readonly counts: Float64Array;
  readonly sum: number;
  readonly count: number;
}

/** A prom-client Counter whose values are read from precomputed series at scrape time. */
class SeriesCounter extends Counter {
  readonly #read: () => readonly (readonly [Labels, number])[];
  readonly #name: string;
  readonly #help: string;

  constructor(cfg: {
    name: string;
    help: string;
    labelNames: readonly string[];
    registers: Registry[];
    read: () => readonly (readonly [Labels, number])[];
  }) {
    super({ name: cfg.name, help: cfg.help, labelNames: cfg.labelNames, registers: cfg.registers });
    this.#read = cfg.read;
    this.#name = cfg.name;
    this.#help = cfg.help;
  }

  override get(): Promise<CounterGet> {
    const values = this.#read().map(([labels, value]) => ({ labels: { ...labels }, value }));
    const data = { name: this.#name, help: this.#help, type: 'counter', values, aggregator: 'sum' };
    return Promise.resolve(data as unknown as CounterGet);
  }
}

/** A prom-client Histogram (Istio's buckets) read from precomputed series at scrape time. */
class SeriesHistogram extends Histogram {
  readonly #read: () => readonly HistogramRead[];
  readonly #name: string;
  readonly #help: string;

  constructor(cfg: {
    name: string;
    help: string;
    labelNames: readonly string[];
    registers: Registry[];
    read: () => readonly HistogramRead[];
  }) {
    super({
      name: cfg.name,
      help: cfg.help,
      labelNames: cfg.labelNames,
      buckets: [...ISTIO_BUCKETS],
      registers: cfg.registers,
    });
    this.#read = cfg.read;
    this.#name = cfg.name;
    this.#help = cfg.help;
  }

  /** The text exposition reads this one for histograms. */
  getForPromString(): Promise<HistogramGet> {
    return this.get();
  }

  override get(): Promise<HistogramGet> {
    const name = this.#name;
    const bucketName = name + '_bucket';
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.#read()) {
      let acc = 0;
      for (let i = 0; i < NB; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le: ISTIO_BUCKETS[i]! }, value: acc, metricName: bucketName });
      }
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucketName });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: name + '_sum' });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: name + '_count' });
    }
    const data = { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' };
    return Promise.resolve(data as unknown as HistogramGet);
  }
}

/**
 * Traces (issue 4 item 7). Trace headers (W3C traceparent/tracestate, B3 x-b3-*, x-request-id)
 * are forwarded as the client sent them; nothing here runs unless MeshConfig names an
 * OpenTelemetry provider (`tracing.provider` → an `extensionProviders` entry).
 *
 * With a provider: `startTrace` (called by the data plane at the start of a request) decides
 * sampling as Envoy's OpenTelemetry tracer does — a valid incoming traceparent's sampled flag
 * wins, otherwise `randomSamplingPercentage` — and, when sampled, rewrites the traceparent the
 * upstream will see to carry this request's span as parent. `createTracer().end` turns the
 * finished request into a SERVER span with Envoy's tag names; spans are batched (timer + max
 * batch) and POSTed as OTLP/HTTP JSON off the request path.
 */
import type { IncomingMessage } from 'node:http';
import { randomFillSync } from 'node:crypto';
import type { FinishedRequest, TraceContext, TracingConfig } from './finished-request.ts';
import { rawHeader } from './request-facts.ts';

// ---------------------------------------------------------------- ids

const ID_POOL = Buffer.allocUnsafe(4096);
let idPos = ID_POOL.length;

/** Random lowercase hex of `bytes` bytes from a refilled pool (no allocation per id beyond the string). */
function randomHex(bytes: number): string {
  if (idPos + bytes > ID_POOL.length) {
    randomFillSync(ID_POOL);
    idPos = 0;
  }
  const s = ID_POOL.toString('hex', idPos, idPos + bytes);
  idPos += bytes;
  return s;
}

function isLowerHex(s: string, from: number, to: number): boolean {
  let nonZero = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    if (c !== 48) nonZero = true;
  }
  return nonZero;
}

/** Parsed W3C traceparent (version 00 layout; later versions may append fields). */
export interface ParsedTraceparent {
  readonly traceId: string;
  readonly parentId: string;
  readonly sampled: boolean;
}

export function parseTraceparent(value: string): ParsedTraceparent | null {
  const v = value.trim();
  if (v.length < 55) return null;
  if (v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return null;
  const version = v.slice(0, 2);
  if (version === 'ff' || !/^[0-9a-f]{2}$/.test(version)) return null;
  if (version === '00' && v.length !== 55) return null;
  if (v.length > 55 && v.charCodeAt(55) !== 45) return null;
  if (!isLowerHex(v, 3, 35) || !isLowerHex(v, 36, 52)) return null;
  const flags = parseInt(v.slice(53, 55), 16);
  if (Number.isNaN(flags)) return null;
  return { traceId: v.slice(3, 35), parentId: v.slice(36, 52), sampled: (flags & 1) === 1 };
}

/**
 * Sampling decision and trace context for one request; null when not sampled. When sampled, the
 * request's traceparent (which the forwarder copies to the upstream) is rewritten to
 * `00-<trace>-<our span>-01`, or added when the client sent none; tracestate and B3 headers are
 * left exactly as sent.
 */
export function startTrace(req: IncomingMessage, cfg: TracingConfig): TraceContext | null {
  const raw = req.rawHeaders;
  let at = -1;
  let traceState = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 11 && name.toLowerCase() === 'traceparent') at = i + 1;
    else if (name.length === 10 && name.toLowerCase() === 'tracestate')
      traceState = traceState === '' ? raw[i + 1]! : traceState + ',' + raw[i + 1]!;
  }
  const parent = at < 0 ? null : parseTraceparent(raw[at]!);
  if (parent !== null) {
    if (!parent.sampled) return null;
  } else if (cfg.samplingPercentage < 100 && Math.random() * 100 >= cfg.samplingPercentage) {
    return null;
  }
  const traceId = parent === null ? randomHex(16) : parent.traceId;
  const spanId = randomHex(8);
  const header = '00-' + traceId + '-' + spanId + '-01';
  if (at >= 0) raw[at] = header;
  else raw.push('traceparent', header);
  return { traceId, spanId, parentSpanId: parent === null ? '' : parent.parentId, traceState };
}

// ---------------------------------------------------------------- spans

/** What a finished span keeps until export: references to existing strings, no formatting. */
export interface SpanRecord {
  readonly cfg: TracingConfig;
  readonly trace: TraceContext;
  readonly name: string;
  readonly startTimeMs: number;
  readonly durationMs: number;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly flags: string;
  readonly cluster: string | null;
  readonly upstreamAddress: string | null;
  readonly requestId: string | null;
  readonly userAgent: string | null;
  readonly peer: string;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly protocol: string;
}

export interface TracerOptions {
  /** Span resource `service.name` (Istio: `<canonical service>.<namespace>`). */
  readonly serviceName: string;
  /** Envoy `node_id` tag. */
  readonly nodeId: string;
  /** Istio tags: the gateway's namespace and canonical service/revision. */
  readonly namespace: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly zone?: string;
  /** Spans per export request (default 512); a full batch is sent at once. */
  readonly maxBatch?: number;
  /** A partial batch waits at most this long (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** Spans held while exports are slow; beyond it spans are dropped and counted (default 8192). */
  readonly maxQueue?: number;
  /** Export failures (collector down, non-2xx); the caller rate-limits its logging. */
  readonly onError?: (err: Error) => void;
  /** Tests: a different fetch. */
  readonly fetch?: typeof fetch;
}

export interface Tracer {
  /** Queue the span of a finished, sampled request (ctx.trace !== null). */
  end(ctx: FinishedRequest): void;
  /** Export everything queued now. */
  flush(): Promise<void>;
  /** Flush, then stop the timer. */
  close(): Promise<void>;
  /** Spans exported, dropped (queue full or export failed). */
  stats(): { exported: number; dropped: number; failedExports: number };
}

/** Envoy's decorator-style operation name for a cluster `outbound|port|subset|host`: `host:port/*`. */
const operationNames = new Map<string, string>();
function operationNameOf(ctx: FinishedRequest): string {
  const cluster = ctx.clusterName;
  if (cluster === null) return ctx.host + ':' + ctx.port + '/*';
  let name = operationNames.get(cluster);
  if (name === undefined) {
    const parts = cluster.split('|');
    name = parts.length === 4 ? parts[3] + ':' + parts[1] + '/*' : cluster;
    if (operationNames.size < 10_000) operationNames.set(cluster, name);
  }
  return name;
}

export function createTracer(opts: TracerOptions): Tracer {
  const maxBatch = opts.maxBatch ?? 512;
  const intervalMs = opts.flushIntervalMs ?? 1000;
  const maxQueue = opts.maxQueue ?? 8192;
  const doFetch = opts.fetch ?? fetch;
  let queue: SpanRecord[] = [];
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  let exported = 0;
  let dropped = 0;
  let failedExports = 0;
  const inFlight = new Set<Promise<void>>();

  function schedule(): void {
    if (queue.length >= maxBatch) {
      if (immediate === null) immediate = setImmediate(runFlush);
    } else if (timer === null) {
      timer = setTimeout(runFlush, intervalMs);
      timer.unref();
    }
  }

  function runFlush(): void {
    void flush();
  }

  function flush(): Promise<void> {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (immediate !== null) {
      clearImmediate(immediate);
      immediate = null;
    }
    const all = queue;
    queue = [];
    const sends: Promise<void>[] = [];
    for (let i = 0; i < all.length; i += maxBatch) sends.push(...exportBatch(all.slice(i, i + maxBatch)));
    return Promise.all([...inFlight, ...sends]).then(() => undefined);
  }

  /** One POST per endpoint present in the batch (a reload may have changed the provider). */
  function exportBatch(batch: SpanRecord[]): Promise<void>[] {
    const byCfg = new Map<TracingConfig, SpanRecord[]>();
    for (const s of batch) {
      const list = byCfg.get(s.cfg);
      if (list === undefined) byCfg.set(s.cfg, [s]);
      else list.push(s);
    }
    const out: Promise<void>[] = [];
    for (const [cfg, spans] of byCfg) {
      const body = encodeOtlp(spans, opts);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const [n, v] of cfg.headers) headers[n] = v;
      const p = doFetch(cfg.endpoint, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(cfg.timeoutMs),
      })
        .then(async (res) => {
          // Drain the body so the connection is reused.
          await res.arrayBuffer().catch(() => undefined);
          if (!res.ok) throw new Error(`OTLP export to ${cfg.endpoint}: HTTP ${res.status}`);
          exported += spans.length;
        })
        .catch((err: unknown) => {
          failedExports += 1;
          dropped += spans.length;
          opts.onError?.(err instanceof Error ? err : new Error(String(err)));
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      out.push(p);
    }
    return out;
  }

  return {
    end(ctx: FinishedRequest): void {
      const trace = ctx.trace;
      const cfg = ctx.snapshot.settings.tracing;
      if (trace === null || cfg === undefined) return;
      if (queue.length >= maxQueue) {
        dropped += 1;
        return;
      }
      const ua = rawHeader(ctx.req.rawHeaders, 'user-agent');
      queue.push({
        cfg,
        trace,
        name: operationNameOf(ctx),
        startTimeMs: ctx.startTimeMs,
        durationMs: ctx.endMs - ctx.startMs,
        method: ctx.method,
        url: ctx.scheme + '://' + ctx.authority + ctx.rawUrl,
        status: ctx.status,
        flags: ctx.responseFlags,
        cluster: ctx.clusterName,
        upstreamAddress: ctx.upstreamHost === null ? null : ctx.upstreamHost.hostPort,
        requestId: ctx.requestId === '' ? null : ctx.requestId,
        userAgent: ua,
        peer: peerOf(ctx),
        requestBytes: ctx.requestBytes,
        responseBytes: ctx.responseBytes,
        protocol: 'HTTP/' + ctx.req.httpVersion,
      });
      schedule();
    },
    flush,
    async close(): Promise<void> {
      await flush();
    },
    stats: () => ({ exported, dropped, failedExports }),
  };
}

function peerOf(ctx: FinishedRequest): string {
  const a = ctx.req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

// ---------------------------------------------------------------- OTLP/HTTP JSON

/** JSON string literal; the common case (nothing to escape) is a concatenation. */
function str(v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || c > 126) return JSON.stringify(v);
  }
  return '"' + v + '"';
}

/** One OTLP KeyValue with a string value. */
function kv(key: string, value: string): string {
  return '{"key":' + str(key) + ',"value":{"stringValue":' + str(value) + '}}';
}

/** Milliseconds since the epoch (fractional) → OTLP's uint64 nanoseconds, as JSON string. */
export function unixNanos(ms: number): string {
  const micros = Math.round(ms * 1000);
  return micros === 0 ? '0' : String(micros) + '000';
}

/** Envoy's 256-character cap on http.url. */
const MAX_URL = 256;

/**
 * OTLP ExportTraceServiceRequest in the protobuf JSON mapping (trace/span ids as hex, times as
 * decimal strings, enums as numbers), written as a string directly: at 100 % sampling the
 * encoding is most of tracing's cost. Tag names are Envoy's HTTP tracer's plus Istio's.
 */
export function encodeOtlp(spans: readonly SpanRecord[], opts: TracerOptions): string {
  const fixed = fixedAttributes(opts);
  let out =
    '{"resourceSpans":[{"resource":{"attributes":[' +
    kv('service.name', opts.serviceName) +
    ',' +
    kv('k8s.namespace.name', opts.namespace) +
    ']},"scopeSpans":[{"scope":{"name":"sluice"},"spans":[';
  for (let i = 0; i < spans.length; i++) out += (i === 0 ? '' : ',') + encodeSpan(spans[i]!, fixed);
  return out + ']}]}]}';
}

/** The attributes every span of this tracer carries, encoded once per tracer. */
const fixedCache = new WeakMap<TracerOptions, string>();
function fixedAttributes(opts: TracerOptions): string {
  let f = fixedCache.get(opts);
  if (f === undefined) {
    f = [
      kv('node_id', opts.nodeId),
      kv('zone', opts.zone ?? ''),
      kv('downstream_cluster', '-'),
      kv('component', 'proxy'),
      kv('istio.canonical_service', opts.canonicalService),
      kv('istio.canonical_revision', opts.canonicalRevision),
      kv('istio.namespace', opts.namespace),
    ].join(',');
    fixedCache.set(opts, f);
  }
  return f;
}

function encodeSpan(s: SpanRecord, fixed: string): string {
  const error = s.status === 0 || s.status >= 500;
  const cluster = s.cluster ?? '-';
  let attrs =
    fixed +
    ',' +
    kv('guid:x-request-id', s.requestId ?? '') +
    ',' +
    kv('http.url', s.url.length > MAX_URL ? s.url.slice(0, MAX_URL) : s.url) +
    ',' +
    kv('http.method', s.method) +
    ',' +
    kv('user_agent', s.userAgent ?? '-') +
    ',' +
    kv('http.protocol', s.protocol) +
    ',' +
    kv('peer.address', s.peer) +
    ',' +
    kv('request_size', String(s.requestBytes)) +
    ',' +
    kv('response_size', String(s.responseBytes)) +
    ',' +
    kv('upstream_cluster', cluster) +
    ',' +
    kv('upstream_cluster.name', cluster) +
    ',' +
    kv('http.status_code', String(s.status)) +
    ',' +
    kv('response_flags', s.flags);
  if (s.upstreamAddress !== null) attrs += ',' + kv('upstream_address', s.upstreamAddress);
  if (error) attrs += ',' + kv('error', 'true');
  const t = s.trace;
  return (
    '{"traceId":"' +
    t.traceId +
    '","spanId":"' +
    t.spanId +
    (t.parentSpanId === '' ? '"' : '","parentSpanId":"' + t.parentSpanId + '"') +
    (t.traceState === '' ? '' : ',"traceState":' + str(t.traceState)) +
    ',"name":' +
    str(s.name) +
    // SPAN_KIND_SERVER
    ',"kind":2,"startTimeUnixNano":"' +
    unixNanos(s.startTimeMs) +
    '","endTimeUnixNano":"' +
    unixNanos(s.startTimeMs + Math.max(0, s.durationMs)) +
    '","attributes":[' +
    attrs +
    // STATUS_CODE_ERROR = 2; unset otherwise
    '],"status":' +
    (error ? '{"code":2}' : '{}') +
    '}'
  );
}

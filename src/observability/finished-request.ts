/**
 * What observability reads of a finished request. dataplane/request-context.ts's RequestContext
 * has all of it; observability may not import dataplane/ or snapshot/ (DESIGN §2), so the shape
 * is restated here structurally and RequestContext satisfies it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Body bytes an HTTP/2 response handed to its stream (the data plane's HTTP/2 response counts
 * them): one connection carries many streams, so the socket's counters cannot say.
 */
export const kStreamBytesSent = Symbol('sluice.streamBytesSent');

/**
 * The header list an HTTP/2 response went out with (flat name/value, names as given): HTTP/1's
 * ServerResponse keeps its head as `_header`, which also counts towards its wire bytes.
 */
export const kSentHeaders = Symbol('sluice.sentHeaders');

/** MeshConfig access log settings (snapshot/types.ts AccessLogSettings). */
export interface AccessLogConfig {
  readonly path: string;
  readonly encoding: 'TEXT' | 'JSON';
  readonly format: string | null;
}

/** MeshConfig tracing settings (snapshot/types.ts TracingSettings). */
export interface TracingConfig {
  readonly provider: string;
  readonly endpoint: string;
  readonly samplingPercentage: number;
  readonly timeoutMs: number;
  readonly headers: readonly (readonly [name: string, value: string])[];
}

export interface ObservedSettings {
  /** MeshConfig gatewayTopology.numTrustedProxies: who the client is (DP-1). */
  readonly numTrustedProxies: number;
  readonly accessLog?: AccessLogConfig;
  readonly tracing?: TracingConfig;
}

/** Trace state of a sampled request (tracing.ts startTrace). */
export interface TraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** This request's (server) span: 16 hex digits; also the parent id the upstream sees. */
  readonly spanId: string;
  /** The caller's span id from traceparent, '' for a new trace. */
  readonly parentSpanId: string;
  /** The caller's tracestate, '' when none. */
  readonly traceState: string;
}

export interface FinishedRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly snapshot: { readonly settings: ObservedSettings };
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly authority: string;
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly port: number;
  readonly rawUrl: string;
  /** x-request-id: assigned before routing (DP-1), so local replies have one too; '' before. */
  readonly requestId: string;
  readonly startTimeMs: number;
  readonly startMs: number;
  readonly route: {
    readonly name: string;
    readonly source: { readonly ruleName: string | null } | null;
  } | null;
  readonly clusterName: string | null;
  readonly upstreamHost: { readonly hostPort: string } | null;
  readonly status: number;
  readonly responseFlags: string;
  readonly responseDetails: string;
  readonly attempts: number;
  readonly upstreamServiceTimeMs: number;
  /** Upstream request headers as sent (flat name/value list), null when nothing was forwarded. */
  readonly fwd: { readonly headers: readonly string[] } | null;
  readonly trace: TraceContext | null;
  /** gRPC requests: the status seen and message counts each way (DP-7); null otherwise. */
  readonly grpc: {
    readonly status: string | null;
    readonly requests: { readonly messages: number };
    readonly responses: { readonly messages: number };
  } | null;
  /** Envoy's `transport failure reason` of a failed upstream TLS connection (DR-8), else null. */
  readonly transportFailureReason: string | null;
  /** Filled by the observer when the request is done (request-observer.ts). */
  endMs: number;
  /** Bytes on the wire, head + body (Istio's request.total_size / response.total_size). */
  requestBytes: number;
  responseBytes: number;
}

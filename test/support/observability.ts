/**
 * Helpers for the observability integration tests: a Prometheus text parser, a metrics HTTP
 * endpoint serving a real prom-client registry, and a loopback OTLP/HTTP receiver.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { until } from './until.ts';

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Prometheus text exposition → samples (comments skipped; label values unescaped). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    const name = brace < 0 ? line.slice(0, space) : line.slice(0, brace);
    const labels: Record<string, string> = {};
    if (brace >= 0) {
      const body = line.slice(brace + 1, line.lastIndexOf('}'));
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      for (const m of body.matchAll(re))
        labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name, labels, value: Number(line.slice(space + 1)) });
  }
  return out;
}

/** Sum of samples named `name` whose labels include every `where` pair. */
export function sumOf(samples: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

export interface MetricsEndpoint {
  readonly url: string;
  close(): Promise<void>;
}

/** `GET /stats/prometheus` serving `registry` on 127.0.0.1:0, as the metrics port does. */
export async function serveRegistry(registry: Registry): Promise<MetricsEndpoint> {
  const server = createServer((req, res) => {
    if (req.url !== '/stats/prometheus') {
      res.writeHead(404).end();
      return;
    }
    void registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/stats/prometheus`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface OtlpReceiver {
  readonly port: number;
  /** Every request body received, parsed. */
  readonly bodies: unknown[];
  /** Every span of every body, flattened. */
  spans(): OtlpSpan[];
  /** Paths and content types of the requests received. */
  readonly requests: { path: string; contentType: string }[];
  close(): Promise<void>;
}

export interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly traceState?: string;
  readonly name: string;
  readonly kind: number;
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly attributes: { key: string; value: { stringValue?: string } }[];
  readonly status: { code?: number };
}

/** A loopback OTLP/HTTP JSON receiver (what an OpenTelemetry collector's otlp/http receiver takes). */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const bodies: unknown[] = [];
  const requests: { path: string; contentType: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', contentType: String(req.headers['content-type'] ?? '') });
      try {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  const port = await listen(server);
  return {
    port,
    bodies,
    requests,
    spans(): OtlpSpan[] {
      const out: OtlpSpan[] = [];
      for (const b of bodies as { resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[] }[]) {
        for (const rs of b.resourceSpans ?? [])
          for (const ss of rs.scopeSpans ?? []) out.push(...(ss.spans ?? []));
      }
      return out;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An attribute's string value on a span, or undefined. */
export function attr(span: OtlpSpan, key: string): string | undefined {
  return span.attributes.find((a) => a.key === key)?.value.stringValue;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

/** `until` for a value: resolves to the first non-null result of `fn`. */
export async function untilValue<T>(
  fn: () => Promise<T | null> | T | null,
  opts: Parameters<typeof until>[1] = {},
): Promise<T> {
  const v = await until(fn, opts);
  return v as T;
}

/**
 * The config the observability tests share: a Gateway on 8080 for every host, a STATIC
 * ServiceEntry `shop.default.svc.cluster.local` on 127.0.0.1:upPort, a VirtualService for
 * shop.example.com whose `http` rules default to one route to it, optional extra documents, and an
 * optional MeshConfig spec (indented YAML lines).
 */
export function shopYaml(opts: { upPort: number; http?: string; extra?: string; mesh?: string }): string {
  const http = opts.http ?? '    - route: [{ destination: { host: shop.default.svc.cluster.local } }]';
  const mesh =
    opts.mesh === undefined || opts.mesh === ''
      ? ''
      : `---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
${opts.mesh}
`;
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8080, name: http, protocol: HTTP }
      hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.default.svc.cluster.local]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${opts.upPort} } }]
---
${opts.extra ?? ''}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/gw]
  http:
${http}
${mesh}`;
}

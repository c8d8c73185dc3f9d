/**
 * Traces end to end (issue 4 item 7, DP-1): trace headers reach the upstream untouched; with an
 * OpenTelemetry provider in MeshConfig a SERVER span with Envoy's tag names reaches a real
 * loopback OTLP/HTTP receiver, and the upstream sees this span as its parent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { snapshotFromYaml, startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { closedPort, startEcho, type EchoBody } from '../support/upstreams.ts';
import { until } from '../support/until.ts';
import {
  attr,
  shopYaml,
  startOtlpReceiver,
  untilValue,
  type OtlpReceiver,
} from '../support/observability.ts';
import { createTracer, type Tracer } from '../../src/observability/tracing.ts';
import { createRequestObserver } from '../../src/observability/request-observer.ts';
import type { FinishedRequest } from '../../src/observability/finished-request.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function yamlFor(upPort: number, mesh: string): string {
  return shopYaml({ upPort, mesh });
}

function otelMesh(receiverPort: number, percent: number, extra = ''): string {
  return `  extensionProviders:
    - name: otel
      opentelemetry:
        service: 127.0.0.1
        port: ${receiverPort}
        http: { path: /v1/traces, timeout: 2s }
  tracing: { provider: otel, randomSamplingPercentage: ${percent} }
${extra}`;
}

interface Setup {
  g: TestGateway;
  tracer: Tracer;
  receiver: OtlpReceiver;
  ended: FinishedRequest[];
}

async function setup(mesh: (receiverPort: number) => string): Promise<Setup> {
  const up = await startEcho({ name: 'shop' });
  cleanups.push(() => up.close());
  const receiver = await startOtlpReceiver();
  cleanups.push(() => receiver.close());
  const tracer = createTracer({
    serviceName: 'sluice.istio-system',
    nodeId: 'router~127.0.0.1~sluice-test.istio-system~istio-system.svc.cluster.local',
    namespace: 'istio-system',
    canonicalService: 'sluice',
    canonicalRevision: 'latest',
    flushIntervalMs: 20,
  });
  cleanups.push(() => tracer.close());
  // Count what reaches the tracer: with tracing off nothing may.
  const ended: FinishedRequest[] = [];
  const spy: Tracer = { ...tracer, end: (ctx) => (ended.push(ctx), tracer.end(ctx)) };
  const g = await startGatewayWithSnapshot(snapshotFromYaml(yamlFor(up.port, mesh(receiver.port))), {
    onRequestDone: createRequestObserver({ accessLog: null, metrics: null, tracing: spy }),
  });
  cleanups.push(() => g.close());
  return { g, tracer, receiver, ended };
}

async function call(g: TestGateway, headers: Record<string, string>): Promise<EchoBody> {
  const res = await request(g.url('/trace/me?x=1'), { headers: { host: 'shop.example.com', ...headers } });
  expect(res.statusCode).toBe(200);
  return JSON.parse(await res.body.text()) as EchoBody;
}

const TRACE_HEADERS = {
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=opaque,other=1',
  'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
  'x-b3-spanid': 'e457b5a2e4d86bd1',
  'x-b3-parentspanid': '05e3ac9a4f6e3b90',
  'x-b3-sampled': '1',
  b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
};

describe('trace context pass-through (DP-1)', () => {
  it('W3C and B3 headers reach the upstream unchanged when no provider is configured; tracing code never runs', async () => {
    const { g, ended } = await setup(() => '');
    const seen = await call(g, TRACE_HEADERS);
    for (const [k, v] of Object.entries(TRACE_HEADERS)) expect(seen.headers[k], k).toBe(v);
    expect(ended).toHaveLength(0);
  });

  it('x-request-id passes through from a trusted hop; for an external client the gateway makes one (DP-1)', async () => {
    const trusted = await setup(() => '  gatewayTopology: { numTrustedProxies: 1 }\n');
    const id = 'c0ffee00-1111-4222-8333-444455556666';
    expect(
      (await call(trusted.g, { 'x-request-id': id, 'x-forwarded-for': '203.0.113.9' })).headers[
        'x-request-id'
      ],
    ).toBe(id);
    const external = await setup(() => '');
    const made = (await call(external.g, { 'x-request-id': id })).headers['x-request-id'];
    expect(made).toMatch(/^[0-9a-f-]{36}$/);
    expect(made).not.toBe(id);
  });
});

describe('OpenTelemetry spans over OTLP/HTTP', () => {
  it('a sampled request: server span with Envoy tags at the receiver; the upstream sees this span as parent', async () => {
    const { g, receiver } = await setup((p) => otelMesh(p, 100));
    const seen = await call(g, { ...TRACE_HEADERS, 'user-agent': 'trace-test' });

    const spans = await untilValue(() => (receiver.spans().length >= 1 ? receiver.spans() : null), {
      what: 'one span at the OTLP receiver',
    });
    expect(receiver.requests[0]).toEqual({ path: '/v1/traces', contentType: 'application/json' });
    const span = spans[0]!;
    expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(span.parentSpanId).toBe('00f067aa0ba902b7');
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.kind).toBe(2);
    expect(span.traceState).toBe('vendor=opaque,other=1');
    expect(span.name).toBe('shop.default.svc.cluster.local:80/*');
    expect(BigInt(span.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(span.startTimeUnixNano));
    expect(attr(span, 'http.method')).toBe('GET');
    expect(attr(span, 'http.url')).toBe(`http://shop.example.com/trace/me?x=1`);
    expect(attr(span, 'http.status_code')).toBe('200');
    expect(attr(span, 'http.protocol')).toBe('HTTP/1.1');
    expect(attr(span, 'upstream_cluster')).toBe('outbound|80||shop.default.svc.cluster.local');
    expect(attr(span, 'response_flags')).toBe('-');
    expect(attr(span, 'user_agent')).toBe('trace-test');
    expect(attr(span, 'component')).toBe('proxy');
    expect(attr(span, 'node_id')).toContain('sluice-test');
    expect(attr(span, 'zone')).toBe('');
    expect(attr(span, 'guid:x-request-id')).toBe(seen.headers['x-request-id']);
    expect(attr(span, 'upstream_address')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(attr(span, 'error')).toBeUndefined();
    const resource = (
      receiver.bodies[0] as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue: string } }[] } }[];
      }
    ).resourceSpans[0]!.resource.attributes;
    expect(resource.find((a) => a.key === 'service.name')?.value.stringValue).toBe('sluice.istio-system');

    // Propagation: same trace, this span as parent; tracestate and B3 untouched.
    expect(seen.headers['traceparent']).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${span.spanId}-01`);
    expect(seen.headers['tracestate']).toBe(TRACE_HEADERS.tracestate);
    expect(seen.headers['x-b3-traceid']).toBe(TRACE_HEADERS['x-b3-traceid']);
    expect(seen.headers['b3']).toBe(TRACE_HEADERS.b3);
  });

  it('a new trace when the client sends none; a caller that says "not sampled" is obeyed', async () => {
    const { g, receiver, tracer } = await setup((p) => otelMesh(p, 100));
    const fresh = await call(g, {});
    expect(fresh.headers['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const notSampled = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    const kept = await call(g, { traceparent: notSampled });
    expect(kept.headers['traceparent']).toBe(notSampled);
    await until(() => receiver.spans().length >= 1, { what: 'the fresh span' });
    await tracer.flush();
    const spans = receiver.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]!.parentSpanId).toBeUndefined();
    expect(fresh.headers['traceparent']).toBe(`00-${spans[0]!.traceId}-${spans[0]!.spanId}-01`);
  });

  it('0 % sampling: no span and no traceparent added', async () => {
    const { g, receiver, tracer, ended } = await setup((p) => otelMesh(p, 0));
    for (let i = 0; i < 5; i++) expect((await call(g, {})).headers['traceparent']).toBeUndefined();
    await tracer.flush();
    expect(receiver.spans()).toHaveLength(0);
    expect(ended).toHaveLength(0);
  });

  it('a 5xx is an error span, after a reload changed the route', async () => {
    const { g, receiver } = await setup((p) => otelMesh(p, 100));
    // Point the route at a closed port through a reload: a 503 UF.
    await g.gateway.apply(snapshotFromYaml(yamlFor(await closedPort(), otelMesh(receiver.port, 100))));
    const res = await request(g.url('/'), { headers: { host: 'shop.example.com' } });
    await res.body.text();
    expect(res.statusCode).toBe(503);
    const span = await until(() => receiver.spans()[0] ?? null, { what: 'the 503 span' });
    expect(attr(span, 'http.status_code')).toBe('503');
    expect(attr(span, 'response_flags')).toMatch(/^UF/);
    expect(attr(span, 'error')).toBe('true');
    expect(span.status.code).toBe(2);
  });
});

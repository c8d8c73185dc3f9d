/**
 * Trace context: W3C traceparent parsing, sampling as Envoy's OpenTelemetry tracer decides it,
 * propagation by rewriting the forwarded traceparent, OTLP JSON encoding.
 */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import {
  createTracer,
  encodeOtlp,
  parseTraceparent,
  startTrace,
  unixNanos,
} from '../../../src/observability/tracing.ts';
import type { TracingConfig } from '../../../src/observability/finished-request.ts';
import { fakeRequest } from './fake-request.ts';

const CFG: TracingConfig = {
  provider: 'otel',
  endpoint: 'http://collector:4318/v1/traces',
  samplingPercentage: 100,
  timeoutMs: 1000,
  headers: [['x-tenant', 't1']],
};

function req(rawHeaders: string[]): IncomingMessage {
  return { rawHeaders } as unknown as IncomingMessage;
}

describe('traceparent', () => {
  it('parses version 00 and rejects malformed or all-zero ids', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      sampled: true,
    });
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')!.sampled).toBe(false);
    expect(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01')).toBeNull();
    expect(parseTraceparent('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('garbage')).toBeNull();
    // A later version may append fields.
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')).not.toBeNull();
  });
});

describe('startTrace', () => {
  it('sampled parent: same trace, new span id, forwarded traceparent rewritten, tracestate kept', () => {
    const raw = [
      'Traceparent',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'tracestate',
      'a=1',
    ];
    const t = startTrace(req(raw), { ...CFG, samplingPercentage: 0 })!;
    expect(t.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(t.parentSpanId).toBe('00f067aa0ba902b7');
    expect(t.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(t.traceState).toBe('a=1');
    expect(raw).toEqual(['Traceparent', `00-${t.traceId}-${t.spanId}-01`, 'tracestate', 'a=1']);
  });

  it('unsampled parent: no span, headers untouched', () => {
    const raw = ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'];
    expect(startTrace(req(raw), CFG)).toBeNull();
    expect(raw[1]).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00');
  });

  it('no parent: randomSamplingPercentage decides; a sampled new trace adds traceparent', () => {
    const none: string[] = [];
    expect(startTrace(req(none), { ...CFG, samplingPercentage: 0 })).toBeNull();
    expect(none).toEqual([]);
    const raw: string[] = [];
    const t = startTrace(req(raw), CFG)!;
    expect(t.parentSpanId).toBe('');
    expect(raw).toEqual(['traceparent', `00-${t.traceId}-${t.spanId}-01`]);
    let sampled = 0;
    for (let i = 0; i < 2000; i++)
      if (startTrace(req([]), { ...CFG, samplingPercentage: 25 }) !== null) sampled++;
    // Binomial(2000, 0.25): mean 500, sd ~19.4; 5 sd either side.
    expect(sampled).toBeGreaterThan(400);
    expect(sampled).toBeLessThan(600);
  });
});

describe('OTLP export', () => {
  it('nanosecond timestamps as decimal strings', () => {
    expect(unixNanos(1764032523456.789)).toBe('1764032523456789000');
    expect(unixNanos(0)).toBe('0');
  });

  it('batches by size and timer, posts JSON with the provider headers, counts failures', async () => {
    const posts: { url: string; init: RequestInit }[] = [];
    let fail = false;
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      posts.push({ url: String(url), init: init! });
      return new Response('{}', { status: fail ? 503 : 200 });
    }) as typeof fetch;
    const errors: Error[] = [];
    const tracer = createTracer({
      serviceName: 's.ns',
      nodeId: 'n',
      namespace: 'ns',
      canonicalService: 's',
      canonicalRevision: 'latest',
      maxBatch: 3,
      flushIntervalMs: 60_000,
      fetch: fakeFetch,
      onError: (e) => errors.push(e),
    });
    const traced = () => {
      const r = fakeRequest({ settings: { tracing: CFG } });
      return {
        ...r,
        trace: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), parentSpanId: '', traceState: '' },
      };
    };
    for (let i = 0; i < 3; i++) tracer.end(traced());
    // A full batch goes out on the next turn, without waiting for the timer.
    await new Promise((r) => setImmediate(r));
    await tracer.flush();
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url).toBe(CFG.endpoint);
    expect((posts[0]!.init.headers as Record<string, string>)['x-tenant']).toBe('t1');
    const body = JSON.parse(posts[0]!.init.body as string) as {
      resourceSpans: { scopeSpans: { spans: { kind: number; attributes: { key: string }[] }[] }[] }[];
    };
    const spans = body.resourceSpans[0]!.scopeSpans[0]!.spans;
    expect(spans).toHaveLength(3);
    expect(spans[0]!.kind).toBe(2);
    expect(spans[0]!.attributes.map((a) => a.key)).toEqual(
      expect.arrayContaining([
        'http.method',
        'http.url',
        'http.status_code',
        'upstream_cluster',
        'response_flags',
        'node_id',
        'zone',
        'guid:x-request-id',
      ]),
    );
    fail = true;
    tracer.end(traced());
    await tracer.flush();
    expect(errors[0]!.message).toMatch(/HTTP 503/);
    expect(tracer.stats()).toEqual({ exported: 3, dropped: 1, failedExports: 1 });
    await tracer.close();
  });

  it('the hand-written OTLP JSON stays valid JSON for awkward values', () => {
    const r = fakeRequest({ rawHeaders: ['Host', 'h', 'User-Agent', 'a "quoted" \\ agent \u00e9\n'] });
    const body = encodeOtlp(
      [
        {
          cfg: CFG,
          trace: {
            traceId: 'a'.repeat(32),
            spanId: 'b'.repeat(16),
            parentSpanId: 'c'.repeat(16),
            traceState: 'k="v"',
          },
          name: 'x:80/*',
          startTimeMs: r.startTimeMs,
          durationMs: 1.5,
          method: 'GET',
          url: 'http://h/\u2603',
          status: 0,
          flags: 'DC',
          cluster: null,
          upstreamAddress: null,
          requestId: null,
          userAgent: 'a "quoted" \\ agent \u00e9\n',
          peer: '10.0.0.7',
          requestBytes: 1,
          responseBytes: 2,
          protocol: 'HTTP/1.1',
        },
      ],
      { serviceName: 's', nodeId: 'n', namespace: 'ns', canonicalService: 's', canonicalRevision: 'latest' },
    );
    const parsed = JSON.parse(body) as {
      resourceSpans: {
        scopeSpans: {
          spans: {
            parentSpanId: string;
            traceState: string;
            status: { code?: number };
            attributes: { key: string; value: { stringValue: string } }[];
          }[];
        }[];
      }[];
    };
    const span = parsed.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(span.parentSpanId).toBe('c'.repeat(16));
    expect(span.traceState).toBe('k="v"');
    expect(span.status.code).toBe(2);
    expect(span.attributes.find((a) => a.key === 'user_agent')!.value.stringValue).toBe(
      'a "quoted" \\ agent \u00e9\n',
    );
    expect(span.attributes.find((a) => a.key === 'error')!.value.stringValue).toBe('true');
  });
});

/**
 * DP-7 request metrics: Istio labels from the gateway identity and the cluster name, Envoy's
 * buckets, one precomputed series per cluster + protocol + code + flags.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import {
  createRequestMetrics,
  destinationOf,
  ISTIO_BUCKETS,
  sourceLabelsOf,
} from '../../../src/observability/request-metrics.ts';
import { fakeRequest } from './fake-request.ts';

function setup(): { registry: Registry; metrics: ReturnType<typeof createRequestMetrics> } {
  const registry = new Registry();
  const metrics = createRequestMetrics({
    registry,
    workload: 'sluice',
    namespace: 'edge',
    labels: { istio: 'ingressgateway' },
  });
  return { registry, metrics };
}

async function values(
  registry: Registry,
  name: string,
): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const json = await registry.getMetricsAsJSON();
  return (json.find((m) => m.name === name)?.values ?? []) as {
    labels: Record<string, string | number>;
    value: number;
  }[];
}

describe('DP-7 labels', () => {
  it('destination labels from the cluster name: Kubernetes service hosts split, others kept whole', () => {
    expect(destinationOf('outbound|8080|v1|reviews.bookinfo.svc.cluster.local')).toEqual({
      service: 'reviews.bookinfo.svc.cluster.local',
      name: 'reviews',
      namespace: 'bookinfo',
    });
    expect(destinationOf('outbound|443||api.example.com')).toEqual({
      service: 'api.example.com',
      name: 'api.example.com',
      namespace: 'unknown',
    });
    expect(destinationOf(null)).toEqual({ service: 'unknown', name: 'unknown', namespace: 'unknown' });
  });

  it('source labels follow Istio: canonical name/revision labels, app, version; missing = unknown', () => {
    expect(
      sourceLabelsOf({ registry: new Registry(), workload: 'gw', namespace: 'ns', labels: {} }),
    ).toMatchObject({
      reporter: 'source',
      source_workload: 'gw',
      source_canonical_service: 'gw',
      source_canonical_revision: 'latest',
      source_app: 'unknown',
      source_version: 'unknown',
      source_cluster: 'unknown',
    });
    expect(
      sourceLabelsOf({
        registry: new Registry(),
        workload: 'gw',
        namespace: 'ns',
        labels: { app: 'edge', 'service.istio.io/canonical-revision': 'r7' },
        clusterId: 'Kubernetes',
      }),
    ).toMatchObject({
      source_canonical_service: 'edge',
      source_canonical_revision: 'r7',
      source_cluster: 'Kubernetes',
    });
  });
});

describe('DP-7 recording', () => {
  it('one series per label set; counts, sums and Istio buckets (a value on a bound counts in that bucket)', async () => {
    const { registry, metrics } = setup();
    metrics.record(fakeRequest({ durationMs: 0.5, requestBytes: 100, responseBytes: 1000 }));
    metrics.record(fakeRequest({ durationMs: 3, requestBytes: 100, responseBytes: 1000 }));
    metrics.record(fakeRequest({ status: 503, flags: 'UF', durationMs: 4000000 }));
    metrics.record(fakeRequest({ status: 404, flags: 'NR', cluster: null }));

    const total = await values(registry, 'istio_requests_total');
    expect(
      total.map((v) => [
        v.labels['response_code'],
        v.labels['response_flags'],
        v.labels['destination_service'],
        v.value,
      ]),
    ).toEqual([
      ['200', '-', 'shop.default.svc.cluster.local', 2],
      ['503', 'UF', 'shop.default.svc.cluster.local', 1],
      ['404', 'NR', 'unknown', 1],
    ]);
    const dur = (await values(registry, 'istio_request_duration_milliseconds')) as {
      labels: Record<string, string | number>;
      value: number;
      metricName?: string;
    }[];
    const ok = dur.filter((v) => v.labels['response_code'] === '200' && v.metricName?.endsWith('_bucket'));
    expect(ok.map((v) => v.labels['le'])).toEqual([...ISTIO_BUCKETS, '+Inf']);
    expect(ok.find((v) => v.labels['le'] === 0.5)!.value).toBe(1);
    expect(ok.find((v) => v.labels['le'] === 1)!.value).toBe(1);
    expect(ok.find((v) => v.labels['le'] === 5)!.value).toBe(2);
    const slow = dur.filter((v) => v.labels['response_code'] === '503' && v.metricName?.endsWith('_bucket'));
    expect(slow.find((v) => v.labels['le'] === 3600000)!.value).toBe(0);
    expect(slow.find((v) => v.labels['le'] === '+Inf')!.value).toBe(1);
    const sum = dur.find((v) => v.labels['response_code'] === '200' && v.metricName?.endsWith('_sum'))!;
    expect(sum.value).toBeCloseTo(3.5);
    const rb = (await values(registry, 'istio_response_bytes')) as {
      labels: Record<string, string | number>;
      value: number;
      metricName?: string;
    }[];
    expect(rb.find((v) => v.labels['response_code'] === '200' && v.metricName?.endsWith('_sum'))!.value).toBe(
      2000,
    );
  });

  it('gRPC requests are request_protocol="grpc" with a grpc_response_status', async () => {
    const { registry, metrics } = setup();
    metrics.record(
      fakeRequest({
        rawHeaders: ['Host', 'h', 'Content-Type', 'application/grpc+proto'],
        status: 503,
        flags: 'UH',
      }),
    );
    const [v] = await values(registry, 'istio_requests_total');
    expect(v!.labels).toMatchObject({
      request_protocol: 'grpc',
      grpc_response_status: '14',
      response_flags: 'UH',
    });
  });

  it('TCP counters carry Istio labels without response_code', async () => {
    const { registry, metrics } = setup();
    metrics.tcpOpened('outbound|5432||db.data.svc.cluster.local');
    metrics.tcpClosed('outbound|5432||db.data.svc.cluster.local', '-', 10, 20);
    const [opened] = await values(registry, 'istio_tcp_connections_opened_total');
    expect(opened!.value).toBe(1);
    expect(opened!.labels).toMatchObject({ request_protocol: 'tcp', destination_service_name: 'db' });
    expect(opened!.labels['response_code']).toBeUndefined();
    expect((await values(registry, 'istio_tcp_sent_bytes_total'))[0]!.value).toBe(10);
    expect((await values(registry, 'istio_tcp_received_bytes_total'))[0]!.value).toBe(20);
    expect((await values(registry, 'istio_tcp_connections_closed_total'))[0]!.value).toBe(1);
  });

  it('the text exposition renders the series', async () => {
    const { registry, metrics } = setup();
    metrics.record(fakeRequest());
    const text = await registry.metrics();
    expect(text).toContain('# TYPE istio_requests_total counter');
    expect(text).toContain('# TYPE istio_request_duration_milliseconds histogram');
    expect(text).toMatch(/istio_requests_total\{reporter="source",.*response_code="200".*\} 1/);
    expect(text).toMatch(/istio_request_duration_milliseconds_bucket\{.*le="\+Inf"\} 1/);
  });
});

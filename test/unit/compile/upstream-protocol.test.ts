import { describe, expect, it } from 'vitest';
import { clusterProtocolOf, servicePortProtocol } from '../../../src/compile/upstream-protocol.ts';

describe('Service port protocol (istio/istio kube ConvertProtocol)', () => {
  it.each([
    [{ name: 'grpc' }, 'GRPC'],
    [{ name: 'GRPC-api' }, 'GRPC'],
    [{ name: 'grpc-web-ui' }, 'GRPC-WEB'],
    [{ name: 'http2-x' }, 'HTTP2'],
    [{ name: 'http' }, 'HTTP'],
    [{ name: 'grpcless' }, ''],
    [{ name: 'web' }, ''],
    [{ name: 'http', appProtocol: 'grpc' }, 'GRPC'],
    [{ name: 'grpc', appProtocol: 'http' }, 'HTTP'],
    [{ name: 'web', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    [{ name: 'web', appProtocol: 'kubernetes.io/ws' }, 'HTTP'],
    [{ name: 'web', appProtocol: 'grpc-web' }, 'GRPC-WEB'],
    [{ name: 'grpc', l4: 'UDP' }, 'UDP'],
  ])('%j → %s', (p, want) => {
    expect(
      servicePortProtocol(
        p.name,
        'appProtocol' in p ? p.appProtocol : undefined,
        'l4' in p ? p.l4 : undefined,
      ),
    ).toBe(want);
  });
});

describe('cluster protocol (DP-9: cluster_builder.go, cluster_traffic_policy.go)', () => {
  it.each([
    ['HTTP', undefined, undefined, undefined],
    ['', undefined, 'UPGRADE', undefined],
    ['HTTP', undefined, 'UPGRADE', 'http2'],
    ['GRPC', undefined, undefined, 'http2'],
    ['HTTP2', { h2UpgradePolicy: 'DO_NOT_UPGRADE' }, undefined, 'http2'],
    ['HTTP', { h2UpgradePolicy: 'DO_NOT_UPGRADE' }, 'UPGRADE', undefined],
    ['TCP', { h2UpgradePolicy: 'UPGRADE' }, undefined, 'http2'],
    ['GRPC', { useClientProtocol: true }, undefined, 'client'],
    ['HTTP', { useClientProtocol: true, h2UpgradePolicy: 'UPGRADE' }, undefined, 'client'],
  ] as const)('port %j, http %j, mesh %j → %j', (port, http, mesh, want) => {
    expect(clusterProtocolOf(port, http === undefined ? undefined : { http }, mesh).protocol).toBe(want);
  });

  it('HTTP/2 settings: maxConcurrentStreams and http2KeepAlive; a keep-alive without a timeout waits one interval', () => {
    expect(
      clusterProtocolOf(
        'GRPC',
        { http: { maxConcurrentStreams: 5, http2KeepAlive: { interval: '10s' } } },
        undefined,
      ).http2,
    ).toEqual({ maxConcurrentStreams: 5, keepAliveIntervalMs: 10_000, keepAliveTimeoutMs: 10_000 });
  });
});

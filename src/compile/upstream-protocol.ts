/**
 * Which protocol a cluster speaks to its endpoints (DP-9), as Istio decides it
 * (pilot/pkg/networking/core/cluster_builder.go setUpstreamProtocol, cluster_traffic_policy.go
 * shouldH2Upgrade, applyConnectionPool): HTTP/1.1 unless
 * - `useClientProtocol` is set: the client's protocol (it wins over everything else);
 * - the DestinationRule says `h2UpgradePolicy: UPGRADE` (DO_NOT_UPGRADE keeps HTTP/1.1);
 * - the port's protocol is HTTP2, GRPC or GRPC-WEB;
 * - MeshConfig `h2UpgradePolicy: UPGRADE` and the port is an HTTP port (named, not sniffed).
 */
import type { ConnectionPoolSettings } from '../model/networking.ts';
import type { Http2Settings, UpstreamProtocol } from '../snapshot/types.ts';
import { parseDuration } from '../util/duration.ts';

/** Istio's protocol of a registry port, upper-cased (`GRPC-WEB`); '' when it is not declared. */
export type PortProtocol = string;

const HTTP2_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP2', 'GRPC', 'GRPC-WEB']);
const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const KNOWN: ReadonlySet<string> = new Set([
  'TCP',
  'UDP',
  'GRPC',
  'HTTP',
  'HTTP_PROXY',
  'HTTP2',
  'HTTPS',
  'TLS',
  'MONGO',
  'REDIS',
  'MYSQL',
]);

/**
 * A Kubernetes Service port's protocol (istio/istio pkg/config/kube/conversion.go
 * ConvertProtocol): `appProtocol` if set (with Kubernetes' `kubernetes.io/h2c`, `/ws`, `/wss`),
 * else the port name; `grpc-web…` first, then the part before the first dash.
 */
export function servicePortProtocol(
  name: string | undefined,
  appProtocol: string | undefined,
  l4: string | undefined,
): PortProtocol {
  if (l4 === 'UDP') return 'UDP';
  let n = name ?? '';
  if (appProtocol !== undefined) {
    switch (appProtocol) {
      case 'kubernetes.io/h2c':
        return 'HTTP2';
      case 'kubernetes.io/ws':
        return 'HTTP';
      case 'kubernetes.io/wss':
        return 'HTTPS';
    }
    n = appProtocol;
  }
  if (n.slice(0, 8).toLowerCase() === 'grpc-web') return 'GRPC-WEB';
  const dash = n.indexOf('-');
  const prefix = (dash >= 0 ? n.slice(0, dash) : n).toUpperCase();
  return KNOWN.has(prefix) ? prefix : '';
}

function ms(text: string | undefined): number {
  if (text === undefined) return 0;
  const r = parseDuration(text, { bareSeconds: false });
  return r.ok ? r.ms : 0;
}

export interface ClusterProtocol {
  readonly protocol?: UpstreamProtocol;
  readonly http2?: Http2Settings;
}

export function clusterProtocolOf(
  port: PortProtocol,
  pool: ConnectionPoolSettings | undefined,
  meshPolicy: 'DO_NOT_UPGRADE' | 'UPGRADE' | undefined,
): ClusterProtocol {
  const http = pool?.http;
  let protocol: UpstreamProtocol | null = null;
  if (http?.useClientProtocol === true) protocol = 'client';
  else if (http?.h2UpgradePolicy === 'UPGRADE') protocol = 'http2';
  else if (HTTP2_PROTOCOLS.has(port)) protocol = 'http2';
  else if (http?.h2UpgradePolicy !== 'DO_NOT_UPGRADE' && meshPolicy === 'UPGRADE' && HTTP_PROTOCOLS.has(port))
    protocol = 'http2';
  if (protocol === null) return {};
  const keepAliveIntervalMs = ms(http?.http2KeepAlive?.interval);
  return {
    protocol,
    http2: {
      maxConcurrentStreams: http?.maxConcurrentStreams ?? 0,
      keepAliveIntervalMs,
      // Envoy needs a timeout with an interval; without one the interval doubles as the timeout.
      keepAliveTimeoutMs: ms(http?.http2KeepAlive?.timeout) || keepAliveIntervalMs,
    },
  };
}

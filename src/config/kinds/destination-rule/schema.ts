import { z } from 'zod';
import type { DestinationRuleSpec, TrafficPolicy } from '../../../model/networking.ts';
import {
  bool,
  double,
  duration,
  int32,
  msg,
  percent,
  str,
  stringMap,
  strList,
  uint32,
} from '../schema-common.ts';

const LoadBalancer = msg({
  simple: z
    .enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'])
    .optional(),
  consistentHash: msg({
    httpHeaderName: str.optional(),
    httpCookie: msg({
      name: str,
      path: str.optional(),
      ttl: duration.optional(),
      attributes: z.array(msg({ name: str, value: str.optional() })).optional(),
    }).optional(),
    useSourceIp: bool.optional(),
    httpQueryParameterName: str.optional(),
    ringHash: msg({ minimumRingSize: uint32.optional() }).optional(),
    maglev: msg({ tableSize: uint32.optional() }).optional(),
    minimumRingSize: uint32.optional(),
  }).optional(),
  localityLbSetting: msg({
    distribute: z
      .array(msg({ from: str.optional(), to: z.record(z.string(), uint32).optional() }))
      .optional(),
    failover: z.array(msg({ from: str.optional(), to: str.optional() })).optional(),
    failoverPriority: strList.optional(),
    enabled: bool.optional(),
  }).optional(),
  warmupDurationSecs: duration.optional(),
  warmup: msg({
    duration: duration.optional(),
    minimumPercent: double.optional(),
    aggression: double.optional(),
  }).optional(),
});

const ConnectionPool = msg({
  tcp: msg({
    maxConnections: int32.optional(),
    connectTimeout: duration.optional(),
    tcpKeepalive: msg({
      probes: uint32.optional(),
      time: duration.optional(),
      interval: duration.optional(),
    }).optional(),
    maxConnectionDuration: duration.optional(),
    idleTimeout: duration.optional(),
  }).optional(),
  http: msg({
    http1MaxPendingRequests: int32.optional(),
    http2MaxRequests: int32.optional(),
    maxRequestsPerConnection: int32.optional(),
    maxRetries: int32.optional(),
    idleTimeout: duration.optional(),
    h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
    useClientProtocol: bool.optional(),
    maxConcurrentStreams: int32.optional(),
    http2KeepAlive: msg({
      time: duration.optional(),
      interval: duration.optional(),
      timeout: duration.optional(),
    }).optional(),
  }).optional(),
});

const OutlierDetection = msg({
  splitExternalLocalOriginErrors: bool.optional(),
  consecutiveLocalOriginFailures: uint32.optional(),
  consecutiveGatewayErrors: uint32.optional(),
  consecutive5xxErrors: uint32.optional(),
  consecutiveErrors: int32.optional(),
  interval: duration.optional(),
  baseEjectionTime: duration.optional(),
  maxEjectionPercent: int32.optional(),
  minHealthPercent: int32.optional(),
});

export const ClientTlsSchema = msg({
  mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
  clientCertificate: str.optional(),
  privateKey: str.optional(),
  caCertificates: str.optional(),
  credentialName: str.optional(),
  subjectAltNames: strList.optional(),
  sni: str.optional(),
  insecureSkipVerify: bool.optional(),
  caCrl: str.optional(),
});

const blocks = {
  loadBalancer: LoadBalancer.optional(),
  connectionPool: ConnectionPool.optional(),
  outlierDetection: OutlierDetection.optional(),
  tls: ClientTlsSchema.optional(),
  tunnel: msg({ protocol: str.optional(), targetHost: str, targetPort: uint32 }).optional(),
  proxyProtocol: msg({ version: z.enum(['V1', 'V2']).optional() }).optional(),
  retryBudget: msg({ percent: percent.optional(), minRetryConcurrency: uint32.optional() }).optional(),
};

const TrafficPolicySchema: z.ZodType<TrafficPolicy> = msg({
  ...blocks,
  portLevelSettings: z
    .array(msg({ port: msg({ number: uint32.optional() }).optional(), ...blocks }))
    .optional(),
});

export const DestinationRuleSpecSchema: z.ZodType<DestinationRuleSpec> = msg({
  host: str,
  trafficPolicy: TrafficPolicySchema.optional(),
  subsets: z
    .array(msg({ name: str, labels: stringMap.optional(), trafficPolicy: TrafficPolicySchema.optional() }))
    .optional(),
  exportTo: strList.optional(),
  workloadSelector: msg({ matchLabels: stringMap.optional() }).optional(),
});

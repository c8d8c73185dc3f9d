/**
 * Hand-built Snapshots for data-plane tests that should not depend on config/ and compile/.
 * Integration tests that go from YAML use test/support/gateway.ts instead.
 */
import type {
  Cluster,
  ForwardAction,
  HeaderOps,
  MatchCondition,
  RequestView,
  RetryPolicy,
  Route,
  RouteAction,
  RouteTable,
  Snapshot,
  VirtualHost,
  WeightedCluster,
} from '../../src/snapshot/types.ts';

export const NO_RETRY: RetryPolicy = {
  attempts: 0,
  perTryTimeoutMs: null,
  retryOn: {
    connectFailure: false,
    refusedStream: false,
    reset: false,
    resetBeforeRequest: false,
    fiveXx: false,
    gatewayError: false,
    retriable4xx: false,
    statusCodes: new Set(),
  },
  backoffBaseMs: 25,
  backoffMaxMs: 250,
  skipTriedHosts: true,
};

/** Istio's default (VS-23): 2 retries on connect-failure/refused-stream. */
export const DEFAULT_RETRY: RetryPolicy = {
  ...NO_RETRY,
  attempts: 2,
  retryOn: { ...NO_RETRY.retryOn, connectFailure: true, refusedStream: true },
};

export function staticCluster(
  host: string,
  endpoints: readonly { address: string; port: number }[],
  over: Partial<Cluster> = {},
): Cluster {
  const port = endpoints[0]?.port ?? 80;
  const key = `test|${host}|${endpoints.map((e) => `${e.address}:${e.port}`).join(',')}`;
  return {
    name: `outbound|${port}||${host}`,
    host,
    port,
    subset: null,
    key,
    stateKey: key,
    endpoints: {
      kind: 'static',
      endpoints: endpoints.map((e) => ({ address: e.address, port: e.port, weight: 1, labels: {} })),
    },
    lb: 'LEAST_REQUEST',
    hashTableSize: 0,
    connectTimeoutMs: 10_000,
    idleTimeoutMs: 3_600_000,
    maxRequestsPerConnection: 0,
    maxConnections: Infinity,
    maxPendingRequests: Infinity,
    maxRequests: Infinity,
    maxRetries: Infinity,
    maxConnectionDurationMs: 0,
    outlier: null,
    ...over,
  };
}

export function prefix(p: string): MatchCondition {
  return { field: 'uri', expected: `prefix ${p}`, test: (req: RequestView) => req.path.startsWith(p) };
}

export function exact(p: string): MatchCondition {
  return { field: 'uri', expected: `exact ${p}`, test: (req: RequestView) => req.path === p };
}

export function forwardTo(
  dests: readonly (readonly [Cluster | null, number] | WeightedCluster)[],
  over: Partial<ForwardAction> = {},
): ForwardAction {
  const destinations: WeightedCluster[] = dests.map((d) =>
    Array.isArray(d)
      ? {
          clusterName:
            (d as [Cluster | null, number])[0]?.name ?? 'outbound|80||missing.default.svc.cluster.local',
          cluster: (d as [Cluster | null, number])[0],
          weight: (d as [Cluster | null, number])[1],
          requestHeaders: null,
          responseHeaders: null,
        }
      : (d as WeightedCluster),
  );
  return {
    kind: 'forward',
    destinations,
    totalWeight: destinations.reduce((s, d) => s + d.weight, 0),
    rewrite: null,
    authority: null,
    timeoutMs: null,
    retry: NO_RETRY,
    hashPolicy: [],
    ...over,
  };
}

export function route(
  name: string,
  conditions: readonly MatchCondition[],
  action: RouteAction,
  headers: { request?: HeaderOps; response?: HeaderOps } = {},
): Route {
  return {
    name,
    source: null,
    conditions,
    action,
    requestHeaders: headers.request ?? null,
    responseHeaders: headers.response ?? null,
  };
}

export function ops(o: Partial<HeaderOps>): HeaderOps {
  return { remove: o.remove ?? [], set: o.set ?? [], add: o.add ?? [] };
}

export function table(port: number, vhosts: Record<string, readonly Route[]>): RouteTable {
  const exactHosts = new Map<string, VirtualHost>();
  const wildcards: { suffix: string; vhost: VirtualHost }[] = [];
  let catchAll: VirtualHost | null = null;
  for (const [name, routes] of Object.entries(vhosts)) {
    const vh: VirtualHost = { name, routes };
    if (name === '*') catchAll = vh;
    else if (name.startsWith('*.')) wildcards.push({ suffix: name.slice(1), vhost: vh });
    else exactHosts.set(name, vh);
  }
  wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  return { name: `http.${port}`, exact: exactHosts, wildcards, catchAll };
}

export function snapshotOf(opts: {
  port?: number;
  vhosts: Record<string, readonly Route[]>;
  settings?: Partial<Snapshot['settings']>;
  hash?: string;
}): Snapshot {
  const port = opts.port ?? 8080;
  const clusters = new Map<string, Cluster>();
  for (const routes of Object.values(opts.vhosts)) {
    for (const r of routes) {
      if (r.action.kind !== 'forward') continue;
      for (const d of r.action.destinations) if (d.cluster) clusters.set(d.cluster.name, d.cluster);
    }
  }
  return {
    hash: opts.hash ?? 'test',
    listeners: new Map([
      [
        port,
        {
          port,
          bind: null,
          protocol: 'HTTP' as const,
          key: `HTTP|${port}`,
          httpTable: table(port, opts.vhosts),
          tlsServers: [],
          servers: [],
        },
      ],
    ]),
    clusters,
    settings: {
      pathNormalization: 'BASE',
      numTrustedProxies: 0,
      outboundTrafficPolicy: 'ALLOW_ANY',
      serverHeader: 'istio-envoy',
      ...opts.settings,
    },
  };
}

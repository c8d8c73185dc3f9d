/**
 * A loopback Envoy rate limit service (`envoy.service.ratelimit.v3.RateLimitService`) on
 * @grpc/grpc-js, as envoyproxy/ratelimit answers: a count per domain and descriptor, each
 * descriptor over its limit (the request's override, else `defaultLimit`) is OVER_LIMIT with the
 * remaining quota and the time to the window's end. It records every request and can be made to
 * hang or fail.
 */
import { fileURLToPath } from 'node:url';
import {
  loadPackageDefinition,
  Server as GrpcServer,
  ServerCredentials,
  status,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export interface RlsDescriptor {
  readonly entries?: readonly { readonly key?: string; readonly value?: string }[];
  readonly limit?: { readonly requestsPerUnit?: number; readonly unit?: number };
}

export interface RlsRequest {
  readonly domain?: string;
  readonly descriptors?: readonly RlsDescriptor[];
}

export interface RateLimitServiceServer {
  readonly port: number;
  readonly requests: RlsRequest[];
  mode: 'ok' | 'hang' | 'unavailable';
  close(): Promise<void>;
}

const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));
const OK = 1;
const OVER_LIMIT = 2;

export async function startRateLimitService(defaultLimit: number): Promise<RateLimitServiceServer> {
  const def = loadSync('envoy/service/ratelimit/v3/rls.proto', {
    includeDirs: [PROTO_ROOT],
    longs: Number,
    enums: Number,
    defaults: false,
  });
  const pkg = loadPackageDefinition(def) as unknown as {
    envoy: { service: { ratelimit: { v3: { RateLimitService: { service: ServiceDefinition } } } } };
  };
  const requests: RlsRequest[] = [];
  const counts = new Map<string, number>();
  const state: { mode: RateLimitServiceServer['mode'] } = { mode: 'ok' };
  const server = new GrpcServer();
  server.addService(pkg.envoy.service.ratelimit.v3.RateLimitService.service, {
    ShouldRateLimit: (
      call: { request: RlsRequest },
      callback: (err: { code: number; details?: string } | null, res?: unknown) => void,
    ) => {
      requests.push(call.request);
      if (state.mode === 'hang') return;
      if (state.mode === 'unavailable') {
        callback({ code: status.UNAVAILABLE, details: 'down for the test' });
        return;
      }
      const statuses = (call.request.descriptors ?? []).map((d) => {
        const name = `${call.request.domain ?? ''}|${(d.entries ?? []).map((e) => `${e.key}=${e.value}`).join(',')}`;
        const limit = d.limit?.requestsPerUnit ?? defaultLimit;
        const n = (counts.get(name) ?? 0) + 1;
        counts.set(name, n);
        return {
          code: n > limit ? OVER_LIMIT : OK,
          currentLimit: { requestsPerUnit: limit, unit: d.limit?.unit ?? 2 },
          limitRemaining: Math.max(0, limit - n),
          durationUntilReset: { seconds: 30 },
        };
      });
      callback(null, {
        overallCode: statuses.some((s) => s.code === OVER_LIMIT) ? OVER_LIMIT : OK,
        statuses,
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    requests,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    close: () =>
      new Promise((resolve) => {
        server.tryShutdown(() => resolve());
        server.forceShutdown();
      }),
  };
}

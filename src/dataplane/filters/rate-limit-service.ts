/**
 * storage Service: Envoy's rate limit service API (`envoy.service.ratelimit.v3.RateLimitService/
 * ShouldRateLimit`) over gRPC, so an existing envoyproxy/ratelimit deployment keeps deciding with
 * its own config. One descriptor per rule, its entries built from the rule's keys with the entry
 * keys Envoy's actions use (`remote_address`, `generic_key`, the header name …); a rule's limit,
 * when the policy states one, goes as the descriptor's limit override. The protos are
 * proto/envoy/service/ratelimit/v3/rls.proto, loaded on first use; one client per endpoint.
 */
import { status as grpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { grpcClients } from './grpc-clients.ts';
import type { CompiledRateLimitRule, RateLimitRequest, RateLimitService } from '../../snapshot/types.ts';
import type { LimitVerdict } from '../../ratelimit/limits.ts';
import { hostSetOf, pickHost } from '../../upstream/endpoints.ts';

const UNIT: Readonly<Record<number, number>> = { 1000: 1, 60_000: 2, 3_600_000: 3, 86_400_000: 4 };
const OVER_LIMIT = 2;

interface DescriptorStatus {
  readonly code?: number;
  readonly limitRemaining?: number;
  readonly durationUntilReset?: { readonly seconds?: number; readonly nanos?: number } | null;
}

interface ShouldRateLimitResponse {
  readonly overallCode?: number;
  readonly statuses?: readonly DescriptorStatus[];
}

type RlsClient = Client & {
  ShouldRateLimit(
    request: unknown,
    options: { deadline: Date },
    callback: (err: ServiceError | null, res?: ShouldRateLimitResponse) => void,
  ): unknown;
};

const services = grpcClients<RlsClient>(
  'envoy/service/ratelimit/v3/rls.proto',
  'envoy.service.ratelimit.v3.RateLimitService',
);

/** Closes the clients of every rate limit service (the gateway closing). */
export function closeRateLimitServiceClients(): void {
  services.close();
}

export class RateLimitServiceError extends Error {}

/** The descriptor a rule sends for this request (its keys were read once already: none is null). */
export function descriptorOf(rule: CompiledRateLimitRule, req: RateLimitRequest): unknown {
  const entries =
    rule.key.length === 0
      ? [{ key: 'generic_key', value: rule.name }]
      : rule.key.map((k) => ({ key: k.descriptorKey, value: k.read(req) ?? '' }));
  const l = rule.limit;
  return l.override === true
    ? { entries, limit: { requestsPerUnit: l.requests, unit: UNIT[l.windowMs] ?? 0 } }
    : { entries };
}

function verdictOf(s: DescriptorStatus | undefined, overall: number | undefined): LimitVerdict {
  const d = s?.durationUntilReset;
  const resetMs = d == null ? 0 : (d.seconds ?? 0) * 1000 + Math.ceil((d.nanos ?? 0) / 1e6);
  return {
    allowed: (s?.code ?? overall) !== OVER_LIMIT,
    remaining: s?.limitRemaining ?? 0,
    resetMs,
  };
}

/** Asks the service about every rule of `checks` in one call; rejects on any failure or the timeout. */
export async function askRateLimitService(
  service: RateLimitService,
  checks: readonly { readonly rule: CompiledRateLimitRule }[],
  req: RateLimitRequest,
): Promise<readonly LimitVerdict[]> {
  const set = await hostSetOf(service.cluster);
  const host = pickHost(set, null);
  if (host === null) throw new RateLimitServiceError(`no endpoint for ${service.authority}`);
  const request = { domain: service.domain, descriptors: checks.map((c) => descriptorOf(c.rule, req)) };
  return new Promise((resolve, reject) => {
    services
      .clientFor(host.hostPort)
      .ShouldRateLimit(request, { deadline: new Date(Date.now() + service.timeoutMs) }, (err, res) => {
        if (err !== null) {
          reject(new RateLimitServiceError(`gRPC ${grpcStatus[err.code] ?? err.code}: ${err.details}`));
          return;
        }
        const statuses = res?.statuses ?? [];
        resolve(checks.map((_c, i) => verdictOf(statuses[i], res?.overallCode)));
      });
  });
}

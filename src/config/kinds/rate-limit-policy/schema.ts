import { z } from 'zod';
import type { RateLimitPolicySpec } from '../../../model/sluice.ts';
import { ConditionSchema, OperationSchema } from '../authorization-policy/schema.ts';
import { bool, duration, msg, str, strList } from '../schema-common.ts';

const empty = msg({});

const KeySchema = msg({
  remoteAddress: empty.optional(),
  requestHeader: msg({ name: str.min(1) }).optional(),
  requestAuthClaim: str.min(1).optional(),
  host: empty.optional(),
  path: empty.optional(),
  routeName: empty.optional(),
  constant: str.optional(),
});

const RuleSchema = msg({
  name: str.min(1),
  to: z.array(msg({ operation: OperationSchema.optional() })).optional(),
  when: z.array(ConditionSchema).optional(),
  key: z.array(KeySchema).optional(),
  algorithm: z.enum(['FixedWindow', 'SlidingWindow', 'TokenBucket']).optional(),
  limit: msg({
    requests: z.int().min(1).max(1_000_000_000).optional(),
    unit: z.enum(['Second', 'Minute', 'Hour', 'Day']).optional(),
    burst: z.int().min(1).max(1_000_000_000).optional(),
    inFlight: z.int().min(1).max(1_000_000_000).optional(),
  }).optional(),
  exempt: msg({ remoteIpBlocks: strList.optional() }).optional(),
  shadowMode: bool.optional(),
});

export const RateLimitPolicySpecSchema: z.ZodType<RateLimitPolicySpec> = msg({
  targetRefs: z.array(
    msg({ group: str.optional(), kind: str.min(1), name: str.min(1), sectionName: str.min(1).optional() }),
  ),
  phase: z.enum(['AfterAuth', 'BeforeAuth']).optional(),
  storage: z.enum(['Local', 'Global', 'Service']).optional(),
  service: msg({
    host: str.min(1),
    port: z.int().min(1).max(65535),
    domain: str.min(1),
    timeout: duration.optional(),
  }).optional(),
  failureMode: z.enum(['Open', 'Closed']).optional(),
  responseHeaders: z.enum(['None', 'Draft', 'XRateLimit']).optional(),
  rules: z.array(RuleSchema),
}) as unknown as z.ZodType<RateLimitPolicySpec>;

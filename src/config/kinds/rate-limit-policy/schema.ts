import { z } from 'zod';
import type { RateLimitPolicySpec } from '../../../model/sluice.ts';

/** Shape owned by the rate-limit work; only "a map" is checked here. */
export const RateLimitPolicySpecSchema: z.ZodType<RateLimitPolicySpec> = z.record(z.string(), z.unknown());

import { z } from 'zod';
import type { RequestAuthenticationSpec } from '../../../model/security.ts';
import { bool, duration, msg, str, stringMap, strList } from '../schema-common.ts';

export const WorkloadSelectorSchema = msg({ matchLabels: stringMap.optional() });

export const PolicyTargetRefSchema = msg({
  group: str.optional(),
  kind: str.optional(),
  name: str.optional(),
  namespace: str.optional(),
});

export const RequestAuthenticationSpecSchema: z.ZodType<RequestAuthenticationSpec> = msg({
  selector: WorkloadSelectorSchema.optional(),
  targetRef: PolicyTargetRefSchema.optional(),
  targetRefs: z.array(PolicyTargetRefSchema).optional(),
  jwtRules: z
    .array(
      msg({
        issuer: str,
        audiences: strList.optional(),
        jwksUri: str.optional(),
        jwks: str.optional(),
        fromHeaders: z.array(msg({ name: str, prefix: str.optional() })).optional(),
        fromParams: strList.optional(),
        fromCookies: strList.optional(),
        outputPayloadToHeader: str.optional(),
        forwardOriginalToken: bool.optional(),
        outputClaimToHeaders: z.array(msg({ header: str, claim: str })).optional(),
        timeout: duration.optional(),
        spaceDelimitedClaims: strList.optional(),
        presence: z.enum(['OPTIONAL', 'REQUIRED']).optional(),
      }),
    )
    .optional(),
});

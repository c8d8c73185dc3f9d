import { z } from 'zod';
import type { MeshConfigSpec } from '../../../model/sluice.ts';
import { duration, str, uint32 } from '../schema-common.ts';
import { redisUrlProblem } from '../../../util/redis-url.ts';

const record = z.record(z.string(), z.unknown());

export const MeshConfigSpecSchema: z.ZodType<MeshConfigSpec> = z.strictObject({
  outboundTrafficPolicy: z
    .strictObject({ mode: z.enum(['ALLOW_ANY', 'REGISTRY_ONLY']).optional() })
    .optional(),
  accessLogFile: str.optional(),
  accessLogEncoding: z.enum(['TEXT', 'JSON']).optional(),
  accessLogFormat: str.optional(),
  gatewayTopology: z
    .strictObject({ numTrustedProxies: uint32.optional(), proxyProtocol: record.optional() })
    .optional(),
  pathNormalization: z
    .strictObject({
      normalization: z
        .enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'])
        .optional(),
    })
    .optional(),
  extensionProviders: z.array(record).optional(),
  defaultHttpRetryPolicy: record.optional(),
  rootNamespace: str.optional(),
  // Strict on purpose: a typo here would silently fall back to file coordination.
  redis: z
    .strictObject({
      url: str.superRefine((url, ctx) => {
        const problem = redisUrlProblem(url);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      }),
      keyPrefix: str.optional(),
      timeout: duration.optional(),
    })
    .optional(),
  acme: z
    .strictObject({
      issuers: z
        .array(
          z.strictObject({
            name: str.min(1),
            directoryUrl: z.url({ protocol: /^https?$/ }),
            email: str.optional(),
            contact: z.array(str).optional(),
            accountKeySecret: str.min(1).optional(),
            accountKeyFile: str.min(1).optional(),
            eab: z.strictObject({ kid: str.min(1), hmacKey: str.min(1) }).optional(),
            caBundle: str.min(1).optional(),
            challenge: z.enum(['http-01', 'tls-alpn-01']).optional(),
            keyType: z.enum(['ECDSA', 'RSA']).optional(),
          }),
        )
        .superRefine((issuers, ctx) => {
          const seen = new Set<string>();
          issuers.forEach((issuer, i) => {
            if (seen.has(issuer.name))
              ctx.addIssue({
                code: 'custom',
                path: [i, 'name'],
                message: `duplicate issuer name ${JSON.stringify(issuer.name)}`,
              });
            seen.add(issuer.name);
          });
        })
        .optional(),
    })
    .optional(),
  egressProxy: z
    .strictObject({ port: z.int().min(1).max(65535).optional(), learn: z.boolean().optional() })
    .optional(),
  h2UpgradePolicy: z.enum(['DO_NOT_UPGRADE', 'UPGRADE']).optional(),
  tracing: z
    .strictObject({
      provider: str.optional(),
      randomSamplingPercentage: z.number().min(0).max(100).optional(),
    })
    .optional(),
  shadowHostSuffix: z.boolean().optional(),
});

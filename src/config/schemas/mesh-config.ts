import { z } from 'zod';
import type { MeshConfigSpec } from '../../model/sluice.ts';
import { str, uint32 } from './common.ts';

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
  redis: record.optional(),
  acme: record.optional(),
  egressProxyPort: z.int().min(1).max(65535).optional(),
});

import { z } from 'zod';
import type { ServiceSpec } from '../../../model/kube.ts';
import { stringMap } from '../schema-common.ts';

/** Kubernetes Service, as sluice uses it; fields it does not read pass through unchecked. */
export const ServiceSpecSchema: z.ZodType<ServiceSpec> = z.looseObject({
  type: z.string().optional(),
  selector: stringMap.optional(),
  ports: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: z.int().min(1).max(65535),
        targetPort: z.union([z.int().min(1).max(65535), z.string()]).optional(),
        protocol: z.string().optional(),
        appProtocol: z.string().optional(),
      }),
    )
    .optional()
    .transform((p) => p ?? []),
  clusterIP: z.string().optional(),
  externalName: z.string().optional(),
});

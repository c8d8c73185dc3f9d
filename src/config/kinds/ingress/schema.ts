import { z } from 'zod';
import type { IngressSpec } from '../../../model/kube.ts';

/** networking.k8s.io/v1 Ingress: shape only here; config/ingress/ interprets rules and annotations. */
export const IngressSpecSchema: z.ZodType<IngressSpec> = z.looseObject({
  ingressClassName: z.string().optional(),
  defaultBackend: z.unknown().optional(),
  tls: z
    .array(z.looseObject({ hosts: z.array(z.string()).optional(), secretName: z.string().optional() }))
    .optional(),
  rules: z.array(z.unknown()).optional(),
});

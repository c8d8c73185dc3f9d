import { z } from 'zod';
import type { IngressBackend, IngressClassSpec, IngressSpec } from '../../../model/kube.ts';

const backend: z.ZodType<IngressBackend> = z.looseObject({
  service: z
    .looseObject({
      name: z.string().min(1),
      port: z
        .looseObject({ number: z.int().min(1).max(65535).optional(), name: z.string().optional() })
        .optional(),
    })
    .optional(),
  resource: z.record(z.string(), z.unknown()).optional(),
});

/** networking.k8s.io/v1 Ingress: shape only here; config/ingress/ interprets rules and annotations. */
export const IngressSpecSchema: z.ZodType<IngressSpec> = z.looseObject({
  ingressClassName: z.string().optional(),
  defaultBackend: backend.optional(),
  tls: z
    .array(z.looseObject({ hosts: z.array(z.string()).optional(), secretName: z.string().optional() }))
    .optional(),
  rules: z
    .array(
      z.looseObject({
        host: z.string().optional(),
        http: z
          .looseObject({
            paths: z.array(
              z.looseObject({
                path: z.string().optional(),
                pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific']),
                backend,
              }),
            ),
          })
          .optional(),
      }),
    )
    .optional(),
});

/** networking.k8s.io/v1 IngressClass: only the controller is read (and the default-class annotation). */
export const IngressClassSpecSchema: z.ZodType<IngressClassSpec> = z
  .looseObject({ controller: z.string().optional() })
  .optional()
  .transform((s) => s ?? {});

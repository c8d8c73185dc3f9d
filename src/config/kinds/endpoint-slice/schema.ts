import { z } from 'zod';
import type { EndpointSliceSpec } from '../../../model/kube.ts';
import { metadata } from '../schema-common.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export const EndpointSliceDocumentSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata,
  addressType: z.string().optional(),
  endpoints: z
    .array(
      z.looseObject({
        addresses: z.array(z.string()),
        conditions: z
          .looseObject({
            ready: z.boolean().optional(),
            serving: z.boolean().optional(),
            terminating: z.boolean().optional(),
          })
          .optional(),
        zone: z.string().optional(),
        nodeName: z.string().optional(),
        targetRef: z
          .looseObject({
            kind: z.string().optional(),
            name: z.string().optional(),
            namespace: z.string().optional(),
          })
          .optional(),
      }),
    )
    .nullish(),
  ports: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: z.int().min(1).max(65535),
        protocol: z.string().optional(),
        appProtocol: z.string().optional(),
      }),
    )
    .nullish(),
});

export function endpointSliceSpec(doc: z.output<typeof EndpointSliceDocumentSchema>): EndpointSliceSpec {
  return {
    serviceName: doc.metadata.labels?.[SERVICE_NAME_LABEL] ?? '',
    ...(doc.addressType !== undefined ? { addressType: doc.addressType } : {}),
    endpoints: doc.endpoints ?? [],
    ports: doc.ports ?? [],
  };
}

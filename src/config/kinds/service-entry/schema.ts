import { z } from 'zod';
import type { ServiceEntrySpec } from '../../../model/networking.ts';
import { msg, protocol, str, stringMap, strList, uint32 } from '../schema-common.ts';

export const ServiceEntrySpecSchema: z.ZodType<ServiceEntrySpec> = msg({
  hosts: strList,
  addresses: strList.optional(),
  ports: z
    .array(msg({ number: uint32, protocol: protocol.optional(), name: str, targetPort: uint32.optional() }))
    .optional(),
  location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
  resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']).optional(),
  endpoints: z
    .array(
      msg({
        address: str.optional(),
        ports: z.record(z.string(), uint32).optional(),
        labels: stringMap.optional(),
        network: str.optional(),
        locality: str.optional(),
        weight: uint32.optional(),
        serviceAccount: str.optional(),
      }),
    )
    .optional(),
  workloadSelector: msg({ labels: stringMap.optional() }).optional(),
  exportTo: strList.optional(),
  subjectAltNames: strList.optional(),
});

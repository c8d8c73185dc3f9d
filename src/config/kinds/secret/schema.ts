import { z } from 'zod';
import { privateBytes, type PrivateBytes } from '../../../model/private-bytes.ts';
import type { SecretSpec } from '../../../model/kube.ts';
import { metadata } from '../schema-common.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Never echoes a value: a Secret's data is key material. */
const base64Value = z.string().check(
  z.superRefine((s, ctx) => {
    const compact = s.replace(/\s+/g, '');
    if (!BASE64.test(compact) || compact.length % 4 !== 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be base64 (standard alphabet, padded); the value is not shown',
      });
    }
  }),
);

export const SecretDocumentSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata,
  type: z.string().optional(),
  data: z.record(z.string(), base64Value).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});

export function secretSpec(doc: z.output<typeof SecretDocumentSchema>): SecretSpec {
  const data: Record<string, PrivateBytes> = {};
  for (const [k, v] of Object.entries(doc.data ?? {})) data[k] = privateBytes(v.replace(/\s+/g, ''));
  // Kubernetes merges stringData over data on write; do the same.
  for (const [k, v] of Object.entries(doc.stringData ?? {}))
    data[k] = privateBytes(Buffer.from(v, 'utf8').toString('base64'));
  return { ...(doc.type !== undefined ? { type: doc.type } : {}), data };
}

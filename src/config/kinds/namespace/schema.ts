import { z } from 'zod';
import type { NamespaceSpec } from '../../../model/kube.ts';

/** Namespaces matter only by name and labels (AuthorizationPolicy namespace checks). */
export const NamespaceSpecSchema: z.ZodType<NamespaceSpec> = z
  .looseObject({})
  .optional()
  .transform(() => ({}) as NamespaceSpec);

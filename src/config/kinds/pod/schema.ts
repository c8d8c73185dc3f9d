import { z } from 'zod';
import type { PodSpec } from '../../../model/kube.ts';

/**
 * Pods matter only by namespace, name and labels: an EndpointSlice endpoint's `targetRef` names
 * its Pod, whose labels DestinationRule subsets select.
 */
export const PodSpecSchema: z.ZodType<PodSpec> = z
  .looseObject({})
  .optional()
  .transform(() => ({}) as PodSpec);

import type { EndpointSliceSpec } from '../../../model/kube.ts';
import type { Findings } from '../rules-common.ts';

/** EndpointSlice: slices without a Service are unused. */

export function validateEndpointSlice(spec: EndpointSliceSpec, f: Findings): void {
  if (spec.serviceName === '') {
    f.warn(
      ['metadata', 'labels'],
      'no kubernetes.io/service-name label: these endpoints belong to no Service and are unused',
    );
  }
}

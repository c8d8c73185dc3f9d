import type { Destination, VirtualServiceSpec } from '../../model/networking.ts';

/** A destination of a VirtualService with the field path it was written at. */
export interface DestinationAt {
  readonly destination: Destination;
  readonly path: string;
  readonly mirror: boolean;
}

/** Route destinations of tcp, tls and http rules, in Istio's order (getRouteDestinations). */
export function routeDestinations(vs: VirtualServiceSpec): DestinationAt[] {
  const out: DestinationAt[] = [];
  const push = (
    proto: string,
    routes: readonly { route?: readonly { destination?: Destination }[] }[] | undefined,
  ): void => {
    (routes ?? []).forEach((rule, i) => {
      (rule.route ?? []).forEach((rd, j) => {
        if (rd.destination)
          out.push({
            destination: rd.destination,
            path: `spec.${proto}[${i}].route[${j}].destination`,
            mirror: false,
          });
      });
    });
  };
  push('tcp', vs.tcp);
  push('tls', vs.tls);
  push('http', vs.http);
  return out;
}

/** `mirror` and `mirrors[].destination` of each http rule. */
export function mirrorDestinations(vs: VirtualServiceSpec): DestinationAt[] {
  const out: DestinationAt[] = [];
  (vs.http ?? []).forEach((rule, i) => {
    if (rule.mirror) out.push({ destination: rule.mirror, path: `spec.http[${i}].mirror`, mirror: true });
    (rule.mirrors ?? []).forEach((m, j) => {
      if (m.destination)
        out.push({
          destination: m.destination,
          path: `spec.http[${i}].mirrors[${j}].destination`,
          mirror: true,
        });
    });
  });
  return out;
}

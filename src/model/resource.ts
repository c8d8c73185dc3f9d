/**
 * A validated configuration resource. Model values are plain, readonly, JSON-safe data: no
 * functions, no RegExp, no class instances, so a ResourceSet can be hashed, dumped and shipped
 * to worker processes as it is.
 */

import type { DiagnosticSubject } from '../errors/diagnostic.ts';
import type { Origin } from '../errors/origin.ts';

export type { Origin } from '../errors/origin.ts';
export { formatOrigin } from '../errors/origin.ts';

export type Kind =
  | 'Gateway'
  | 'VirtualService'
  | 'DestinationRule'
  | 'ServiceEntry'
  | 'RequestAuthentication'
  | 'AuthorizationPolicy'
  | 'Secret'
  | 'Service'
  | 'EndpointSlice'
  | 'Ingress'
  | 'IngressClass'
  | 'Namespace'
  | 'Pod'
  | 'MeshConfig'
  | 'RateLimitPolicy';

export interface Resource<K extends Kind = Kind, S = unknown> {
  readonly kind: K;
  /** group/version as written, e.g. networking.istio.io/v1beta1; kinds are unified across versions. */
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** RFC 3339, when the source had one; ordering falls back to name, namespace (VS-5, GW-2). */
  readonly creationTimestamp?: string;
  readonly origin: Origin;
  /** Normalised, validated spec of the kind (see networking.ts, security.ts, kube.ts, sluice.ts). */
  readonly spec: S;
}

/** namespace/name within one kind. */
export type ResourceKey = `${string}/${string}`;

export function resourceKey(r: { namespace: string; name: string }): ResourceKey {
  return `${r.namespace}/${r.name}`;
}

/** Everything one provider pass produced, in a stable order (origin order for files). */
export interface ResourceSet {
  readonly resources: readonly Resource[];
}

/** What a diagnostic about `r` names: where it was read, kind, namespace (when it has one), name. */
export function subjectOfResource(r: Resource): DiagnosticSubject {
  return {
    origin: r.origin,
    kind: r.kind,
    ...(r.namespace !== '' ? { namespace: r.namespace } : {}),
    name: r.name,
  };
}

import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { ResourceSet } from '../../model/resource.ts';
import { translateIngresses, type IngressOptions } from './translate.ts';

export {
  DEFAULT_INGRESS_OPTIONS,
  GENERATED_FROM,
  INGRESS_GATEWAY_NAME,
  ingressesOfClass,
  ingressSecretRefs,
  MTLS_CLIENT_CA,
  MTLS_CREDENTIAL,
  MTLS_VERIFY,
  translateIngresses,
  type IngressOptions,
  type IngressTranslation,
} from './translate.ts';

/**
 * The set with the Istio resources its Ingresses translate to added after the documents, and
 * what the translation had to say. Every provider calls this on the whole set it read, so an
 * Ingress is served the same from files and from the Kubernetes API.
 */
export function withIngresses(
  set: ResourceSet,
  opts: IngressOptions,
): { readonly resources: ResourceSet; readonly diagnostics: readonly Diagnostic[] } {
  const t = translateIngresses(set, opts);
  if (t.resources.length === 0) return { resources: set, diagnostics: t.diagnostics };
  return { resources: { resources: [...set.resources, ...t.resources] }, diagnostics: t.diagnostics };
}

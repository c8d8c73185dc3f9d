/**
 * ingress-nginx's custom-http-errors / default-backend on a route translated from an Ingress, as
 * the data plane's ErrorPages: the default backend resolved once into a forward action of its own
 * and the fixed X-* headers of its requests built once (upstream/error-pages.ts sends them).
 */
import type { Destination, IngressNginxRoute } from '../model/networking.ts';
import type { Cluster, ErrorPages, ForwardAction } from '../snapshot/types.ts';

export function compileErrorPages(
  pages: NonNullable<IngressNginxRoute['errorPages']>,
  route: ForwardAction,
  resolve: (d: Destination) => { readonly clusterName: string; readonly cluster: Cluster | null },
): ErrorPages {
  let backend: ForwardAction | null = null;
  if (pages.backend !== null) {
    const resolved = resolve(pages.backend);
    backend = {
      kind: 'forward',
      destinations: [
        {
          clusterName: resolved.clusterName,
          cluster: resolved.cluster,
          weight: 1,
          requestHeaders: null,
          responseHeaders: null,
        },
      ],
      totalWeight: 1,
      rewrite: null,
      authority: null,
      timeoutMs: null,
      retry: route.retry,
      hashPolicy: [],
      ...(route.readTimeoutMs !== undefined ? { readTimeoutMs: route.readTimeoutMs } : {}),
    };
  }
  return {
    codes: new Set(pages.codes),
    upstreamResponses: pages.upstreamResponses,
    backend,
    headers: [
      'x-namespace',
      pages.namespace,
      'x-ingress-name',
      pages.ingress,
      'x-service-name',
      pages.service,
      'x-service-port',
      pages.servicePort,
    ],
  };
}

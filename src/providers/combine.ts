/**
 * `serve --kubernetes` with `--config` beside it: the Kubernetes API's objects and the config
 * files (with --certs-dir credentials) read as one set. A Secret from the API wins over a
 * --certs-dir credential of the same name, as a document's does; an object defined both in a file
 * and in the API is taken from the file (the local copy is the deliberate one) and the API's copy
 * is an error on it, so it is left out while the rest keeps serving.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import { formatOrigin, type Resource } from '../model/resource.ts';
import { isIstioMesh } from './kubernetes/objects.ts';
import type { Provider, ProviderUpdate } from './provider.ts';

const keyOf = (r: Resource): string => `${r.kind}\u0000${r.namespace}\u0000${r.name}`;

export function combineProviders(files: Provider, api: Provider): Provider {
  return {
    async start(changed) {
      await files.start(changed);
      await api.start(changed);
    },
    onHealth(listener) {
      api.onHealth?.(listener);
    },
    report: (diagnostics) => api.report?.(diagnostics) ?? Promise.resolve(),
    async read(): Promise<ProviderUpdate> {
      const [local, remote] = await Promise.all([files.read(), api.read()]);
      if (remote.incomplete !== undefined) return remote;
      const fromFiles = new Map<string, Resource>();
      for (const r of local.resources.resources)
        if (r.annotations['sluice.dev/source'] !== 'certs-dir') fromFiles.set(keyOf(r), r);
      const diagnostics: Diagnostic[] = [...local.diagnostics, ...remote.diagnostics];
      const resources: Resource[] = [];
      const fromApi = new Set<string>();
      for (const r of remote.resources.resources) {
        const file = fromFiles.get(keyOf(r));
        if (file === undefined) {
          resources.push(r);
          fromApi.add(keyOf(r));
          continue;
        }
        diagnostics.push({
          level: 'error',
          code: 'SLUICE_CONFIG_DUPLICATE',
          subject: { origin: r.origin, kind: r.kind, namespace: r.namespace, name: r.name },
          related: { origin: file.origin, kind: file.kind, namespace: file.namespace, name: file.name },
          message: `${r.kind} ${r.namespace}/${r.name} is also defined in ${formatOrigin(file.origin)}; the file's copy is used`,
        });
      }
      for (const r of local.resources.resources)
        if (r.annotations['sluice.dev/source'] !== 'certs-dir' || !fromApi.has(keyOf(r))) resources.push(r);
      // MeshConfigs merge first wins per field: Istio's ConfigMap yields to every MeshConfig written for sluice.
      const istioMesh = resources.filter(isIstioMesh);
      return {
        resources: { resources: [...resources.filter((r) => !isIstioMesh(r)), ...istioMesh] },
        diagnostics,
        ...(local.files !== undefined ? { files: local.files } : {}),
        authoritative: true,
      };
    },
    async stop() {
      await Promise.all([files.stop(), api.stop()]);
    },
  };
}

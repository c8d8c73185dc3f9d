/**
 * `status.loadBalancer` of the Ingresses sluice serves (`--write-status`, by the Lease holder), as
 * ingress-nginx's `--update-status` writes it, so `kubectl get ingress` shows the address and
 * tools waiting on it (external-dns, cert-manager's HTTP-01 solver, Argo CD health) proceed. The
 * address is `--publish-status-address` when given, else the one of `--publish-service NS/NAME`
 * (ingress-nginx's statusAddressFromService: a LoadBalancer's `status.loadBalancer.ingress` and
 * `externalIPs`, a NodePort's `externalIPs` else its cluster IP, a ClusterIP's cluster IP, an
 * ExternalName's name), else nothing is written. Written by server-side apply of the status
 * subresource (field manager sluice), only when it changes; an Ingress that leaves the class gets
 * an empty apply, which removes the address sluice wrote.
 */
import { isIP } from 'node:net';
import type { KubeClient, KubeObject } from './client.ts';
import { applyStatus } from './status.ts';

export interface PublishOptions {
  /** --publish-status-address: the addresses themselves. */
  readonly addresses?: readonly string[];
  /** --publish-service: the Service whose address the Ingresses get. */
  readonly service?: { readonly namespace: string; readonly name: string };
}

export type LoadBalancerIngress = { readonly ip: string } | { readonly hostname: string };

export const entryOf = (address: string): LoadBalancerIngress =>
  isIP(address) !== 0 ? { ip: address } : { hostname: address };

/** The addresses a Service publishes, as ingress-nginx reads them. */
export function serviceAddresses(svc: KubeObject | undefined): LoadBalancerIngress[] {
  if (svc === undefined) return [];
  const spec = (svc.spec ?? {}) as {
    type?: string;
    clusterIP?: string;
    externalIPs?: string[];
    externalName?: string;
  };
  const external = (spec.externalIPs ?? []).map(entryOf);
  const clusterIp =
    spec.clusterIP !== undefined && spec.clusterIP !== 'None' ? [entryOf(spec.clusterIP)] : [];
  switch (spec.type ?? 'ClusterIP') {
    case 'ExternalName':
      return spec.externalName !== undefined ? [entryOf(spec.externalName)] : [];
    case 'NodePort':
      return external.length > 0 ? external : clusterIp;
    case 'LoadBalancer': {
      const lb = (
        (svc.status as { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } })?.loadBalancer
          ?.ingress ?? []
      ).flatMap((i): LoadBalancerIngress[] =>
        i.ip !== undefined ? [{ ip: i.ip }] : i.hostname !== undefined ? [{ hostname: i.hostname }] : [],
      );
      return [...lb, ...external];
    }
    default:
      return clusterIp;
  }
}

/** A served Ingress from the API: where it lives and at which version it is read. */
export interface PublishedIngress {
  readonly namespace: string;
  readonly name: string;
  readonly apiVersion: string;
}

export interface IngressStatusWriter {
  /** Writes what changed: `ingresses` get `addresses`, Ingresses written before and not listed are cleared. */
  publish(ingresses: readonly PublishedIngress[], addresses: readonly LoadBalancerIngress[]): Promise<void>;
}

export function createIngressStatusWriter(
  client: KubeClient,
  opts: { readonly isLeader: () => boolean; readonly warn: (msg: string) => void },
): IngressStatusWriter {
  /** `namespace/name` → the status written (JSON) and the version it was written at. */
  const written = new Map<string, { readonly text: string; readonly apiVersion: string }>();
  return {
    async publish(ingresses, addresses) {
      if (!opts.isLeader()) return;
      const status = addresses.length > 0 ? { loadBalancer: { ingress: [...addresses] } } : {};
      const text = JSON.stringify(status);
      const work: Promise<void>[] = [];
      const write = (ing: PublishedIngress, s: Record<string, unknown>, t: string): void => {
        const key = `${ing.namespace}/${ing.name}`;
        work.push(
          applyStatus(client, ing.apiVersion, 'Ingress', { ...ing, resource: 'ingresses' }, s).then(
            () => {
              if (t === '{}') written.delete(key);
              else written.set(key, { text: t, apiVersion: ing.apiVersion });
            },
            (err: unknown) => {
              // Deleted since: nothing left to clear.
              if (t === '{}' && (err as { statusCode?: number }).statusCode === 404) written.delete(key);
              else throw err;
            },
          ),
        );
      };
      const served = new Set<string>();
      for (const ing of ingresses) {
        const key = `${ing.namespace}/${ing.name}`;
        served.add(key);
        if ((written.get(key)?.text ?? '{}') !== text) write(ing, status, text);
      }
      for (const [key, w] of written)
        if (!served.has(key)) {
          const [namespace, name] = key.split('/') as [string, string];
          write({ namespace, name, apiVersion: w.apiVersion }, {}, '{}');
        }
      for (const r of await Promise.allSettled(work))
        if (r.status === 'rejected')
          opts.warn(`--write-status (Ingress status): ${(r.reason as Error).message}`);
    },
  };
}

import type { PrivateBytes } from './private-bytes.ts';

/** Kubernetes kinds sluice reads, as it uses them (not the full Kubernetes API). */

export interface SecretSpec {
  readonly type?: string;
  /** Every data key; values stay base64 and redacted when rendered. */
  readonly data: Readonly<Record<string, PrivateBytes>>;
}

export interface ServicePortSpec {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface ServiceSpec {
  readonly type?: string;
  readonly selector?: Readonly<Record<string, string>>;
  readonly ports: readonly ServicePortSpec[];
  readonly clusterIP?: string;
  readonly externalName?: string;
}

export interface EndpointSliceSpec {
  /** kubernetes.io/service-name label of the slice. */
  readonly serviceName: string;
  readonly addressType?: string;
  readonly endpoints: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: {
      readonly ready?: boolean;
      readonly serving?: boolean;
      readonly terminating?: boolean;
    };
    readonly zone?: string;
    readonly nodeName?: string;
    /** The object behind the endpoint: a Pod, whose labels subsets select. */
    readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string };
  }[];
  readonly ports: readonly {
    readonly name?: string;
    readonly port: number;
    readonly protocol?: string;
    readonly appProtocol?: string;
  }[];
}

/** An Ingress backend: a Service port by number or name, or (not served) a resource reference. */
export interface IngressBackend {
  readonly service?: {
    readonly name: string;
    readonly port?: { readonly number?: number; readonly name?: string };
  };
  readonly resource?: Readonly<Record<string, unknown>>;
}

export interface IngressPath {
  readonly path?: string;
  readonly pathType: 'Exact' | 'Prefix' | 'ImplementationSpecific';
  readonly backend: IngressBackend;
}

export interface IngressRule {
  readonly host?: string;
  readonly http?: { readonly paths: readonly IngressPath[] };
}

export interface IngressSpec {
  readonly ingressClassName?: string;
  readonly defaultBackend?: IngressBackend;
  readonly tls?: readonly { readonly hosts?: readonly string[]; readonly secretName?: string }[];
  readonly rules?: readonly IngressRule[];
}

/** networking.k8s.io/v1 IngressClass: which controller serves Ingresses naming it. */
export interface IngressClassSpec {
  readonly controller?: string;
}

export type NamespaceSpec = Readonly<Record<string, never>>;

/** Pods are read for their labels only (resource labels): the endpoints DestinationRule subsets select. */
export type PodSpec = Readonly<Record<string, never>>;

/**
 * Certificate files named by Gateway `serverCertificate`/`privateKey`/`caCertificates` (GW-16) are
 * read by a provider into Secrets of this pseudo-namespace, named by the path as written, with one
 * data key `file`: compile stays pure. The slash keeps it apart from every Kubernetes namespace.
 */
export const FILE_SECRET_NAMESPACE = 'sluice.dev/files';
/** The data key holding a file-path Secret's bytes. */
export const FILE_SECRET_KEY = 'file';

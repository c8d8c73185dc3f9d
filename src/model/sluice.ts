/** sluice's own kinds, group sluice.dev/v1alpha1. */

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** Process-wide settings Istio keeps in meshConfig. One MeshConfig per process; several merge, first wins per field. */
export interface MeshConfigSpec {
  readonly outboundTrafficPolicy?: { readonly mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
  /** "/dev/stdout", a file path, or "" for off (Istio's default). */
  readonly accessLogFile?: string;
  readonly accessLogEncoding?: 'TEXT' | 'JSON';
  readonly accessLogFormat?: string;
  readonly gatewayTopology?: { readonly numTrustedProxies?: number; readonly proxyProtocol?: Readonly<Record<string, unknown>> };
  /** DEFAULT is BASE (AP-9). */
  readonly pathNormalization?: { readonly normalization?: 'DEFAULT' | PathNormalization };
  readonly extensionProviders?: readonly Readonly<Record<string, unknown>>[];
  readonly defaultHttpRetryPolicy?: Readonly<Record<string, unknown>>;
  readonly rootNamespace?: string;
  readonly redis?: Readonly<Record<string, unknown>>;
  readonly acme?: Readonly<Record<string, unknown>>;
  readonly egressProxyPort?: number;
}

export type RateLimitPolicySpec = Readonly<Record<string, unknown>>;

/** Who this gateway is: Gateway and policy selectors are matched against it (GW-1). */
export interface GatewayIdentity {
  /** The gateway workload's namespace (--namespace); credentialName Secrets live here (GW-15). */
  readonly namespace: string;
  /** The gateway workload's labels (--labels). */
  readonly labels: Readonly<Record<string, string>>;
  /** Istio's root namespace for mesh-wide policy (default istio-system). */
  readonly rootNamespace: string;
}

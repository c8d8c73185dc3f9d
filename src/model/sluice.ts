/** sluice's own kinds, group sluice.dev/v1alpha1. */
import type { RedisTarget } from '../util/redis-client.ts';
import type { Condition, Operation } from './security.ts';

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** Process-wide settings Istio keeps in meshConfig. One MeshConfig per process; several merge, first wins per field. */
export interface MeshConfigSpec {
  readonly outboundTrafficPolicy?: { readonly mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
  /** "/dev/stdout", a file path, or "" for off (Istio's default). */
  readonly accessLogFile?: string;
  readonly accessLogEncoding?: 'TEXT' | 'JSON';
  readonly accessLogFormat?: string;
  readonly gatewayTopology?: {
    readonly numTrustedProxies?: number;
    readonly proxyProtocol?: Readonly<Record<string, unknown>>;
  };
  /** DEFAULT is BASE (AP-9). */
  readonly pathNormalization?: { readonly normalization?: 'DEFAULT' | PathNormalization };
  readonly extensionProviders?: readonly Readonly<Record<string, unknown>>[];
  readonly defaultHttpRetryPolicy?: Readonly<Record<string, unknown>>;
  readonly rootNamespace?: string;
  readonly redis?: RedisSettings;
  readonly acme?: AcmeSettings;
  /**
   * sluice: the explicit forward proxy (absolute-form HTTP and CONNECT) enforcing the ServiceEntry
   * allowlist; `--egress-proxy-port` wins over `port`. `learn`: blocked destinations are recorded
   * for `sluice egress suggest` (still blocked).
   */
  readonly egressProxy?: { readonly port?: number; readonly learn?: boolean };
  /** Mesh-wide default for HTTP ports' upstream protocol (DP-9); DestinationRules override it. */
  readonly h2UpgradePolicy?: 'DO_NOT_UPGRADE' | 'UPGRADE';
  /**
   * sluice: which `extensionProviders` entry (an `opentelemetry` provider) receives spans, and the
   * share of requests without a sampling decision that are sampled (Istio Telemetry's
   * `tracing[].providers` + `randomSamplingPercentage`; default 1 %, as Istio's).
   */
  readonly tracing?: { readonly provider?: string; readonly randomSamplingPercentage?: number };
  /**
   * sluice: mirrored requests carry `Host: <host>-shadow`, as Istio did before 1.28 (istiod's
   * DISABLE_SHADOW_HOST_SUFFIX=false). Default false: the Host is unchanged, as Istio 1.28+.
   */
  readonly shadowHostSuffix?: boolean;
}

/**
 * The Redis connection sluice shares between replicas: the ACME order lock and challenge answers
 * (providers/acme-lock.ts) and Global rate-limit counters. Without it, ACME coordinates through
 * files in --certs-dir. Exactly one of `url`, `sentinel` and `cluster` names the server(s)
 * (util/redis-client.ts), over TLS with `rediss://` or `tls`; the password comes from the URL,
 * `passwordFile` or `passwordEnv` and never appears in logs or dumps, and `tls` only names its CA
 * file.
 */
export interface RedisSettings extends RedisTarget {
  /** Prepended to every key sluice writes; default `sluice:`. */
  readonly keyPrefix?: string;
  /**
   * How long a request waits for a Global rate-limit answer before the policy's failureMode
   * decides (seconds or a duration string); default 50ms.
   */
  readonly timeout?: string;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'sluice:';

/** The Gateway annotation naming the ACME issuer that supplies its servers' credentials. */
export const ACME_ISSUER_ANNOTATION = 'sluice.dev/acme-issuer';

/** ACME issuers a Gateway names with the annotation `sluice.dev/acme-issuer: NAME` (providers/acme.ts). */
export interface AcmeSettings {
  readonly issuers?: readonly AcmeIssuerSpec[];
}

export type AcmeChallengeType = 'http-01' | 'tls-alpn-01';

export interface AcmeIssuerSpec {
  readonly name: string;
  /** The ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  readonly directoryUrl: string;
  /** Account contact; `email` becomes `mailto:<email>` and is added to `contact`. */
  readonly email?: string;
  readonly contact?: readonly string[];
  /**
   * The account key (PEM, RSA or ECDSA) as the Secret of that name, key `tls.key` (in file mode
   * `--certs-dir/<name>/tls.key`), or as a file path; default `--certs-dir/.acme/<issuer>.account.key`.
   * Made (ECDSA P-256) on first use when absent, as cert-manager does.
   */
  readonly accountKeySecret?: string;
  readonly accountKeyFile?: string;
  /** External account binding (RFC 8555 §7.3.4), as the CA hands it out: key id and base64url HMAC key. */
  readonly eab?: { readonly kid: string; readonly hmacKey: string };
  /** Extra CAs to trust for the directory's HTTPS (e.g. pebble's test CA): PEM text or a PEM file path. */
  readonly caBundle?: string;
  /** Default http-01 (answered on the Gateway's plaintext listeners); tls-alpn-01 on its HTTPS ones. */
  readonly challenge?: AcmeChallengeType;
  /** Key of the issued certificates; default ECDSA (P-256). */
  readonly keyType?: 'ECDSA' | 'RSA';
}

/**
 * sluice's rate limits, written like an Istio security policy: which requests a rule counts
 * (`to`/`when`, AuthorizationPolicy's matching), which bucket (`key`), how many (`limit`).
 */
export interface RateLimitPolicySpec {
  /** Objects in the policy's own namespace: a Gateway, a VirtualService, or one named http route (`sectionName`). */
  readonly targetRefs: readonly RateLimitTargetRef[];
  /** AfterAuth (default): JWT claims can key a limit. BeforeAuth: counted before ext_authz and jwt_authn (Gateway targets only). */
  readonly phase?: 'AfterAuth' | 'BeforeAuth';
  /**
   * Local (default): this process, all its workers. Global: Redis (MeshConfig `redis`), every
   * replica. Service: an Envoy rate limit service (envoyproxy/ratelimit) at `service`.
   */
  readonly storage?: 'Local' | 'Global' | 'Service';
  /** storage Service: where the rate limit service is, and the domain its config is under. */
  readonly service?: RateLimitServiceRef;
  /** What happens when the Global store cannot answer in time: Open (default) limits locally, Closed answers 500. */
  readonly failureMode?: 'Open' | 'Closed';
  /** None (default, as Envoy), Draft (IETF RateLimit / RateLimit-Policy) or XRateLimit (X-RateLimit-*). */
  readonly responseHeaders?: 'None' | 'Draft' | 'XRateLimit';
  readonly rules: readonly RateLimitRuleSpec[];
}

export interface RateLimitServiceRef {
  /** `[<namespace>/]<hostname>`: a Service or ServiceEntry host (as ext_authz providers name theirs). */
  readonly host: string;
  readonly port: number;
  readonly domain: string;
  /** Default 20ms, as Envoy's rate limit filter. */
  readonly timeout?: string;
}

export interface RateLimitTargetRef {
  readonly group?: string;
  readonly kind: string;
  readonly name: string;
  /** VirtualService targets: the http route `name` the policy applies to; absent = every route. */
  readonly sectionName?: string;
}

export type RateLimitUnit = 'Second' | 'Minute' | 'Hour' | 'Day';
export type RateLimitAlgorithm = 'FixedWindow' | 'SlidingWindow' | 'TokenBucket';

export interface RateLimitRuleSpec {
  /** Unique in the policy: the bucket's name, metric label, RateLimit header policy name. */
  readonly name: string;
  /** AuthorizationPolicy `to` and `when` (AP-3, AP-7): the rule counts only requests they match. */
  readonly to?: readonly { readonly operation?: Operation }[];
  readonly when?: readonly Condition[];
  /** One bucket per distinct value of all parts together; absent or empty = one shared bucket. */
  readonly key?: readonly RateLimitKeySpec[];
  /** Default TokenBucket. */
  readonly algorithm?: RateLimitAlgorithm;
  /**
   * `requests` per `unit` (with `burst` for TokenBucket), or `inFlight`: at most that many requests
   * of one bucket being served at once (ingress-nginx `limit-connections`; Local storage only).
   * With storage Service it is optional: absent, the service's own limit applies; set, it is sent
   * as the descriptor's limit override.
   */
  readonly limit?: {
    readonly requests?: number;
    readonly unit?: RateLimitUnit;
    readonly burst?: number;
    readonly inFlight?: number;
  };
  /** Clients never counted by this rule. */
  readonly exempt?: { readonly remoteIpBlocks?: readonly string[] };
  /** Count and report, never reject. */
  readonly shadowMode?: boolean;
}

/** Exactly one field is set. */
export interface RateLimitKeySpec {
  /** The client IP after trusted-proxy handling (`remote.ip`). */
  readonly remoteAddress?: Readonly<Record<string, never>>;
  /** One bucket per value of this request header; a request without it is not counted by the rule. */
  readonly requestHeader?: { readonly name: string };
  /** One bucket per value of this JWT claim (`a.b` or `[a][b]` for nested); no token or no claim = not counted. */
  readonly requestAuthClaim?: string;
  /** The request host (lowercase, no port). */
  readonly host?: Readonly<Record<string, never>>;
  /** The normalised path, without the query. */
  readonly path?: Readonly<Record<string, never>>;
  /** The chosen route's name (VirtualService targets only: a Gateway's rules run before the route is chosen). */
  readonly routeName?: Readonly<Record<string, never>>;
  /** A fixed value: one bucket shared by every request the rule counts. */
  readonly constant?: string;
}

/** Who this gateway is: Gateway and policy selectors are matched against it (GW-1). */
export interface GatewayIdentity {
  /** The gateway workload's namespace (--namespace); credentialName Secrets live here (GW-15). */
  readonly namespace: string;
  /** The gateway workload's labels (--labels). */
  readonly labels: Readonly<Record<string, string>>;
  /** Istio's root namespace for mesh-wide policy (default istio-system). */
  readonly rootNamespace: string;
  /** --egress-proxy-port: the forward proxy's port, over MeshConfig `egressProxy.port`. */
  readonly egressProxyPort?: number | null;
}

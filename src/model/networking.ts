/**
 * networking.istio.io kinds (v1alpha3, v1beta1 and v1 share one shape), as validated and
 * normalised by config/: field names as in the Istio API (JSON/YAML names), optional where the
 * API leaves them optional. Defaults Istio applies are left to compile/, which documents them,
 * except where normalise.ts says otherwise (lowercased hosts, upper-cased protocol names).
 */

import type { PrivateBytes } from './private-bytes.ts';

export type Protocol =
  'HTTP' | 'HTTPS' | 'HTTP2' | 'GRPC' | 'GRPC-WEB' | 'TLS' | 'TCP' | 'MONGO' | 'REDIS' | 'MYSQL' | 'UDP';

// ---------------------------------------------------------------- Gateway

export type ServerTlsMode =
  'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';

export type TlsProtocolVersion = 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';

export interface ServerTlsSettings {
  readonly httpsRedirect?: boolean;
  /** Absent means PASSTHROUGH (GW-6). */
  readonly mode?: ServerTlsMode;
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly caCrl?: string;
  readonly credentialName?: string;
  readonly credentialNames?: readonly string[];
  readonly caCertCredentialName?: string;
  readonly tlsCertificates?: readonly {
    readonly serverCertificate?: string;
    readonly privateKey?: string;
    readonly caCertificates?: string;
  }[];
  readonly subjectAltNames?: readonly string[];
  readonly verifyCertificateSpki?: readonly string[];
  readonly verifyCertificateHash?: readonly string[];
  readonly minProtocolVersion?: TlsProtocolVersion;
  readonly maxProtocolVersion?: TlsProtocolVersion;
  readonly cipherSuites?: readonly string[];
}

export interface GatewayPort {
  readonly number: number;
  /** Upper-cased by normalise. */
  readonly protocol: Protocol;
  readonly name: string;
  readonly targetPort?: number;
}

export interface GatewayServer {
  readonly port: GatewayPort;
  readonly bind?: string;
  /** `[ns/]dnsName` entries, lowercased. */
  readonly hosts: readonly string[];
  readonly tls?: ServerTlsSettings;
  readonly defaultEndpoint?: string;
  readonly name?: string;
}

export interface GatewaySpec {
  readonly servers: readonly GatewayServer[];
  readonly selector?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------- shared match types

/** Exactly one of the three is set. */
export type StringMatch =
  { readonly exact: string } | { readonly prefix: string } | { readonly regex: string };

export interface PortSelector {
  readonly number?: number;
}

export interface Percent {
  readonly value?: number;
}

// ---------------------------------------------------------------- VirtualService

export interface HTTPMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly scheme?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  /** Keys lowercased by normalise. A value `{}` (no exact/prefix/regex) means "present". */
  readonly headers?: Readonly<Record<string, StringMatch | Record<string, never>>>;
  readonly withoutHeaders?: Readonly<Record<string, StringMatch | Record<string, never>>>;
  readonly queryParams?: Readonly<Record<string, StringMatch | Record<string, never>>>;
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
  readonly ignoreUriCase?: boolean;
  readonly statPrefix?: string;
}

export interface Destination {
  readonly host: string;
  readonly subset?: string;
  readonly port?: PortSelector;
}

export interface HeaderOperations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

export interface Headers {
  readonly request?: HeaderOperations;
  readonly response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
  readonly headers?: Headers;
}

export interface HTTPRedirect {
  readonly uri?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  readonly scheme?: string;
  readonly redirectCode?: number;
}

export interface HTTPDirectResponse {
  readonly status: number;
  readonly body?: { readonly string?: string; readonly bytes?: string };
}

export interface RegexRewrite {
  readonly match: string;
  readonly rewrite: string;
}

export interface HTTPRewrite {
  readonly uri?: string;
  readonly authority?: string;
  readonly uriRegexRewrite?: RegexRewrite;
}

export interface HTTPRetry {
  readonly attempts?: number;
  readonly perTryTimeout?: string;
  readonly retryOn?: string;
  readonly retryRemoteLocalities?: boolean;
  readonly retryIgnorePreviousHosts?: boolean;
  readonly backoff?: string;
}

/** gRPC status names a fault `abort.grpcStatus` may use, with their codes (Istio SupportedGRPCStatus). */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

export interface HTTPFaultInjection {
  readonly delay?: {
    readonly fixedDelay?: string;
    readonly exponentialDelay?: string;
    readonly percentage?: Percent;
    readonly percent?: number;
  };
  readonly abort?: {
    readonly httpStatus?: number;
    readonly grpcStatus?: string;
    readonly http2Error?: string;
    readonly percentage?: Percent;
  };
}

export interface CorsPolicy {
  readonly allowOrigins?: readonly StringMatch[];
  readonly allowOrigin?: readonly string[];
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly maxAge?: string;
  readonly allowCredentials?: boolean;
  readonly unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface HTTPMirrorPolicy {
  readonly destination: Destination;
  readonly percentage?: Percent;
}

export interface HTTPRoute {
  readonly name?: string;
  readonly match?: readonly HTTPMatchRequest[];
  readonly route?: readonly HTTPRouteDestination[];
  readonly redirect?: HTTPRedirect;
  readonly directResponse?: HTTPDirectResponse;
  readonly delegate?: { readonly name?: string; readonly namespace?: string };
  readonly rewrite?: HTTPRewrite;
  /** Istio duration string, e.g. "10s". */
  readonly timeout?: string;
  readonly retries?: HTTPRetry;
  readonly fault?: HTTPFaultInjection;
  readonly mirror?: Destination;
  readonly mirrors?: readonly HTTPMirrorPolicy[];
  readonly mirrorPercentage?: Percent;
  /** Legacy `mirror_percent` (whole percent); `mirrorPercentage` wins when both are set. */
  readonly mirrorPercent?: number;
  readonly corsPolicy?: CorsPolicy;
  readonly headers?: Headers;
  /**
   * sluice: what an ingress-nginx Ingress path asks of its route that Istio has no field for. Set
   * only on routes translated from an Ingress (config/ingress/); never read from YAML.
   */
  readonly ingressNginx?: IngressNginxRoute;
}

/** auth-url and its companions (annotations/authreq): nginx's auth_request subrequest. */
export interface IngressExternalAuth {
  /** The auth service URL as written (http or https, path and query kept). */
  readonly url: string;
  /** auth-method; null = the subrequest's own GET. */
  readonly method: string | null;
  readonly signin: string | null;
  /** auth-signin-redirect-param (default `rd`). */
  readonly signinRedirectParam: string;
  /** auth-response-headers, as written. */
  readonly responseHeaders: readonly string[];
  /** auth-request-redirect: X-Auth-Request-Redirect's value; null = the request URI. */
  readonly requestRedirect: string | null;
  readonly alwaysSetCookie: boolean;
}

/** ingress-nginx behaviour kept for routes translated from an Ingress. */
export interface IngressNginxRoute {
  /** proxy-body-size: larger request bodies are answered 413; 0 = no limit. */
  readonly maxBodyBytes: number;
  /**
   * auth-type basic: the users allowed (htpasswd lines `user:hash`, from the auth-secret), and
   * the realm of the 401's `WWW-Authenticate`.
   */
  readonly basicAuth?: { readonly realm: string; readonly htpasswd: PrivateBytes };
  /**
   * auth-tls-*: on the HTTPS listener, nginx's checks of the client certificate the handshake
   * asked for: without a verified one `required` answers 400 (or a 302 to `errorPage`); the
   * upstream gets ssl-client-verify, -subject-dn, -issuer-dn (and ssl-client-cert).
   */
  readonly clientCertificate?: {
    readonly required: boolean;
    readonly errorPage: string | null;
    readonly passCertificate: boolean;
  };
  /** auth-url: every request is first checked by the auth service, as nginx's auth_request. */
  readonly externalAuth?: IngressExternalAuth;
  /** proxy-read-timeout: longest wait for response headers and between body reads (504). */
  readonly readTimeoutMs?: number;
  /**
   * proxy-send-timeout: longest time request body bytes may wait for the upstream to take them
   * (504); a client slow to send does not count.
   */
  readonly sendTimeoutMs?: number;
  /** whitelist-source-range: only these client IPs/CIDRs get through (403 otherwise); absent = any. */
  readonly allowSourceRanges?: readonly string[];
  /** denylist-source-range: these client IPs/CIDRs get 403. */
  readonly denySourceRanges?: readonly string[];
  /**
   * limit-rps / limit-rpm / limit-connections: per client IP, counted per Ingress (`ingress` is
   * its `namespace/name`: every path of it shares the buckets), answered 503. The rates are token
   * buckets of `burst` tokens refilled at `requests` per second or minute, counted in this process
   * (`Local`) or in MeshConfig `redis` (`Global`, sluice.dev/limit-storage); in-flight requests
   * are always counted in this process.
   */
  readonly rateLimit?: {
    readonly ingress: string;
    readonly storage: 'Local' | 'Global';
    readonly perSecond: { readonly requests: number; readonly burst: number } | null;
    readonly perMinute: { readonly requests: number; readonly burst: number } | null;
    /** At most this many requests of one client in flight; 0 = no cap. */
    readonly connections: number;
    readonly exempt: readonly string[];
  };
  /**
   * custom-http-errors / default-backend: upstream answers (and upstream failures, by nginx's code
   * for them) with a listed status are replaced by the default backend's answer to a request
   * carrying X-Code and the rest; while the route's own Service has no endpoints the default
   * backend serves the route. `backend` null = no default backend (ingress-nginx's built-in 404).
   */
  readonly errorPages?: {
    readonly codes: readonly number[];
    /** False with disable-proxy-intercept-errors: only the gateway's own errors are replaced. */
    readonly upstreamResponses: boolean;
    readonly backend: Destination | null;
    /** X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port (the port as the Ingress writes it). */
    readonly namespace: string;
    readonly ingress: string;
    readonly service: string;
    readonly servicePort: string;
  };
}

export interface L4MatchAttributes {
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

export interface RouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
}

export interface TCPRoute {
  readonly match?: readonly L4MatchAttributes[];
  readonly route?: readonly RouteDestination[];
}

export interface TLSMatchAttributes extends L4MatchAttributes {
  readonly sniHosts: readonly string[];
}

export interface TLSRoute {
  readonly match: readonly TLSMatchAttributes[];
  readonly route?: readonly RouteDestination[];
}

export interface VirtualServiceSpec {
  /** Lowercased. */
  readonly hosts: readonly string[];
  /** Absent means ["mesh"] (VS-1). */
  readonly gateways?: readonly string[];
  readonly http?: readonly HTTPRoute[];
  readonly tls?: readonly TLSRoute[];
  readonly tcp?: readonly TCPRoute[];
  readonly exportTo?: readonly string[];
}

// ---------------------------------------------------------------- DestinationRule

export type SimpleLB =
  'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

export interface ConsistentHashLB {
  readonly httpHeaderName?: string;
  readonly httpCookie?: {
    readonly name: string;
    readonly path?: string;
    readonly ttl?: string;
    readonly attributes?: readonly { readonly name: string; readonly value?: string }[];
  };
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: { readonly minimumRingSize?: number };
  readonly maglev?: { readonly tableSize?: number };
  readonly minimumRingSize?: number;
}

export interface LoadBalancerSettings {
  readonly simple?: SimpleLB;
  readonly consistentHash?: ConsistentHashLB;
  readonly localityLbSetting?: Readonly<Record<string, unknown>>;
  readonly warmupDurationSecs?: string;
  readonly warmup?: {
    readonly duration?: string;
    readonly minimumPercent?: number;
    readonly aggression?: number;
  };
}

export interface ConnectionPoolSettings {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    readonly maxConnectionDuration?: string;
    readonly idleTimeout?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
    readonly h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    readonly useClientProtocol?: boolean;
    readonly maxConcurrentStreams?: number;
    readonly http2KeepAlive?: {
      readonly time?: string;
      readonly interval?: string;
      readonly timeout?: string;
    };
  };
}

export interface OutlierDetection {
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly consecutiveLocalOriginFailures?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly consecutive5xxErrors?: number;
  readonly consecutiveErrors?: number;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

export type ClientTlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

export interface ClientTlsSettings {
  readonly mode?: ClientTlsMode;
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: readonly string[];
  readonly sni?: string;
  readonly insecureSkipVerify?: boolean;
  readonly caCrl?: string;
}

export interface TrafficPolicyBlocks {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
  readonly tunnel?: Readonly<Record<string, unknown>>;
  readonly proxyProtocol?: { readonly version?: string };
  readonly retryBudget?: Readonly<Record<string, unknown>>;
}

export interface PortTrafficPolicy extends TrafficPolicyBlocks {
  readonly port?: PortSelector;
}

export interface TrafficPolicy extends TrafficPolicyBlocks {
  readonly portLevelSettings?: readonly PortTrafficPolicy[];
}

export interface Subset {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly Subset[];
  readonly exportTo?: readonly string[];
  readonly workloadSelector?: { readonly matchLabels?: Readonly<Record<string, string>> };
}

// ---------------------------------------------------------------- ServiceEntry

export interface ServicePort {
  readonly number: number;
  readonly protocol?: Protocol;
  readonly name: string;
  readonly targetPort?: number;
}

export interface WorkloadEntrySpec {
  readonly address?: string;
  /** port name → target port */
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly network?: string;
  readonly locality?: string;
  readonly weight?: number;
  readonly serviceAccount?: string;
}

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';

export interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly addresses?: readonly string[];
  readonly ports?: readonly ServicePort[];
  readonly location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  /** Absent means NONE (SE-2). */
  readonly resolution?: Resolution;
  readonly endpoints?: readonly WorkloadEntrySpec[];
  readonly workloadSelector?: { readonly labels?: Readonly<Record<string, string>> };
  readonly exportTo?: readonly string[];
  readonly subjectAltNames?: readonly string[];
}

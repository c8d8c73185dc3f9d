/**
 * The compiled, immutable shape the data plane reads. Built once per config change by compile/,
 * swapped whole by control/, pinned per request. Everything a request needs is precomputed here:
 * maps keyed by the question asked, matchers compiled, clusters referenced directly.
 *
 * Snapshot objects may hold functions and compiled regexes (unlike the model), but never
 * per-request state: balancer counters, pools and DNS answers live in upstream/, keyed by
 * `Cluster.key` and endpoint keys, so they survive snapshot swaps.
 */
import type { TemplatePart } from '../util/command-operators.ts';
import type { IncomingHttpHeaders } from 'node:http';
import type { PathNormalization } from '../model/sluice.ts';
import type { RedisTarget } from '../util/redis-client.ts';

// ---------------------------------------------------------------- request view

/**
 * What matchers see of a request. Built once per request by the data plane (and by
 * `sluice explain` from a URL), with the path already normalised (AP-9).
 */
export interface RequestView {
  readonly method: string;
  readonly scheme: 'http' | 'https';
  /** Raw Host / :authority, port included (VS-8, DP-10). */
  readonly authority: string;
  /** Lowercased host without port: the vhost key (GW-10). */
  readonly host: string;
  /** Normalised path without the query. */
  readonly path: string;
  /** Raw query without the leading '?', '' when none. */
  readonly query: string;
  /** Node's lowercased header object (repeated headers already joined). */
  readonly headers: IncomingHttpHeaders;
  /** The Gateway server port (listener port) the request arrived on. */
  readonly port: number;
  /** Lazily parsed query parameters (first value per key); filled by `queryParamsOf`. */
  queryParams: ReadonlyMap<string, string> | null;
  /** Verified JWT claims once RequestAuthentication has run, else null. */
  claims: Readonly<Record<string, unknown>> | null;
}

// ---------------------------------------------------------------- snapshot

export interface Snapshot {
  /** Content hash of the resource set the snapshot was compiled from. */
  readonly hash: string;
  /** Listeners by port. */
  readonly listeners: ReadonlyMap<number, Listener>;
  /** Every cluster any route references, by name (`outbound|port|subset|host`). */
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly settings: GatewaySettings;
  /** The explicit forward proxy (--egress-proxy-port, MeshConfig egressProxy); absent = off. */
  readonly egress?: EgressPolicy;
}

// ---------------------------------------------------------------- egress

/**
 * The allowlist the forward proxy enforces (dataplane/forward-proxy.ts), compiled from the
 * ServiceEntry registry (SE-1..SE-4): hosts by exact name and longest wildcard suffix, IP
 * literals a ServiceEntry names by `addresses` or STATIC endpoints.
 */
export interface EgressPolicy {
  readonly port: number;
  /** Reconcile key of the proxy listener. */
  readonly key: string;
  /** REGISTRY_ONLY unless MeshConfig says ALLOW_ANY (a sluice decision for the proxy, SE-4). */
  readonly mode: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** MeshConfig `egressProxy.learn`: blocked destinations are recorded for `sluice egress suggest`. */
  readonly learn: boolean;
  readonly exact: ReadonlyMap<string, EgressHost>;
  /** `*.example.com` stored as suffix `.example.com`, longest suffix first. */
  readonly wildcards: readonly { readonly suffix: string; readonly entry: EgressHost }[];
  /** Canonical IP literals named by `addresses` or STATIC endpoints. */
  readonly addresses: ReadonlyMap<string, EgressHost>;
  /** CIDR `addresses`, tested after the exact ones. */
  readonly subnets: readonly {
    readonly test: (ip: string, family: 4 | 6) => boolean;
    readonly entry: EgressHost;
  }[];
  /**
   * Per HTTP port: the routes VirtualServices bound to `mesh` give proxied requests (timeouts,
   * retries, rewrites, headers, faults; DestinationRule TLS origination on their clusters). A host
   * with no vhost here is forwarded directly.
   */
  readonly meshTables: ReadonlyMap<number, RouteTable>;
}

/** One ServiceEntry host (or address) on the allowlist. */
export interface EgressHost {
  /** The host as written (`*.example.com`), or the address. */
  readonly host: string;
  /** `ServiceEntry ns/name`. */
  readonly source: string;
  readonly wildcard: boolean;
  readonly resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  readonly ports: ReadonlyMap<number, EgressPort>;
  /**
   * Where connections go instead of the requested name: STATIC endpoint addresses, or DNS
   * endpoint names to resolve; empty = the requested host itself.
   */
  readonly endpoints: readonly {
    readonly address: string;
    readonly ports: Readonly<Record<string, number>>;
    /** SE-3 `weight` (1 when unset): tunnels and direct requests pick in proportion. */
    readonly weight: number;
  }[];
  /** The endpoints' weights summed. */
  readonly endpointWeight: number;
}

export interface EgressPort {
  readonly number: number;
  readonly name: string;
  /** Upper-case protocol, `TCP` when unset. */
  readonly protocol: string;
  /** Port connected to (targetPort, default `number`); an endpoint's `ports[name]` wins. */
  readonly targetPort: number;
}

/** Where the data plane reads the live snapshot (control/current.ts provides it). */
export interface SnapshotSource {
  get(): Snapshot;
}

export interface GatewaySettings {
  readonly pathNormalization: PathNormalization;
  readonly numTrustedProxies: number;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Value of the `server` response header (DP-2). */
  readonly serverHeader: string;
  /** MeshConfig accessLogFile/Encoding/Format (DP-6); absent when access logging is off. */
  readonly accessLog?: AccessLogSettings;
  /** MeshConfig tracing + its OpenTelemetry extension provider; absent when tracing is off. */
  readonly tracing?: TracingSettings;
  /** MeshConfig `redis` for Global rate limits; absent when no Global rule applies. */
  readonly rateLimitRedis?: RateLimitRedisSettings;
}

/**
 * The Redis a Global rate limit counts in. `target.url` may carry a password (dumps redact it);
 * a passwordFile or passwordEnv is only named here, read when the connection is made.
 */
export interface RateLimitRedisSettings {
  readonly target: RedisTarget;
  readonly keyPrefix: string;
  /** How long a request waits for Redis before failureMode decides. */
  readonly timeoutMs: number;
}

export interface AccessLogSettings {
  /** `/dev/stdout`, `/dev/stderr` or a file path. */
  readonly path: string;
  readonly encoding: 'TEXT' | 'JSON';
  /** accessLogFormat as written; null = Envoy's default for the encoding. */
  readonly format: string | null;
}

export interface TracingSettings {
  /** The extensionProviders entry name. */
  readonly provider: string;
  /** OTLP/HTTP traces endpoint, e.g. `http://otel-collector.observability:4318/v1/traces`. */
  readonly endpoint: string;
  /** 0..100: share of requests without an upstream sampling decision that get a span. */
  readonly samplingPercentage: number;
  readonly timeoutMs: number;
  /** Extra request headers for the collector (provider `http.headers`). */
  readonly headers: readonly (readonly [name: string, value: string])[];
}

/** Plaintext HTTP family (HTTP/1.1 + h2c), terminated HTTPS, TLS passthrough/terminated-to-TCP, TCP. */
export type ListenerProtocol = 'HTTP' | 'HTTPS' | 'TLS' | 'TCP';

export interface Listener {
  readonly port: number;
  /** Address to bind, null for the process-wide --bind. */
  readonly bind: string | null;
  readonly protocol: ListenerProtocol;
  /** Reconcile key: a listener with the same key is kept across a swap. */
  readonly key: string;
  /** Plaintext HTTP: the one table `http.<port>` all plaintext servers share (GW-14). */
  readonly httpTable: RouteTable | null;
  /** Terminated HTTPS servers, each with its own table (GW-14); empty for plaintext. */
  readonly tlsServers: readonly TlsServer[];
  /** The Gateway servers merged into this listener, for explain and dumps. */
  readonly servers: readonly ServerRef[];
  /** PASSTHROUGH servers' VirtualService `tls` routes, in order (first SNI match wins); absent = none. */
  readonly tlsRoutes?: readonly TlsRoute[];
  /** TCP listeners: where every connection goes (the first VirtualService `tcp` rule bound to a server here); null = closed. */
  readonly tcpRoute?: TlsRoute | null;
  /** TCP and TLS passthrough connections: AuthorizationPolicy enforced per connection (AP-8); absent = none. */
  readonly tcpFilters?: readonly RbacFilter[];
}

export interface ServerRef {
  readonly gatewayNamespace: string;
  readonly gatewayName: string;
  readonly serverIndex: number;
  readonly portName: string;
  readonly hosts: readonly string[];
}

/** A terminated TLS server on a port; filled in by the TLS work (SNI, certificates). */
export interface TlsServer {
  readonly server: ServerRef;
  /** SNI names this server answers (namespace dropped, GW-14). */
  readonly sniHosts: readonly string[];
  readonly table: RouteTable;
  /** Name of the credential (secret or file pair) this server presents. */
  readonly credential: string | null;
  /**
   * Resolved TLS settings (compile/tls.ts). Null when the credential is missing or unusable: the
   * server's SNI names then fail the handshake while the other servers keep serving (GW-15).
   */
  readonly tls?: TlsSettings | null;
  /** TLS servers terminated into VirtualService `tcp` routes (GW-5): where the plaintext goes; absent = HTTP. */
  readonly tcpRoute?: TlsRoute | null;
  /** Those servers' connection-level AuthorizationPolicy (AP-8); absent = none. */
  readonly tcpFilters?: readonly RbacFilter[];
}

/** A TLS protocol version as Node names it. */
export type TlsVersionName = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** One certificate chain + key a server presents (two with credentialNames: RSA and ECDSA). */
export interface TlsCredential {
  /** Credential name, or the certificate file path (GW-16). */
  readonly name: string;
  /** Where it came from: `Secret istio-system/x`, `certs-dir x`, `file /etc/certs/x.pem`. */
  readonly source: string;
  /** Full chain, leaf first. */
  readonly certPem: string;
  /** Private key PEM; dumps must never print it (use `fingerprint`). */
  readonly keyPem: string;
  /** sha256 of the leaf certificate DER, hex: `/certs`, logs. */
  readonly fingerprint: string;
  readonly keyType: 'RSA' | 'EC' | 'OTHER';
  readonly subject: string;
  readonly issuer: string;
  readonly dnsNames: readonly string[];
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/** A terminated server's TLS settings (GW-13, GW-15..17), everything a secure context needs. */
export interface TlsSettings {
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL';
  readonly credentials: readonly TlsCredential[];
  /** Client CA bundle (MUTUAL/OPTIONAL_MUTUAL), null for SIMPLE. */
  readonly clientCaPem: string | null;
  /**
   * Certificate revocation lists for the client CA (PEM, one or more `X509 CRL` blocks): Gateway
   * `caCrl` file, or the CA Secret's `ca.crl`/`crl` (GW-15, GW-16); null = no revocation check.
   */
  readonly crlPem: string | null;
  readonly minVersion: TlsVersionName;
  readonly maxVersion: TlsVersionName;
  /** OpenSSL cipher list for TLS ≤1.2; null = Envoy's defaults. */
  readonly ciphers: string | null;
  /** Client certificate checks (GW-17); empty = not checked. */
  readonly subjectAltNames: readonly string[];
  /** base64 sha256 of the client certificate's SubjectPublicKeyInfo. */
  readonly spkiHashes: readonly string[];
  /** hex sha256 of the client certificate DER, lowercase, no colons. */
  readonly certHashes: readonly string[];
  /** Content hash of everything above: secure contexts are cached by it. */
  readonly key: string;
}

/** GW-5 PASSTHROUGH: one VirtualService `tls` route, SNI → destinations over TCP. */
export interface TlsRoute {
  /** `<ns>.<vs>.tls.<i>`. */
  readonly name: string;
  /** Lowercased SNI names; `*.x` wildcards; `*` matches all. */
  readonly sniHosts: readonly string[];
  readonly destinations: readonly TcpDestination[];
  readonly totalWeight: number;
}

export interface TcpDestination {
  readonly clusterName: string;
  readonly cluster: Cluster | null;
  readonly weight: number;
}

/**
 * Vhost lookup for one table: exact host, then the longest wildcard suffix, then `*`, with no
 * fall-through (GW-11). See lookup.ts `findVirtualHost`.
 */
export interface RouteTable {
  /** `http.8080` or `https.443.<portName>.<gw>.<ns>` (GW-14). */
  readonly name: string;
  readonly exact: ReadonlyMap<string, VirtualHost>;
  /** `*.example.com` stored as suffix `.example.com`, longest suffix first. */
  readonly wildcards: readonly { readonly suffix: string; readonly vhost: VirtualHost }[];
  readonly catchAll: VirtualHost | null;
  /** Workload-level filters (security policy selecting this gateway), in order; absent = none. */
  readonly filters?: readonly HttpFilter[];
  /**
   * gRPC-Web requests are bridged to gRPC once routed (Envoy's grpc_web filter, which Istio puts
   * on a listener whose first server's port protocol is GRPC-WEB); absent = not on this table.
   */
  readonly grpcWeb?: true;
}

export interface VirtualHost {
  /** The more specific of server host and VS host (GW-9), e.g. `a.example.com`. */
  readonly name: string;
  readonly routes: readonly Route[];
}

export interface RouteSource {
  readonly vsNamespace: string;
  readonly vsName: string;
  readonly httpIndex: number;
  /** Index into `match`, or -1 for a rule without match. */
  readonly matchIndex: number;
  /** HTTPRoute `name`, if set. */
  readonly ruleName: string | null;
}

export interface Route {
  /** Stable id used in logs and metrics: `<ns>.<vs>.<http index>.<match index>` or the rule name. */
  readonly name: string;
  /** Null for routes sluice makes itself (httpsRedirect). */
  readonly source: RouteSource | null;
  /** All must hold (AND). Empty = matches everything. */
  readonly conditions: readonly MatchCondition[];
  readonly action: RouteAction;
  /** Route-level header operations (VS-21); null when none. */
  readonly requestHeaders: HeaderOps | null;
  readonly responseHeaders: HeaderOps | null;
  /** Filters of this route, run after it is chosen, in order; absent = none (most routes). */
  readonly filters?: readonly HttpFilter[];
}

/**
 * One precompiled test of an HTTPMatchRequest field. `test` runs on the hot path; `field` and
 * `expected` are for explain and dumps (`uri`, `prefix /api`).
 */
export interface MatchCondition {
  readonly field: string;
  readonly expected: string;
  readonly test: (req: RequestView) => boolean;
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

export interface ForwardAction {
  readonly kind: 'forward';
  readonly destinations: readonly WeightedCluster[];
  /** Sum of weights; picks use a random integer in [0, totalWeight). */
  readonly totalWeight: number;
  readonly rewrite: PathRewrite | null;
  /** rewrite.authority (VS-14). */
  readonly authority: string | null;
  /** Route timeout; null = none (VS-22). */
  readonly timeoutMs: number | null;
  readonly retry: RetryPolicy;
  /**
   * Envoy's route hash policy (DR-4): the consistentHash key of each destination whose
   * DestinationRule sets one, in destination order; empty when none. Read only when the chosen
   * cluster balances by RING_HASH or MAGLEV.
   */
  readonly hashPolicy: readonly HashPolicy[];
  /** VS-27 request mirrors, in order; absent = none (most routes). */
  readonly mirrors?: readonly RequestMirror[];
  /**
   * ingress-nginx's proxy-read-timeout on routes translated from an Ingress: the longest wait for
   * the upstream's response headers and between two reads of its body (504 UT); absent = none.
   */
  readonly readTimeoutMs?: number;
  /**
   * ingress-nginx's proxy-send-timeout on routes translated from an Ingress: the longest a write
   * of the request body to the upstream may stay blocked (504 UT); absent = none.
   */
  readonly sendTimeoutMs?: number;
  /** ingress-nginx's custom-http-errors / default-backend; absent = none (most routes). */
  readonly errorPages?: ErrorPages;
}

/**
 * ingress-nginx's error pages on a route from an Ingress (`proxy_intercept_errors on; error_page
 * CODE = @custom_…`): an upstream answer (or nginx's code for an upstream failure) in `codes` is
 * dropped, body unread, and the default backend's answer to a request for `/` with X-Code,
 * X-Format, X-Original-URI and the headers below goes to the client instead; while the route's
 * cluster has no endpoints the request itself goes to the default backend (X-Code 503).
 */
export interface ErrorPages {
  readonly codes: ReadonlySet<number>;
  /** False with disable-proxy-intercept-errors: upstream answers pass, failures are still replaced. */
  readonly upstreamResponses: boolean;
  /**
   * The default backend as a forward of its own (one destination, the route's retries and read
   * timeout, no error pages: nginx does not intercept the error page's answer); null = none, and a
   * listed status gets ingress-nginx's built-in 404.
   */
  readonly backend: ForwardAction | null;
  /** x-namespace, x-ingress-name, x-service-name, x-service-port: flat name/value, built once. */
  readonly headers: readonly string[];
}

/**
 * VS-27: a copy of each request (a share of them) sent to another cluster, fire and forget: its
 * response is drained and dropped, and nothing about it reaches the client (upstream/mirror.ts).
 */
export interface RequestMirror {
  readonly clusterName: string;
  /** Null when no such host/subset/port is known: nothing is mirrored there (Envoy skips it). */
  readonly cluster: Cluster | null;
  /** Share of requests mirrored, in millionths (Envoy's FractionalPercent, MILLION). */
  readonly perMillion: number;
  /** Host gets Istio's old `-shadow` suffix (before the port); off by default since Istio 1.28. */
  readonly shadowHostSuffix: boolean;
}

/** What a consistent-hash key is made of (Istio's consistentHash, Envoy's hash_policy). */
export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string }
  | {
      readonly kind: 'cookie';
      readonly name: string;
      /** Present when the DestinationRule sets a ttl: an absent cookie is then issued (Set-Cookie). */
      readonly issue: CookieIssue | null;
    }
  | { readonly kind: 'source-ip' }
  | { readonly kind: 'query'; readonly name: string };

/** The Set-Cookie a cookie hash policy issues, around the value: `name="` + value + `"; Max-Age=…; HttpOnly`. */
export interface CookieIssue {
  readonly prefix: string;
  readonly suffix: string;
}

export interface WeightedCluster {
  readonly clusterName: string;
  /** Null when no such host/subset/port is known: the request gets 503 NC (VS-19). */
  readonly cluster: Cluster | null;
  readonly weight: number;
  readonly requestHeaders: HeaderOps | null;
  readonly responseHeaders: HeaderOps | null;
}

/** VS-12/VS-13: what replaces the path; the query is always kept. */
export type PathRewrite =
  | {
      readonly kind: 'prefix';
      readonly prefix: string;
      readonly ignoreCase: boolean;
      readonly replacement: string;
    }
  | { readonly kind: 'full'; readonly replacement: string }
  | { readonly kind: 'regex'; readonly pattern: CompiledRegex; readonly replacement: string };

export interface RedirectAction {
  readonly kind: 'redirect';
  /** 301, 302, 303, 307 or 308 (VS-15). */
  readonly code: number;
  readonly scheme: string | null;
  readonly authority: string | null;
  readonly port: number | null;
  readonly derivePort: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT' | null;
  /** Replaces the whole path (and the query when it has one). */
  readonly uri: string | null;
  /** GW-18 httpsRedirect: drop the port only when it is :80. */
  readonly httpsRedirect: boolean;
}

export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body: Uint8Array | null;
}

export interface HeaderOps {
  /** Applied in order: remove, then set (overwrite), then add (append) (VS-21). */
  readonly remove: readonly string[];
  readonly set: readonly (readonly [name: string, value: HeaderValue])[];
  readonly add: readonly (readonly [name: string, value: HeaderValue])[];
}

/** A header value as configured: plain text (`%%` already unescaped), or a template with `%VAR%`s. */
export type HeaderValue = string | HeaderTemplate;

/**
 * VS-21 `%VAR%` substitution: the value's literal text and Envoy command operators, parsed once at
 * compile time; only names in snapshot/header-operators.ts get here. The data plane renders it
 * per request (upstream/header-template.ts); an empty result adds no header, as Envoy does.
 */
export interface HeaderTemplate {
  /** As written in the VirtualService, for dumps. */
  readonly text: string;
  readonly parts: readonly TemplatePart[];
}

export interface RetryPolicy {
  /** Retries after the first try; 0 = off. Istio default 2 (VS-23). */
  readonly attempts: number;
  readonly perTryTimeoutMs: number | null;
  readonly retryOn: RetryOn;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /**
   * A retry avoids endpoints already tried (Envoy's previous_hosts predicate): Istio's default,
   * off for a single destination balanced by consistent hash (VS-25), or as retryIgnorePreviousHosts says.
   */
  readonly skipTriedHosts: boolean;
}

export interface RetryOn {
  readonly connectFailure: boolean;
  readonly refusedStream: boolean;
  readonly reset: boolean;
  readonly resetBeforeRequest: boolean;
  readonly fiveXx: boolean;
  readonly gatewayError: boolean;
  readonly retriable4xx: boolean;
  readonly statusCodes: ReadonlySet<number>;
}

/** A compiled RE2 pattern with full-match semantics; linear time in the input. */
export interface CompiledRegex {
  readonly source: string;
  readonly fullMatch: (input: string) => boolean;
  readonly replaceAll: (input: string, replacement: string) => string;
}

// ---------------------------------------------------------------- clusters

export type LbPolicy = 'LEAST_REQUEST' | 'ROUND_ROBIN' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

/**
 * Envoy's slow start (SlowStartConfig): an endpoint younger than `windowMs` in the cluster has its
 * weight scaled by max(minWeight, (age / window)^(1 / aggression)).
 */
export interface WarmupPolicy {
  readonly windowMs: number;
  readonly aggression: number;
  /** 0..1 (Istio's `minimumPercent` / 100, default 10 %). */
  readonly minWeight: number;
}

/**
 * outlierDetection as Envoy applies it for Istio (DR-7): consecutive counters per endpoint, an
 * ejection as soon as one reaches its threshold, checked for return every `intervalMs`.
 */
export interface OutlierPolicy {
  /** 5xx responses (and, unless split, local failures as 503/504) in a row; 0 = off. */
  readonly consecutive5xx: number;
  /** 502/503/504 in a row; 0 = off. */
  readonly consecutiveGateway: number;
  /** Connect failures, resets and timeouts in a row, counted apart from responses; 0 = not split. */
  readonly consecutiveLocalOrigin: number;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  /** Envoy's max_ejection_time: max(300 s, base). */
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  /** Below this % of usable endpoints, balance over all of them (panic); 0 = never. */
  readonly minHealthPercent: number;
}

export interface Endpoint {
  /** IP address or DNS name. */
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
}

export type EndpointSource =
  /** Fixed addresses (ServiceEntry STATIC, EndpointSlices). */
  | { readonly kind: 'static'; readonly endpoints: readonly Endpoint[] }
  /** Names resolved by DNS at run time (ServiceEntry DNS, or the destination host itself). */
  | { readonly kind: 'dns'; readonly endpoints: readonly Endpoint[]; readonly roundRobin: boolean };

export interface Cluster {
  /** `outbound|<port>|<subset>|<host>` (VS-19). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly subset: string | null;
  /** Identity of the settings that shape pools; equal keys share connections across swaps. */
  readonly key: string;
  /**
   * Identity of the state that outlives a reload: circuit-breaker counts, outlier ejections,
   * balancer cursor. Name and policy, not endpoints, so an endpoint change keeps the rest (as
   * Envoy keeps a cluster across endpoint updates).
   */
  readonly stateKey: string;
  readonly endpoints: EndpointSource;
  readonly lb: LbPolicy;
  /** RING_HASH: minimum ring size; MAGLEV: table size; 0 otherwise. */
  readonly hashTableSize: number;
  /** ROUND_ROBIN / LEAST_REQUEST slow start for endpoints that just joined (DR-4 `warmup`); absent = none. */
  readonly warmup?: WarmupPolicy;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** 0 = unlimited; 1 = no keep-alive. */
  readonly maxRequestsPerConnection: number;
  /** Circuit-breaker caps (DR-6); Infinity when unset. */
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  /** Retries in flight on the cluster at once (DR-6 maxRetries); Infinity when unset. */
  readonly maxRetries: number;
  /** A connection older than this takes no new request and closes when idle; 0 = no limit. */
  readonly maxConnectionDurationMs: number;
  readonly outlier: OutlierPolicy | null;
  /** How requests reach the endpoints (DP-9); absent = HTTP/1.1, whatever the client speaks. */
  readonly protocol?: UpstreamProtocol;
  /** HTTP/2 connection settings; present when `protocol` is. */
  readonly http2?: Http2Settings;
  /**
   * The port's protocol is GRPC-WEB: gRPC-Web requests routed here are bridged to gRPC (the
   * job of the destination's sidecar in a mesh); absent = passed on as they came.
   */
  readonly grpcWeb?: true;
  /** TLS origination (DR-8); absent = plain text. */
  readonly tls?: UpstreamTls;
}

/**
 * `http2`: HTTP/2 to every endpoint (port protocol HTTP2/GRPC/GRPC-WEB, or `h2UpgradePolicy:
 * UPGRADE`): h2c in plain text, ALPN `h2` over TLS. `client` (`useClientProtocol`): HTTP/2 for
 * requests that came over HTTP/2, HTTP/1.1 for the others.
 */
export type UpstreamProtocol = 'http2' | 'client';

export interface Http2Settings {
  /** Streams per connection (`maxConcurrentStreams`); 0 = as many as the upstream allows. */
  readonly maxConcurrentStreams: number;
  /** `http2KeepAlive`: PING every interval; no answer within the timeout closes it. 0 = off. */
  readonly keepAliveIntervalMs: number;
  readonly keepAliveTimeoutMs: number;
}

/** A DestinationRule's `tls` block resolved to what a connection needs (DR-8). */
export interface UpstreamTls {
  readonly mode: 'SIMPLE' | 'MUTUAL';
  /** CA bundle the upstream's certificate is verified against; null = the OS trust store. */
  readonly caPem: string | null;
  /** Revocation lists checked with it (`caCrl`, or the credential's `ca.crl`); null = none. */
  readonly crlPem: string | null;
  /** MUTUAL: the client chain and key presented; dumps print `clientFingerprint`, never the key. */
  readonly certPem: string | null;
  readonly keyPem: string | null;
  readonly clientFingerprint: string | null;
  /** SNI sent; null = the request's Host (Envoy's auto SNI), none for an IP address. */
  readonly sni: string | null;
  /**
   * Names the upstream certificate must carry (DNS, URI, IP or email SAN; DNS wildcards match).
   * Empty with `sni` null: the Host is checked (auto SAN validation); empty with `sni` set: none.
   */
  readonly subjectAltNames: readonly string[];
  /** No CA or name check at all. */
  readonly insecureSkipVerify: boolean;
  /**
   * Why no connection can be made (a credential Secret or file missing or unusable): Envoy's
   * transport socket is then "not ready" and every connection fails with 503 UF.
   */
  readonly notReady: string | null;
  /** Content hash of the above: pools and secure contexts are keyed by it. */
  readonly key: string;
}

// ---------------------------------------------------------------- request pipeline

/*
 * The HTTP filters a route table (workload-level policy) runs, in Istio's order (istio/istio
 * listener_builder.go, authz builder.go): ext_authz (CUSTOM) → jwt_authn → rbac AUDIT → rbac DENY
 * → rbac ALLOW; route filters follow route lookup. Plain data plus precompiled predicates; the
 * data plane runs them (dataplane/pipeline.ts), `sluice explain` runs the same decisions. A table
 * with no filter has `filters` absent and pays nothing.
 */

// ---------------------------------------------------------------- what policy sees

/** The authenticated JWT of a request (RequestAuthentication), once jwt_authn accepted it. */
export interface RequestAuth {
  /** `iss/sub` (AP-5). */
  readonly principal: string;
  readonly issuer: string;
  readonly subject: string;
  /** `aud` as a list (a string claim becomes one element). */
  readonly audiences: readonly string[];
  /** `azp`, '' when absent. */
  readonly presenter: string;
  /**
   * The payload, with space-delimited claims (`scope`, `permission`, spaceDelimitedClaims) split
   * into lists as Envoy normalises them for matching (RA-7).
   */
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * What authorization and ext_authz read of a request, beyond what route matching reads
 * (dataplane/request-context.ts implements it; `sluice explain` builds one from its flags).
 */
export interface PolicyRequest extends RequestView {
  /** The direct peer's IP (`source.ip`, `ipBlocks`): IPv4-mapped IPv6 unwrapped. */
  readonly peerIp: string;
  /** The client IP after trusted-proxy handling (`remote.ip`, `remoteIpBlocks`; DP-1). */
  readonly remoteIp: string;
  /** The local address the connection arrived on (`destination.ip`). */
  readonly localIp: string;
  /** SNI of the TLS connection, '' for plaintext (`connection.sni`). */
  readonly sni: string;
  /**
   * The verified client certificate's principal (URI SAN, e.g. `spiffe://cluster.local/ns/a/sa/b`,
   * else DNS SAN, else subject), null without a verified certificate (AP-5).
   */
  readonly peerPrincipal: string | null;
  /** Set by jwt_authn when a token was accepted, else null. */
  auth: RequestAuth | null;
}

// ---------------------------------------------------------------- filters

export type HttpFilter =
  | ExtAuthzFilter
  | JwtAuthnFilter
  | RbacFilter
  | BodyLimitFilter
  | SourceRangeFilter
  | BasicAuthFilter
  | AuthRequestFilter
  | ClientCertFilter
  | FaultFilter
  | CorsFilter
  | RateLimitFilter;

/**
 * ingress-nginx's auth-tls-* on routes translated from an Ingress (nginx ssl_verify_client with
 * its 495/496 answers): on a TLS connection, without a verified client certificate `required`
 * answers 400, or 302 to `errorPage`; the upstream request gets ssl-client-verify (SUCCESS or
 * NONE), ssl-client-subject-dn and ssl-client-issuer-dn (RFC 2253), and with `passCertificate`
 * ssl-client-cert (the URL-escaped PEM), replacing whatever the client sent.
 */
export interface ClientCertFilter {
  readonly kind: 'client-cert';
  readonly required: boolean;
  readonly errorPage: string | null;
  readonly passCertificate: boolean;
}

/** A string with nginx variables filled per request ($host, $escaped_request_uri, …). */
export type NginxTemplate = readonly (
  | { readonly text: string }
  | { readonly variable: 'host' | 'http_host' | 'scheme' | 'request_uri' | 'escaped_request_uri' }
)[];

/**
 * ingress-nginx's auth-url (nginx auth_request, template.go's auth location) on routes translated
 * from an Ingress: before the request goes on, a subrequest without body asks the auth service.
 * 2xx lets it on (auth-response-headers copied to the upstream request), 401 and 403 go back to
 * the client (401 becomes a 302 to auth-signin when set), anything else is 500.
 */
export interface AuthRequestFilter {
  readonly kind: 'auth-request';
  /** auth-url as written: dumps, explain, logs. */
  readonly url: string;
  readonly cluster: Cluster;
  /** The check's Host: the URL's host name, no port (authreq Config.Host). */
  readonly hostHeader: string;
  /** The URL's path and query. */
  readonly path: string;
  /** auth-method, else GET (an nginx subrequest is a GET). */
  readonly method: string;
  /** auth-method was set: X-Original-URI and X-Scheme are sent too. */
  readonly methodSet: boolean;
  /** auth-signin with rd=<original URL> appended as buildAuthSignURL does; null = 401 stays 401. */
  readonly signin: NginxTemplate | null;
  /** auth-response-headers, as written (the upstream gets them under these names). */
  readonly responseHeaders: readonly string[];
  /** X-Auth-Request-Redirect; null = the request URI. */
  readonly requestRedirect: string | null;
  /** auth-always-set-cookie: the auth service's Set-Cookie on every answer, not only 2xx/3xx. */
  readonly alwaysSetCookie: boolean;
  /** The route's proxy-read-timeout: the longest the check may take before 500. */
  readonly timeoutMs: number;
}

/**
 * ingress-nginx's auth-type basic (nginx auth_basic) on routes translated from an Ingress: a
 * request without valid credentials for one of `users` gets 401 with `WWW-Authenticate`.
 */
export interface BasicAuthFilter {
  readonly kind: 'basic-auth';
  readonly realm: string;
  /** User → password hash ($2y$ bcrypt, $apr1$, {SHA}, {PLAIN}); never rendered. */
  readonly users: ReadonlyMap<string, string>;
  /** Of the htpasswd text, for dumps. */
  readonly fingerprint: string;
}

/**
 * ingress-nginx's whitelist-source-range / denylist-source-range (nginx allow/deny) on routes
 * translated from an Ingress: decided on the client address after trusted-proxy handling (DP-1).
 */
export interface SourceRangeFilter {
  readonly kind: 'source-range';
  /** As written, for dumps and explain. */
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** Null = no whitelist. */
  readonly allowed: ((ip: string) => boolean) | null;
  readonly denied: ((ip: string) => boolean) | null;
}

// ---------------------------------------------------------------- body limit (route filter)

/**
 * ingress-nginx's `proxy-body-size` (nginx client_max_body_size) on routes translated from an
 * Ingress: a request body larger than `maxBytes` is answered 413 and never reaches the upstream.
 * A declared Content-Length is judged at once; a chunked body is read ahead up to the limit, as
 * nginx buffers request bodies before proxying them.
 */
export interface BodyLimitFilter {
  readonly kind: 'body-limit';
  readonly maxBytes: number;
}

// ---------------------------------------------------------------- rate limit

/** How a bucket counts (the ratelimit/ stores implement each, locally and in Redis). */
export interface RateLimitSpec {
  /** InFlight: `requests` at once, released when each response ends (windowMs 0). */
  readonly algorithm: 'FixedWindow' | 'SlidingWindow' | 'TokenBucket' | 'InFlight';
  readonly requests: number;
  readonly windowMs: number;
  /** TokenBucket capacity (default `requests`); equal to `requests` for the windows. */
  readonly burst: number;
  /** storage Service: false when the policy leaves the limit to the service (requests 0). */
  readonly override?: boolean;
}

/** What a rate-limit key reads: the policy request, and the chosen route on route-level filters. */
export interface RateLimitRequest extends PolicyRequest {
  readonly route: Route | null;
}

/** One part of a bucket key; null = the request has no such value and the rule does not count it. */
export interface RateLimitKeyPart {
  /** For explain and dumps: `remoteAddress`, `requestHeader x-user`, `constant all`. */
  readonly describe: string;
  /** The entry key of an Envoy rate limit service descriptor: `remote_address`, `x-user`, `generic_key`. */
  readonly descriptorKey: string;
  readonly read: (req: RateLimitRequest) => string | null;
}

/** One RateLimitPolicy rule, compiled. */
export interface CompiledRateLimitRule {
  /** `ns/policy/rule`: metrics label, and (with `spec`) the bucket's name. */
  readonly id: string;
  readonly policy: string;
  readonly name: string;
  readonly storage: 'Local' | 'Global' | 'Service';
  /** storage Service: the rate limit service; null otherwise. */
  readonly service: RateLimitService | null;
  readonly failureMode: 'Open' | 'Closed';
  readonly responseHeaders: 'None' | 'Draft' | 'XRateLimit';
  readonly limit: RateLimitSpec;
  /**
   * Bucket name prefix: id + the limit's shape, so a changed limit starts fresh buckets instead
   * of reading another algorithm's state.
   */
  readonly bucket: string;
  readonly shadow: boolean;
  /** `to`/`when`; null = every request. */
  readonly applies: ((req: PolicyRequest) => boolean) | null;
  /** `exempt.remoteIpBlocks` on the client IP; null = none. */
  readonly exempt: ((ip: string) => boolean) | null;
  readonly key: readonly RateLimitKeyPart[];
  /**
   * The answer over the limit: 429 with Retry-After and `x-envoy-ratelimited` (Envoy), or 503
   * with neither (ingress-nginx's limit-req-status-code and limit-conn-status-code).
   */
  readonly rejectStatus: 429 | 503;
}

/** An Envoy rate limit service (`envoy.service.ratelimit.v3.RateLimitService`) over gRPC. */
export interface RateLimitService {
  /** `host:port` as written: logs and explain. */
  readonly authority: string;
  readonly cluster: Cluster;
  readonly domain: string;
  readonly timeoutMs: number;
}

/** The rate limits of one place (a table before or after authorization, or a route), in policy order. */
export interface RateLimitFilter {
  readonly kind: 'rate-limit';
  readonly rules: readonly CompiledRateLimitRule[];
  /**
   * A table's last filter with Global rules, in a table where some route's first filter counts
   * rate limits too: the rules that count a request wait for that route filter, so one Redis call
   * decides both (and a request refused by either counts in neither). When the request's route
   * has no such filter first, or none matches, they are decided alone right after routing.
   */
  readonly defer: boolean;
}

// ---------------------------------------------------------------- fault (route filter)

/**
 * VS-26: Envoy's fault filter with an HTTPRoute's `fault`. Shares are in millionths (Envoy's
 * FractionalPercent, MILLION); 0 = never, which is also what an absent `percentage` means. The
 * delay is rolled first; the abort is rolled independently once the delay (if any) is over.
 */
export interface FaultFilter {
  readonly kind: 'fault';
  /** Null = no delay (none configured, or 0 ms). */
  readonly delay: { readonly ms: number; readonly perMillion: number } | null;
  /** Null = no abort. `grpcStatus` set: 200 with that grpc-status to gRPC requests. */
  readonly abort: {
    readonly httpStatus: number;
    readonly grpcStatus: number | null;
    readonly perMillion: number;
  } | null;
}

// ---------------------------------------------------------------- cors (route filter)

/** One `allowOrigins` entry, case-sensitive; regexes are RE2 full matches. */
export interface OriginMatcher {
  readonly kind: 'exact' | 'prefix' | 'regex';
  /** As written (the regex source for `regex`). */
  readonly value: string;
  readonly test: (origin: string) => boolean;
}

/**
 * VS-28/VS-29: Envoy's CORS filter with an HTTPRoute's `corsPolicy`, as Istio translates it: list
 * fields joined with `,`, `maxAge` in whole seconds, '' where unset.
 */
export interface CorsFilter {
  readonly kind: 'cors';
  readonly allowOrigins: readonly OriginMatcher[];
  /** A matcher matches the literal `*`: every origin is allowed (and echoed). */
  readonly anyOrigin: boolean;
  /** `*` = the preflight's Access-Control-Request-Method is echoed. */
  readonly allowMethods: string;
  /** `*` = the preflight's Access-Control-Request-Headers are echoed. */
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  /** `unmatchedPreflights`: FORWARD (default) sends a preflight from an unknown origin upstream. */
  readonly forwardUnmatchedPreflights: boolean;
}

// ---------------------------------------------------------------- rbac

/** One AuthorizationPolicy rule: matches when any `from`, any `to` and every `when` hold (AP-3). */
export interface CompiledRule {
  /** Index in `spec.rules`. */
  readonly index: number;
  readonly test: (req: PolicyRequest) => boolean;
}

export interface CompiledPolicy {
  readonly namespace: string;
  readonly name: string;
  /** `spec.rules`; a policy matches when one rule does. Empty = never matches (DENY without rules). */
  readonly rules: readonly CompiledRule[];
}

/** Which policy and rule decided, or `none` (ALLOW policies exist and none matched). */
export interface PolicyMatch {
  readonly policy: CompiledPolicy;
  readonly rule: number;
}

/**
 * One Envoy RBAC filter: the policies of one action (AP-2). AUDIT never denies; DENY denies on a
 * match; ALLOW denies when nothing matches. `shadow` holds `istio.io/dry-run` policies: evaluated,
 * logged and counted, never enforced (AP-8).
 */
export interface RbacFilter {
  readonly kind: 'rbac';
  readonly action: 'AUDIT' | 'DENY' | 'ALLOW';
  readonly policies: readonly CompiledPolicy[];
  readonly shadow: readonly CompiledPolicy[];
}

// ---------------------------------------------------------------- jwt_authn

/** Where a token is looked for (RA-2). */
export interface TokenLocations {
  /** Header name (lowercase) and the exact prefix before the token ('' = none). */
  readonly headers: readonly { readonly name: string; readonly prefix: string }[];
  readonly params: readonly string[];
  readonly cookies: readonly string[];
}

export type JwksSource =
  /** `jwks` written in the RequestAuthentication: parsed at compile time. */
  | { readonly kind: 'inline'; readonly keys: readonly Readonly<Record<string, unknown>>[] }
  /**
   * `jwksUri`: fetched by the data plane (dataplane/filters/jwks-store.ts), cached, refreshed;
   * fail closed while it has never been fetched (RA-6).
   */
  | { readonly kind: 'remote'; readonly uri: string; readonly timeoutMs: number };

/** One `jwtRules` entry (Envoy's JwtProvider). */
export interface JwtProvider {
  readonly issuer: string;
  /** Any of them must be in `aud`; empty = not checked (RA-5). */
  readonly audiences: readonly string[];
  readonly jwks: JwksSource;
  readonly locations: TokenLocations;
  readonly forwardOriginalToken: boolean;
  /** Header that gets the token's base64url payload; null = none. */
  readonly outputPayloadToHeader: string | null;
  readonly outputClaimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  /** Claims split on spaces for matching (`scope`, `permission` and the rule's own). */
  readonly spaceDelimitedClaims: readonly string[];
  /** `presence: REQUIRED`: a request without a token at this provider's locations is refused (401). */
  readonly requireToken: boolean;
  /** Where the rule was written: `RequestAuthentication ns/name jwtRules[i]`. */
  readonly source: string;
}

/**
 * jwt_authn as Istio configures it (RA-1..RA-3): providers sorted by issuer; a request passes
 * when it carries no token at any provider's locations, or every token found verifies against
 * the provider of its issuer. CORS preflights skip it (bypass_cors_preflight).
 */
export interface JwtAuthnFilter {
  readonly kind: 'jwt-authn';
  readonly providers: readonly JwtProvider[];
  /** Request headers removed before verification so a client cannot forge them (outputs). */
  readonly sanitizeHeaders: readonly string[];
}

// ---------------------------------------------------------------- ext_authz

/** A `matchHeaders` entry of an ext_authz header list: exact, `prefix*` or `*suffix`, case-insensitive. */
export interface HeaderNamePattern {
  readonly kind: 'exact' | 'prefix' | 'suffix';
  /** Lowercase. */
  readonly value: string;
}

interface ExtAuthzCommon {
  /** The extensionProviders entry name. */
  readonly name: string;
  /** `service` as written: the authority of check requests. */
  readonly authority: string;
  /** Where the authorization service is (its host and port resolved like a destination). */
  readonly cluster: Cluster;
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  /** statusOnError, default 403. */
  readonly statusOnError: number;
  /** includeRequestBodyInCheck; null = the body is not sent. */
  readonly body: {
    readonly maxRequestBytes: number;
    readonly allowPartialMessage: boolean;
    readonly packAsBytes: boolean;
  } | null;
}

/** Istio `envoyExtAuthzHttp`. */
export interface ExtAuthzHttpProvider extends ExtAuthzCommon {
  readonly protocol: 'http';
  readonly pathPrefix: string;
  /** Request headers sent to the authorizer besides Host, Method, Path, Content-Length and Authorization. */
  readonly includeRequestHeaders: readonly HeaderNamePattern[];
  readonly includeAdditionalHeaders: readonly (readonly [name: string, value: string])[];
  /** Authorizer response headers copied onto the upstream request on allow; empty = none. */
  readonly headersToUpstreamOnAllow: readonly HeaderNamePattern[];
  /** Authorizer response headers added to the client's response on allow; empty = none. */
  readonly headersToDownstreamOnAllow: readonly HeaderNamePattern[];
  /** Authorizer response headers sent to the client on deny; null = all of them (Envoy's default). */
  readonly headersToDownstreamOnDeny: readonly HeaderNamePattern[] | null;
}

/** Istio `envoyExtAuthzGrpc`: `envoy.service.auth.v3.Authorization/Check`. */
export interface ExtAuthzGrpcProvider extends ExtAuthzCommon {
  readonly protocol: 'grpc';
}

export type ExtAuthzProvider = ExtAuthzHttpProvider | ExtAuthzGrpcProvider;

/**
 * CUSTOM authorization (AP-1): the provider is called only for requests a CUSTOM policy's rules
 * match (Istio's shadow RBAC in front of ext_authz); `shadow` (dry-run) matches are counted only.
 */
export interface ExtAuthzFilter {
  readonly kind: 'ext-authz';
  readonly provider: ExtAuthzProvider;
  readonly policies: readonly CompiledPolicy[];
  readonly shadow: readonly CompiledPolicy[];
}

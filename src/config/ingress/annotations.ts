/**
 * ingress-nginx annotations (`nginx.ingress.kubernetes.io/*`) of one Ingress, read into what the
 * translation acts on, with ingress-nginx's defaults. Every annotation of that prefix is either
 * read here, refused (raw nginx configuration), or reported as not supported: nothing is ignored
 * silently.
 */

import { isIP } from 'node:net';
import type { IngressExternalAuth } from '../../model/networking.ts';

export const NGINX_PREFIX = 'nginx.ingress.kubernetes.io/';

/**
 * sluice's own Ingress annotation: where limit-rps / limit-rpm count, `Local` (each gateway
 * process, as ingress-nginx counts per replica; the default) or `Global` (MeshConfig `redis`,
 * shared by every replica).
 */
export const LIMIT_STORAGE_ANNOTATION = 'sluice.dev/limit-storage';

/** The annotation's key: ingress-nginx's are named without their prefix, sluice's in full. */
export function annotationKey(name: string): string {
  return name.includes('/') ? name : NGINX_PREFIX + name;
}

export interface CorsSettings {
  readonly allowOrigins: readonly string[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly allowCredentials: boolean;
  readonly maxAgeSeconds: number;
}

export interface RedirectTarget {
  readonly url: string;
  readonly code: number;
  readonly annotation: string;
}

/** canary-*: this Ingress's paths are alternatives of another Ingress's same host and path. */
export interface CanarySettings {
  readonly weight: number;
  readonly weightTotal: number;
  readonly header: string | null;
  readonly headerValue: string | null;
  readonly headerPattern: string | null;
  readonly cookie: string | null;
}

/** How requests pick an endpoint of the backend: affinity cookie or upstream-hash-by. */
export type HashSetting =
  | {
      readonly kind: 'cookie';
      readonly name: string;
      readonly ttlSeconds: number;
      readonly path: string | null;
    }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string }
  | { readonly kind: 'source-ip' };

export interface IngressAnnotations {
  readonly useRegex: boolean;
  /** rewrite-target as written (`/$2`), null when absent. */
  readonly rewriteTarget: string | null;
  readonly sslRedirect: boolean;
  readonly forceSslRedirect: boolean;
  readonly redirect: RedirectTarget | null;
  readonly appRoot: string | null;
  readonly backendProtocol: 'HTTP' | 'HTTPS' | 'GRPC' | 'GRPCS';
  readonly connectTimeoutSeconds: number;
  readonly readTimeoutSeconds: number;
  readonly sendTimeoutSeconds: number;
  readonly maxBodyBytes: number;
  readonly cors: CorsSettings | null;
  readonly upstreamVhost: string | null;
  readonly xForwardedPrefix: string | null;
  readonly serverAliases: readonly string[];
  readonly fromToWwwRedirect: boolean;
  readonly canary: CanarySettings | null;
  readonly hash: HashSetting | null;
  /** auth-type: basic with its Secret, how it is laid out, and the realm. */
  readonly basicAuth: {
    /** `namespace/name` (the Ingress's namespace when written without one). */
    readonly secret: string;
    readonly secretType: 'auth-file' | 'auth-map';
    readonly realm: string;
  } | null;
  /**
   * proxy-next-upstream (+ -tries) as a retry policy: Envoy retryOn tokens and retries (tries − 1);
   * ingress-nginx's default is `error timeout` with 3 tries.
   */
  readonly retries: { readonly attempts: number; readonly retryOn: string };
  /** ssl-passthrough: the Ingress's hosts are piped by SNI to their `/` backend on the HTTPS port. */
  readonly sslPassthrough: boolean;
  /** auth-tls-secret (+ auth-tls-verify-client, -error-page, -pass-certificate-to-upstream); null when unset. */
  readonly authTls: {
    /** `namespace/name` (the Ingress's namespace when written without one). */
    readonly secret: string;
    readonly verify: 'on' | 'off' | 'optional' | 'optional_no_ca';
    readonly errorPage: string | null;
    readonly passCert: boolean;
  } | null;
  /** proxy-ssl-secret (+ proxy-ssl-verify, proxy-ssl-name, proxy-ssl-server-name); null when unset. */
  readonly proxySsl: {
    /** `namespace/name`, as ingress-nginx requires. */
    readonly secret: string;
    readonly verify: boolean;
    readonly name: string | null;
    readonly serverName: boolean;
  } | null;
  /** auth-url (+ auth-method, auth-signin, auth-response-headers, auth-request-redirect); null when unset. */
  readonly externalAuth: ExternalAuth | null;
  /** limit-rps / limit-rpm / limit-connections (+ limit-burst-multiplier, limit-whitelist); null when none is set. */
  readonly rateLimit: IngressRateLimit | null;
  /** whitelist-source-range / denylist-source-range: IPs and CIDRs, empty when unset. */
  readonly allowSourceRanges: readonly string[];
  readonly denySourceRanges: readonly string[];
  /** custom-http-errors, default-backend, disable-proxy-intercept-errors; null when none is set. */
  readonly errorPages: ErrorPageSettings | null;
  /** Annotations read here, as `name` without the prefix (for the convert report). */
  readonly used: readonly string[];
}

/**
 * ingress-nginx's rate limits of one Ingress (annotations/ratelimit): zones keyed by client IP,
 * shared by every path of the Ingress, `limit_req … burst=limit×multiplier nodelay` and
 * `limit_conn`; 0 = that limit is off.
 */
export interface IngressRateLimit {
  readonly rps: number;
  readonly rpm: number;
  readonly burstMultiplier: number;
  readonly connections: number;
  /** limit-whitelist (alias limit-allowlist): client IPs/CIDRs never counted. */
  readonly exempt: readonly string[];
  /** sluice.dev/limit-storage: where rps and rpm count; connections always count per process. */
  readonly storage: 'Local' | 'Global';
}

export type ExternalAuth = IngressExternalAuth;

/**
 * ingress-nginx's error pages (annotations/customhttperrors, defaultbackend,
 * disableproxyintercepterrors): the listed statuses (400..599) go to the default backend; the
 * default backend also serves the location while its own Service has no endpoints.
 */
export interface ErrorPageSettings {
  /** custom-http-errors, deduplicated in the order written; empty with default-backend alone. */
  readonly codes: readonly number[];
  /** default-backend: a Service in the Ingress's namespace; null = none. */
  readonly defaultBackend: string | null;
  /** disable-proxy-intercept-errors: upstream answers pass; only nginx's own errors are replaced. */
  readonly upstreamResponses: boolean;
}

export interface AnnotationProblem {
  readonly level: 'error' | 'warning';
  /** ingress-nginx's without its prefix, sluice's in full (annotationKey). */
  readonly annotation: string;
  readonly message: string;
}

/** Raw nginx configuration: meaningless outside nginx, and the injection surface of CVE-2025-1974 and its kin. */
const REFUSED = new Set([
  'configuration-snippet',
  'server-snippet',
  'auth-snippet',
  'stream-snippet',
  'modsecurity-snippet',
]);

/**
 * Security annotations sluice cannot enforce yet: serving the Ingress without them would serve open
 * what its YAML closes, so each is an error and the config is refused.
 */
const UNENFORCEABLE: Readonly<Record<string, string>> = {
  'auth-tls-match-cn': 'matching the client certificate subject',
};

/** Annotations sluice has not implemented yet: each is a warning naming what happens instead. */
const NOT_YET: Readonly<Record<string, string>> = {
  'auth-cache-key': 'auth service answers are not cached: every request is checked',
  'auth-cache-duration': 'auth service answers are not cached: every request is checked',
  'auth-proxy-set-headers': 'the ConfigMap headers are not sent to the auth service',
  'auth-keepalive': 'connections to the auth service are pooled and kept alive by sluice itself',
  'auth-keepalive-requests': 'connections to the auth service are pooled and kept alive by sluice itself',
  'auth-keepalive-timeout': 'connections to the auth service are pooled and kept alive by sluice itself',
  'auth-keepalive-share-vars': 'connections to the auth service are pooled and kept alive by sluice itself',
  'limit-rate': 'response bandwidth per request is not limited',
  'limit-rate-after': 'response bandwidth per request is not limited',
  'proxy-next-upstream-timeout': 'the time spent on retries is bounded only by the attempts',
  'auth-tls-verify-depth': 'the client chain length is not limited (a chain through intermediates verifies)',
  'proxy-ssl-verify-depth':
    'the upstream chain length is not limited (a chain through intermediates verifies)',
  'proxy-ssl-ciphers': "Node's default ciphers are offered",
  'proxy-ssl-protocols': 'TLS 1.2 and 1.3 are offered',
};

const DEFAULT_CORS_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'];
const DEFAULT_CORS_HEADERS = [
  'DNT',
  'Keep-Alive',
  'User-Agent',
  'X-Requested-With',
  'If-Modified-Since',
  'Cache-Control',
  'Content-Type',
  'Range',
  'Authorization',
];

/** ingress-nginx's proxy-body-size default (nginx client_max_body_size). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** ingress-nginx's proxy-read-timeout default, in seconds. */
export const DEFAULT_READ_TIMEOUT_SECONDS = 60;
/** ingress-nginx's proxy-send-timeout default, in seconds. */
export const DEFAULT_SEND_TIMEOUT_SECONDS = 60;
/** ingress-nginx's proxy-connect-timeout default, in seconds. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 5;

/** nginx size syntax: `1m`, `512k`, `8` (bytes), `0` = no limit; null when malformed. */
export function parseNginxSize(v: string): number | null {
  const m = /^\s*(\d+)\s*([kKmMgG]?)\s*$/.exec(v);
  if (m === null) return null;
  const unit = (m[2] ?? '').toLowerCase();
  const mul = unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : unit === 'g' ? 1024 * 1024 * 1024 : 1;
  return Number(m[1]) * mul;
}

function isCidr(v: string): boolean {
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return false;
  if (slash < 0) return true;
  const bits = v.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function readAnnotations(
  annotations: Readonly<Record<string, string>>,
  /** The Ingress's namespace: where Secrets named without one are. */
  namespace = 'default',
): {
  readonly value: IngressAnnotations;
  readonly problems: AnnotationProblem[];
} {
  const problems: AnnotationProblem[] = [];
  const used: string[] = [];
  const a = new Map<string, string>();
  for (const [k, v] of Object.entries(annotations)) {
    if (!k.startsWith(NGINX_PREFIX)) continue;
    const name = k.slice(NGINX_PREFIX.length);
    if (REFUSED.has(name)) {
      problems.push({
        level: 'error',
        annotation: name,
        message:
          'raw nginx configuration has no meaning outside nginx and is refused (it was the injection surface of the 2025 ingress-nginx CVEs); express it with annotations or Istio resources',
      });
      continue;
    }
    const closes = UNENFORCEABLE[name];
    if (closes !== undefined) {
      problems.push({
        level: 'error',
        annotation: name,
        message: `${closes} is not supported yet, and serving this Ingress without it would let through requests it refuses; the config is refused`,
      });
      continue;
    }
    const notYet = NOT_YET[name];
    if (notYet !== undefined) {
      problems.push({ level: 'warning', annotation: name, message: `not supported yet: ${notYet}` });
      continue;
    }
    a.set(name, v);
  }
  const take = (name: string): string | undefined => {
    const v = a.get(name);
    if (v !== undefined) {
      a.delete(name);
      used.push(name);
    }
    return v;
  };
  const bool = (name: string, dflt: boolean): boolean => {
    const v = take(name);
    if (v === undefined) return dflt;
    if (v === 'true' || v === 'false') return v === 'true';
    problems.push({
      level: 'warning',
      annotation: name,
      message: `must be "true" or "false", got "${v}"; ${dflt} is used`,
    });
    return dflt;
  };
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const v = take(name);
    if (v === undefined) return dflt;
    const n = /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (Number.isInteger(n) && n >= min && n <= max) return n;
    problems.push({
      level: 'warning',
      annotation: name,
      message: `must be an integer ${min}..${max}, got "${v}"; ${dflt} is used`,
    });
    return dflt;
  };
  const str = (name: string): string | null => {
    const v = take(name)?.trim();
    return v === undefined || v === '' ? null : v;
  };

  const useRegex = bool('use-regex', false);
  const rewriteTarget = str('rewrite-target');
  const sslRedirect = bool('ssl-redirect', true);
  const forceSslRedirect = bool('force-ssl-redirect', false);
  let redirect: RedirectTarget | null = null;
  const permanent = str('permanent-redirect');
  const permanentCode = int('permanent-redirect-code', 301, 300, 308);
  const temporal = str('temporal-redirect');
  const temporalCode = int('temporal-redirect-code', 302, 300, 308);
  // ingress-nginx: permanent-redirect wins over temporal-redirect.
  if (permanent !== null)
    redirect = { url: permanent, code: permanentCode, annotation: 'permanent-redirect' };
  else if (temporal !== null)
    redirect = { url: temporal, code: temporalCode, annotation: 'temporal-redirect' };
  for (const r of [redirect]) {
    if (r !== null && ![301, 302, 303, 307, 308].includes(r.code)) {
      problems.push({
        level: 'warning',
        annotation: `${r.annotation}-code`,
        message: `${r.code} is not a redirect code Envoy sends (301, 302, 303, 307, 308); 301 is used`,
      });
      redirect = { ...r, code: 301 };
    }
  }
  const appRoot = str('app-root');
  let backendProtocol: IngressAnnotations['backendProtocol'] = 'HTTP';
  const bp = str('backend-protocol');
  if (bp !== null) {
    const up = bp.toUpperCase();
    if (up === 'HTTP' || up === 'HTTPS' || up === 'GRPC' || up === 'GRPCS') backendProtocol = up;
    else
      problems.push({
        level: 'warning',
        annotation: 'backend-protocol',
        message: `"${bp}" is not supported (HTTP, HTTPS, GRPC, GRPCS); HTTP is used`,
      });
  }
  const connectTimeoutSeconds = int('proxy-connect-timeout', DEFAULT_CONNECT_TIMEOUT_SECONDS, 1, 3600);
  const readTimeoutSeconds = int('proxy-read-timeout', DEFAULT_READ_TIMEOUT_SECONDS, 1, 86400);
  // An integer of seconds, as ingress-nginx reads it ("30s" is refused there too, and the default kept).
  const sendTimeoutSeconds = int('proxy-send-timeout', DEFAULT_SEND_TIMEOUT_SECONDS, 1, 86400);
  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  const size = str('proxy-body-size');
  if (size !== null) {
    const n = parseNginxSize(size);
    if (n === null)
      problems.push({
        level: 'warning',
        annotation: 'proxy-body-size',
        message: `"${size}" is not an nginx size (like 8m, 512k, 0); 1m is used`,
      });
    else maxBodyBytes = n;
  }
  let cors: CorsSettings | null = null;
  const corsOn = bool('enable-cors', false);
  const origins = str('cors-allow-origin');
  const methods = str('cors-allow-methods');
  const headers = str('cors-allow-headers');
  const expose = str('cors-expose-headers');
  const credentials = bool('cors-allow-credentials', true);
  const maxAge = int('cors-max-age', 1728000, 0, 2 ** 31 - 1);
  if (corsOn)
    cors = {
      allowOrigins: origins === null ? ['*'] : list(origins),
      allowMethods: methods === null ? DEFAULT_CORS_METHODS : list(methods).map((m) => m.toUpperCase()),
      allowHeaders: headers === null ? DEFAULT_CORS_HEADERS : list(headers),
      exposeHeaders: expose === null ? [] : list(expose),
      allowCredentials: credentials,
      maxAgeSeconds: maxAge,
    };
  const upstreamVhost = str('upstream-vhost');
  const xForwardedPrefix = str('x-forwarded-prefix');
  const alias = str('server-alias');
  const serverAliases = alias === null ? [] : list(alias).map((h) => h.toLowerCase());
  const fromToWwwRedirect = bool('from-to-www-redirect', false);
  const isCanary = bool('canary', false);
  const canaryWeight = int('canary-weight', 0, 0, 1_000_000);
  const canaryTotal = int('canary-weight-total', 100, 1, 1_000_000);
  const canary: CanarySettings | null = isCanary
    ? {
        weight: Math.min(canaryWeight, canaryTotal),
        weightTotal: canaryTotal,
        header: str('canary-by-header'),
        headerValue: str('canary-by-header-value'),
        headerPattern: str('canary-by-header-pattern'),
        cookie: str('canary-by-cookie'),
      }
    : null;
  const hash = readHash(str, problems);
  const ranges = (name: string): string[] => {
    const v = str(name);
    if (v === null) return [];
    const out = list(v);
    const bad = out.find((r) => !isCidr(r));
    if (bad === undefined) return out;
    problems.push({
      level: 'error',
      annotation: name,
      message: `"${bad}" is not an IP address or CIDR range; refused rather than served unrestricted`,
    });
    return [];
  };
  const basicAuth = readBasicAuth(str, problems, namespace);
  const rateLimit = readRateLimit(int, ranges, annotations[LIMIT_STORAGE_ANNOTATION], problems);
  const externalAuth = readExternalAuth(str, bool, problems);
  const proxySsl = readProxySsl(str, problems);
  const authTls = readAuthTls(str, bool, problems, namespace);
  const retries = readNextUpstream(str, int, problems);
  const sslPassthrough = bool('ssl-passthrough', false);
  const allowSourceRanges = ranges('whitelist-source-range');
  const denySourceRanges = ranges('denylist-source-range');
  const errorPages = readErrorPages(str, bool, problems);
  for (const name of a.keys())
    problems.push({
      level: 'warning',
      annotation: name,
      message: 'not supported by sluice; it has no effect',
    });
  return {
    value: {
      useRegex,
      rewriteTarget,
      sslRedirect,
      forceSslRedirect,
      redirect,
      appRoot,
      backendProtocol,
      connectTimeoutSeconds,
      readTimeoutSeconds,
      sendTimeoutSeconds,
      maxBodyBytes,
      cors,
      upstreamVhost,
      xForwardedPrefix,
      serverAliases,
      fromToWwwRedirect,
      canary,
      hash,
      allowSourceRanges,
      denySourceRanges,
      errorPages,
      basicAuth,
      rateLimit,
      externalAuth,
      proxySsl,
      authTls,
      retries,
      sslPassthrough,
      used,
    },
    problems,
  };
}

/**
 * custom-http-errors (ingress-nginx's validation: codes 400..599, comma-separated), default-backend
 * (a Service name, ValidateServiceName) and disable-proxy-intercept-errors. A malformed value
 * makes ingress-nginx drop the annotation; here it is a warning and the annotation has no effect.
 */
function readErrorPages(
  str: (name: string) => string | null,
  bool: (name: string, dflt: boolean) => boolean,
  problems: AnnotationProblem[],
): ErrorPageSettings | null {
  const written = str('custom-http-errors');
  let backend = str('default-backend');
  const upstreamResponses = !bool('disable-proxy-intercept-errors', false);
  const codes: number[] = [];
  for (const c of written === null ? [] : list(written)) {
    const n = /^[45]\d\d$/.test(c) ? Number(c) : NaN;
    if (Number.isNaN(n)) {
      problems.push({
        level: 'warning',
        annotation: 'custom-http-errors',
        message: `"${c}" is not a status 400..599; the annotation has no effect (as ingress-nginx drops it)`,
      });
      codes.length = 0;
      break;
    }
    if (!codes.includes(n)) codes.push(n);
  }
  if (backend !== null && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(backend)) {
    problems.push({
      level: 'warning',
      annotation: 'default-backend',
      message: `"${backend}" is not a Service name; the annotation has no effect`,
    });
    backend = null;
  }
  if (!upstreamResponses && codes.length === 0)
    problems.push({
      level: 'warning',
      annotation: 'disable-proxy-intercept-errors',
      message: 'without custom-http-errors it has no effect',
    });
  if (codes.length === 0 && backend === null) return null;
  return { codes, defaultBackend: backend, upstreamResponses };
}

/**
 * affinity: cookie (+ session-cookie-*) and upstream-hash-by with the nginx variables Istio's
 * consistent hash can express; other variables are a warning and no hash.
 */
function readHash(str: (name: string) => string | null, problems: AnnotationProblem[]): HashSetting | null {
  const affinity = str('affinity');
  const mode = str('affinity-mode');
  const cookieName = str('session-cookie-name') ?? 'INGRESSCOOKIE';
  // nginx sets both Expires and Max-Age from these; Max-Age is the one browsers follow.
  const maxAgeOnly = str('session-cookie-max-age');
  const expires = str('session-cookie-expires');
  const maxAge = maxAgeOnly ?? expires;
  const cookiePath = str('session-cookie-path');
  const by = str('upstream-hash-by');
  if (mode !== null && mode !== 'balanced')
    problems.push({
      level: 'warning',
      annotation: 'affinity-mode',
      message: `"${mode}" is not supported: endpoints are picked by a consistent hash of the cookie (balanced)`,
    });
  if (affinity !== null) {
    if (affinity !== 'cookie') {
      problems.push({
        level: 'warning',
        annotation: 'affinity',
        message: `"${affinity}" is not supported (only cookie); no session affinity`,
      });
      return null;
    }
    const ttl = maxAge === null ? 0 : /^\d+$/.test(maxAge) ? Number(maxAge) : 0;
    return { kind: 'cookie', name: cookieName, ttlSeconds: ttl, path: cookiePath };
  }
  if (by === null) return null;
  if (by === '$remote_addr' || by === '$binary_remote_addr') return { kind: 'source-ip' };
  const m = /^\$(http|arg|cookie)_([A-Za-z0-9_-]+)$/.exec(by);
  if (m !== null) {
    const name = m[2]!;
    if (m[1] === 'http') return { kind: 'header', name: name.replaceAll('_', '-').toLowerCase() };
    if (m[1] === 'arg') return { kind: 'query', name };
    return { kind: 'cookie', name, ttlSeconds: 0, path: null };
  }
  problems.push({
    level: 'warning',
    annotation: 'upstream-hash-by',
    message: `"${by}" cannot be expressed (only $remote_addr, $http_<name>, $arg_<name>, $cookie_<name>); endpoints are balanced without a hash`,
  });
  return null;
}

/**
 * proxy-next-upstream conditions (nginx proxy_next_upstream) as Envoy retryOn: `error` is a
 * failed or reset connection, `timeout` a connect timeout (Envoy counts it a connect failure; a
 * response-header timeout is not retried), `http_NNN` that status; `off` no retry. nginx retries
 * POST, LOCK and PATCH only with `non_idempotent`; Envoy retries any method (a warning says so).
 */
function readNextUpstream(
  str: (name: string) => string | null,
  int: (name: string, dflt: number, min: number, max: number) => number,
  problems: AnnotationProblem[],
): IngressAnnotations['retries'] {
  const written = str('proxy-next-upstream');
  const tries = int('proxy-next-upstream-tries', 3, 0, 100);
  const conditions = (written ?? 'error timeout').split(/\s+/).filter((c) => c !== '');
  const on = new Set<string>();
  for (const c of conditions) {
    if (c === 'off') return { attempts: 0, retryOn: '' };
    if (c === 'error') on.add('connect-failure').add('reset');
    else if (c === 'timeout') on.add('connect-failure');
    else if (/^http_(500|502|503|504|403|404|429)$/.test(c)) on.add(c.slice(5));
    else if (c !== 'non_idempotent')
      problems.push({
        level: 'warning',
        annotation: 'proxy-next-upstream',
        message: `"${c}" has no Envoy retry condition; it is not retried on`,
      });
  }
  if (written !== null && !conditions.includes('non_idempotent') && on.size > 0)
    problems.push({
      level: 'warning',
      annotation: 'proxy-next-upstream',
      message:
        'nginx does not retry POST, LOCK and PATCH requests without non_idempotent; sluice retries every method',
    });
  // tries counts the first attempt; 0 is nginx's "no limit", kept to its default 3 here.
  if (tries === 0)
    problems.push({
      level: 'warning',
      annotation: 'proxy-next-upstream-tries',
      message: '0 (no limit) is served as 3 tries',
    });
  return {
    attempts: on.size === 0 ? 0 : Math.max(0, (tries === 0 ? 3 : tries) - 1),
    retryOn: [...on].join(','),
  };
}

/** annotations/authtls: verify-client on unless on/off/optional/optional_no_ca; error-page a URL. */
function readAuthTls(
  str: (name: string) => string | null,
  bool: (name: string, dflt: boolean) => boolean,
  problems: AnnotationProblem[],
  namespace: string,
): IngressAnnotations['authTls'] {
  const secret = str('auth-tls-secret');
  const raw = str('auth-tls-verify-client');
  const errorPage = str('auth-tls-error-page');
  const passCert = bool('auth-tls-pass-certificate-to-upstream', false);
  if (secret === null) {
    if (raw !== null)
      problems.push({
        level: 'error',
        annotation: 'auth-tls-verify-client',
        message:
          'without auth-tls-secret there is no CA to verify clients with; the config is refused rather than serving the host without client certificates',
      });
    return null;
  }
  let verify: NonNullable<IngressAnnotations['authTls']>['verify'] = 'on';
  if (raw === 'on' || raw === 'off' || raw === 'optional' || raw === 'optional_no_ca') verify = raw;
  else if (raw !== null)
    problems.push({
      level: 'warning',
      annotation: 'auth-tls-verify-client',
      message: `"${raw}" is not on, off, optional or optional_no_ca; on is used (as ingress-nginx does)`,
    });
  if (verify === 'optional_no_ca')
    problems.push({
      level: 'warning',
      annotation: 'auth-tls-verify-client',
      message:
        'optional_no_ca (accept any client certificate unverified) is served as optional: a certificate the CA did not sign is refused',
    });
  const parts = secret.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    problems.push({
      level: 'error',
      annotation: 'auth-tls-secret',
      message: `"${secret}" is not name or namespace/name; the config is refused rather than serving the host without client certificates`,
    });
    return null;
  }
  return { secret: parts.length === 2 ? secret : `${namespace}/${secret}`, verify, errorPage, passCert };
}

/**
 * proxy-ssl-* (annotations/proxyssl): on/off switches, off by default; a Secret not written
 * `namespace/name` is denied there and refused here.
 */
function readProxySsl(
  str: (name: string) => string | null,
  problems: AnnotationProblem[],
): IngressAnnotations['proxySsl'] {
  const secret = str('proxy-ssl-secret');
  const onOff = (name: string): boolean => {
    const v = str(name);
    if (v === null) return false;
    if (v === 'on' || v === 'off') return v === 'on';
    problems.push({
      level: 'warning',
      annotation: name,
      message: `must be "on" or "off", got "${v}"; off is used`,
    });
    return false;
  };
  const verify = onOff('proxy-ssl-verify');
  const serverName = onOff('proxy-ssl-server-name');
  const name = str('proxy-ssl-name');
  if (secret === null) {
    for (const [a, set] of [
      ['proxy-ssl-verify', verify],
      ['proxy-ssl-name', name !== null],
      ['proxy-ssl-server-name', serverName],
    ] as const)
      if (set)
        problems.push(
          a === 'proxy-ssl-verify'
            ? {
                level: 'error',
                annotation: a,
                message:
                  'without proxy-ssl-secret there is no CA to verify with; the config is refused rather than connecting unverified',
              }
            : { level: 'warning', annotation: a, message: 'without proxy-ssl-secret it has no effect' },
        );
    return null;
  }
  if (!/^[^/\s]+\/[^/\s]+$/.test(secret)) {
    problems.push({
      level: 'error',
      annotation: 'proxy-ssl-secret',
      message: `"${secret}" is not namespace/name; the config is refused rather than connecting unverified`,
    });
    return null;
  }
  return { secret, verify, name, serverName };
}

/** authreq's validation: a method nginx's proxy_method takes, header names of `[A-Za-z0-9_-]`. */
const AUTH_METHOD = /^(GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE)$/;
const AUTH_HEADER = /^[a-zA-Z\d\-_]+$/;

/**
 * auth-url and companions. What ingress-nginx refuses (a bad URL, method or header name) denies
 * the location there; here it refuses the config, never serving the paths unchecked.
 */
function readExternalAuth(
  str: (name: string) => string | null,
  bool: (name: string, dflt: boolean) => boolean,
  problems: AnnotationProblem[],
): ExternalAuth | null {
  const url = str('auth-url');
  const method = str('auth-method');
  const signin = str('auth-signin');
  const signinRedirectParam = str('auth-signin-redirect-param') ?? 'rd';
  const headers = str('auth-response-headers');
  const requestRedirect = str('auth-request-redirect');
  const alwaysSetCookie = bool('auth-always-set-cookie', false);
  if (url === null) {
    for (const [name, v] of [
      ['auth-signin', signin],
      ['auth-method', method],
      ['auth-response-headers', headers],
      ['auth-request-redirect', requestRedirect],
    ] as const)
      if (v !== null)
        problems.push({ level: 'warning', annotation: name, message: 'without auth-url it has no effect' });
    return null;
  }
  const refuse = (annotation: string, message: string): null => {
    problems.push({
      level: 'error',
      annotation,
      message: `${message}; the config is refused rather than serving the paths without the check`,
    });
    return null;
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return refuse('auth-url', `"${url}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return refuse('auth-url', `"${url}" is not an http or https URL`);
  if (method !== null && !AUTH_METHOD.test(method))
    return refuse('auth-method', `"${method}" is not an HTTP method ingress-nginx takes`);
  const responseHeaders = headers === null ? [] : list(headers);
  const bad = responseHeaders.find((h) => !AUTH_HEADER.test(h));
  if (bad !== undefined) return refuse('auth-response-headers', `"${bad}" is not a header name`);
  return { url, method, signin, signinRedirectParam, responseHeaders, requestRedirect, alwaysSetCookie };
}

/**
 * limit-* and sluice.dev/limit-storage: null when no limit is set (limit-whitelist alone limits
 * nothing, as in ingress-nginx). A storage sluice does not know is an error: counting in a place
 * the annotation does not say would change how much gets through.
 */
function readRateLimit(
  int: (name: string, dflt: number, min: number, max: number) => number,
  ranges: (name: string) => string[],
  storageValue: string | undefined,
  problems: AnnotationProblem[],
): IngressRateLimit | null {
  const rps = int('limit-rps', 0, 0, 1_000_000);
  const rpm = int('limit-rpm', 0, 0, 60_000_000);
  const connections = int('limit-connections', 0, 0, 1_000_000);
  const burstMultiplier = int('limit-burst-multiplier', 5, 1, 1000);
  const exempt = [...ranges('limit-whitelist'), ...ranges('limit-allowlist')];
  const written = storageValue?.trim();
  let storage: IngressRateLimit['storage'] = 'Local';
  if (written === 'Global' || written === 'Local') storage = written;
  else if (written !== undefined) {
    problems.push({
      level: 'error',
      annotation: LIMIT_STORAGE_ANNOTATION,
      message: `"${storageValue}" is not Local or Global; the config is refused rather than counting the limits where the annotation does not say`,
    });
    return null;
  }
  if (written !== undefined && rps === 0 && rpm === 0) {
    problems.push({
      level: 'warning',
      annotation: LIMIT_STORAGE_ANNOTATION,
      message: 'without limit-rps or limit-rpm it has no effect',
    });
    storage = 'Local';
  } else if (storage === 'Global' && connections > 0)
    problems.push({
      level: 'warning',
      annotation: LIMIT_STORAGE_ANNOTATION,
      message:
        'Global applies to limit-rps and limit-rpm; limit-connections (requests in flight) has no Global storage in sluice and is counted in each gateway process',
    });
  if (rps === 0 && rpm === 0 && connections === 0) return null;
  return { rps, rpm, burstMultiplier, connections, exempt, storage };
}

/**
 * auth-type basic + auth-secret (+ auth-secret-type, auth-realm). Digest, or basic without a
 * Secret, cannot be enforced: an error, never an open path.
 */
function readBasicAuth(
  str: (name: string) => string | null,
  problems: AnnotationProblem[],
  namespace: string,
): IngressAnnotations['basicAuth'] {
  const type = str('auth-type');
  const secret = str('auth-secret');
  const secretType = str('auth-secret-type') ?? 'auth-file';
  const realm = str('auth-realm') ?? '';
  if (type === null) {
    if (secret !== null)
      problems.push({
        level: 'warning',
        annotation: 'auth-secret',
        message: 'without auth-type it has no effect',
      });
    return null;
  }
  const refuse = (annotation: string, message: string): null => {
    problems.push({
      level: 'error',
      annotation,
      message: `${message}; the config is refused rather than serving the paths open`,
    });
    return null;
  };
  if (type !== 'basic') return refuse('auth-type', `"${type}" authentication is not supported (only basic)`);
  if (secret === null) return refuse('auth-secret', 'auth-type basic needs auth-secret');
  if (secretType !== 'auth-file' && secretType !== 'auth-map')
    return refuse('auth-secret-type', `"${secretType}" is not auth-file or auth-map`);
  return { secret: secret.includes('/') ? secret : `${namespace}/${secret}`, secretType, realm };
}

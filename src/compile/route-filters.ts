/**
 * An HTTPRoute's own filters, in Istio's listener order after the security filters
 * (listener_builder.go: … → fault → cors → router): `fault` (VS-26) and `corsPolicy` (VS-28,
 * VS-29), translated as istio/istio route.go TranslateFault and TranslateCORSPolicy do. A rule
 * with neither gets no list at all.
 */
import {
  GRPC_STATUS_CODES,
  type CorsPolicy,
  type HTTPFaultInjection,
  type HTTPRoute,
  type IngressNginxRoute,
  type Percent,
  type StringMatch,
} from '../model/networking.ts';
import type {
  AuthRequestFilter,
  ClientCertFilter,
  Cluster,
  CorsFilter,
  FaultFilter,
  HttpFilter,
  BasicAuthFilter,
  OriginMatcher,
  SourceRangeFilter,
} from '../snapshot/types.ts';
import { cidrTest } from './authz-values.ts';
import { compileIngressLimits } from './ingress-limits.ts';
import { compileExternalAuth } from './ingress-auth.ts';
import { renderPrivate } from '../model/private-bytes.ts';
import { parseDuration } from '../util/duration.ts';
import { compileRe2 } from '../util/re2.ts';
import type { MatchBuildProblem } from './match.ts';

/** Hash formats nginx's auth_basic_user_file takes that sluice verifies (not crypt(3) DES). */
const HASH_FORMATS = /^(\$2[aby]\$\d\d\$|\$apr1\$|\{SHA\}|\{PLAIN\})/;

function compileBasicAuth(
  auth: NonNullable<IngressNginxRoute['basicAuth']>,
  path: string,
  problems: MatchBuildProblem[],
): BasicAuthFilter {
  const users = new Map<string, string>();
  const text = Buffer.from(auth.htpasswd.base64, 'base64').toString('utf8');
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const colon = t.indexOf(':');
    if (colon <= 0) continue;
    const user = t.slice(0, colon);
    const hash = t.slice(colon + 1).split(':')[0]!;
    // A user whose hash cannot be checked is left out: that user is refused, never let in.
    if (!HASH_FORMATS.test(hash)) {
      problems.push({
        path: `${path}.ingressNginx.basicAuth`,
        message: `user "${user}" has a password hash sluice cannot verify (use bcrypt, apr1, {SHA} or {PLAIN}); that user is refused`,
      });
      continue;
    }
    if (!users.has(user)) users.set(user, hash);
  }
  return { kind: 'basic-auth', realm: auth.realm, users, fingerprint: renderPrivate(auth.htpasswd) };
}

function compileSourceRanges(
  n: IngressNginxRoute,
  path: string,
  problems: MatchBuildProblem[],
): SourceRangeFilter | null {
  const allow = n.allowSourceRanges ?? [];
  const deny = n.denySourceRanges ?? [];
  if (allow.length === 0 && deny.length === 0) return null;
  const test = (values: readonly string[]): ((ip: string) => boolean) | null => {
    if (values.length === 0) return null;
    const t = cidrTest(values);
    if (typeof t === 'string') {
      problems.push({ path: `${path}.ingressNginx`, message: t });
      return null;
    }
    return t;
  };
  return { kind: 'source-range', allow, deny, allowed: test(allow), denied: test(deny) };
}

/** Istio translatePercentToFractionalPercent: `value` % as millionths, truncated (0.0001 % steps). */
export function perMillionOf(p: Percent): number {
  return Math.trunc((p.value ?? 0) * 10_000);
}

/** The rule's route filters in Istio's order; undefined when it has none. */
export function compileRouteFilters(
  rule: HTTPRoute,
  path: string,
  problems: MatchBuildProblem[],
  /** A host and port → its cluster (auth-url's service). */
  resolve: (host: string, port: number) => Cluster | null,
): readonly HttpFilter[] | undefined {
  const fault = rule.fault === undefined ? null : compileFault(rule.fault, `${path}.fault`, problems);
  const cors =
    rule.corsPolicy === undefined ? null : compileCors(rule.corsPolicy, `${path}.corsPolicy`, problems);
  const maxBody = rule.ingressNginx?.maxBodyBytes ?? 0;
  const ranges =
    rule.ingressNginx === undefined ? null : compileSourceRanges(rule.ingressNginx, path, problems);
  const basic =
    rule.ingressNginx?.basicAuth === undefined
      ? null
      : compileBasicAuth(rule.ingressNginx.basicAuth, path, problems);
  const limits =
    rule.ingressNginx?.rateLimit === undefined
      ? null
      : compileIngressLimits(rule.ingressNginx.rateLimit, path, problems);
  const ext = rule.ingressNginx?.externalAuth;
  let authRequest: AuthRequestFilter | null = null;
  if (ext !== undefined)
    authRequest = compileExternalAuth(
      ext,
      rule.ingressNginx?.readTimeoutMs ?? 60_000,
      resolve,
      path,
      problems,
    );
  const cc = rule.ingressNginx?.clientCertificate;
  const clientCert: ClientCertFilter | null = cc === undefined ? null : { kind: 'client-cert', ...cc };
  if (
    clientCert === null &&
    fault === null &&
    cors === null &&
    maxBody === 0 &&
    ranges === null &&
    basic === null &&
    limits === null &&
    authRequest === null
  )
    return undefined;
  const out: HttpFilter[] = [];
  // nginx answers a missing or bad client certificate (495/496) before it looks at the request.
  if (clientCert !== null) out.push(clientCert);
  // nginx refuses an oversized Content-Length while finding the location, before access checks.
  if (maxBody > 0) out.push({ kind: 'body-limit', maxBytes: maxBody });
  // limit_req and limit_conn run in nginx's preaccess phase, before allow/deny and every auth.
  if (limits !== null) out.push(limits);
  // nginx's access phase: allow/deny, then auth_basic (satisfy all).
  if (ranges !== null) out.push(ranges);
  if (basic !== null) out.push(basic);
  // auth_request is the last access-phase module nginx runs (after auth_basic, satisfy all).
  if (authRequest !== null) out.push(authRequest);
  if (fault !== null) out.push(fault);
  if (cors !== null) out.push(cors);
  return out;
}

/**
 * VS-26. A delay without `percentage` falls back to the legacy integer `percent` (0 when unset:
 * never); an abort without `percentage` never fires. A 0 ms delay is none (Envoy delays only
 * above 0 ms). Null when nothing can ever be injected.
 */
export function compileFault(
  fault: HTTPFaultInjection,
  path: string,
  problems: MatchBuildProblem[],
): FaultFilter | null {
  let delay: FaultFilter['delay'] = null;
  const d = fault.delay;
  if (d?.fixedDelay !== undefined) {
    const parsed = parseDuration(d.fixedDelay, { bareSeconds: false });
    if (!parsed.ok) problems.push({ path: `${path}.delay.fixedDelay`, message: parsed.error });
    else if (parsed.ms > 0) {
      const perMillion = d.percentage !== undefined ? perMillionOf(d.percentage) : (d.percent ?? 0) * 10_000;
      delay = { ms: Math.round(parsed.ms), perMillion };
    }
  }
  let abort: FaultFilter['abort'] = null;
  const a = fault.abort;
  if (a !== undefined) {
    const perMillion = a.percentage === undefined ? 0 : perMillionOf(a.percentage);
    if (a.httpStatus !== undefined) abort = { httpStatus: a.httpStatus, grpcStatus: null, perMillion };
    else if (a.grpcStatus !== undefined) {
      const code = GRPC_STATUS_CODES[a.grpcStatus];
      // Envoy answers a gRPC abort with HTTP 200 and the status in grpc-status.
      if (code !== undefined) abort = { httpStatus: 200, grpcStatus: code, perMillion };
    }
  }
  if (delay === null && abort === null) return null;
  return { kind: 'fault', delay, abort };
}

function originMatcher(m: StringMatch, path: string, problems: MatchBuildProblem[]): OriginMatcher | null {
  if ('exact' in m && typeof m.exact === 'string') {
    const v = m.exact;
    return { kind: 'exact', value: v, test: (o) => o === v };
  }
  if ('prefix' in m && typeof m.prefix === 'string') {
    const v = m.prefix;
    return { kind: 'prefix', value: v, test: (o) => o.startsWith(v) };
  }
  if ('regex' in m && typeof m.regex === 'string') {
    const r = compileRe2(m.regex);
    if (!r.ok) {
      problems.push({ path: `${path}.regex`, message: r.error, level: 'error' });
      return null;
    }
    return { kind: 'regex', value: m.regex, test: r.regex.fullMatch };
  }
  return null;
}

/**
 * VS-28/VS-29 as TranslateCORSPolicy writes Envoy's CorsPolicy: `allowOrigins`, else the
 * deprecated exact `allowOrigin` list; lists joined with ','; maxAge in whole seconds.
 */
export function compileCors(cors: CorsPolicy, path: string, problems: MatchBuildProblem[]): CorsFilter {
  const allowOrigins: OriginMatcher[] = [];
  if (cors.allowOrigins !== undefined) {
    cors.allowOrigins.forEach((m, i) => {
      const matcher = originMatcher(m, `${path}.allowOrigins[${i}]`, problems);
      if (matcher !== null) allowOrigins.push(matcher);
    });
  } else if (cors.allowOrigin !== undefined) {
    for (const v of cors.allowOrigin) allowOrigins.push({ kind: 'exact', value: v, test: (o) => o === v });
  }
  let maxAge = '';
  if (cors.maxAge !== undefined) {
    const parsed = parseDuration(cors.maxAge, { bareSeconds: false });
    if (parsed.ok) maxAge = String(Math.floor(parsed.ms / 1000));
    else problems.push({ path: `${path}.maxAge`, message: parsed.error });
  }
  return {
    kind: 'cors',
    allowOrigins,
    // Envoy's isOriginAllowed: a matcher that matches "*" itself allows any origin.
    anyOrigin: allowOrigins.some((m) => m.test('*')),
    allowMethods: (cors.allowMethods ?? []).join(','),
    allowHeaders: (cors.allowHeaders ?? []).join(','),
    exposeHeaders: (cors.exposeHeaders ?? []).join(','),
    maxAge,
    allowCredentials: cors.allowCredentials === true,
    forwardUnmatchedPreflights: cors.unmatchedPreflights !== 'IGNORE',
  };
}

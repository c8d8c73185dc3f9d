/**
 * `sluice explain` for a table's and a route's filters: the data plane's own decisions (RBAC,
 * jwt_authn with the same extraction and verification, which CUSTOM rule would call the
 * authorizer, a fault's odds, what CORS does with the Origin), said in words, without sockets:
 * remote JWKS are not fetched, authorizers are not called and no dice are rolled, and the
 * explanation says so where it matters.
 */
import type { RoutedRequest } from '../snapshot/route-request.ts';
import type { PolicyExplainer, PolicyExplanation, FilterStep, LocalReply } from '../snapshot/explain.ts';
import type {
  CorsFilter,
  FaultFilter,
  HttpFilter,
  PolicyMatch,
  PolicyRequest,
  RateLimitFilter,
  RateLimitRequest,
  Snapshot,
} from '../snapshot/types.ts';
import { decideRbac, firstMatch, policyId } from '../snapshot/policy.ts';
import { trustedClientAddress } from '../observability/request-facts.ts';
import { decideExtAuthz } from './filters/ext-authz.ts';
import { runJwtAuthn } from './filters/jwt-authn.ts';
import { JWT_STATUS } from './filters/jwt-verify.ts';
import { createJwksStore } from './filters/jwks-store.ts';
import { corsVerdict } from './filters/cors.ts';
import { bodyLimitVerdict } from './filters/body-limit.ts';
import { sourceRangeRefuses } from './filters/source-range.ts';
import { basicCredentials } from './filters/basic-auth.ts';

/** explain's client: loopback, unless x-forwarded-for says otherwise with trusted hops. */
const EXPLAIN_PEER = '127.0.0.1';

function policyText(m: PolicyMatch): string {
  return `${m.policy.namespace}/${m.policy.name} rule[${m.rule}]`;
}

function headerText(v: string | string[] | undefined): string | null {
  return v === undefined ? null : Array.isArray(v) ? v.join(',') : v;
}

function share(perMillion: number): string {
  return `${perMillion / 10_000}%`;
}

/** A fault's odds in words; a certain abort is the answer explain gives. */
function explainFault(f: FaultFilter, steps: FilterStep[]): LocalReply | null {
  const parts: string[] = [];
  if (f.delay !== null)
    parts.push(`delay ${f.delay.ms} ms for ${share(f.delay.perMillion)} of requests (DI)`);
  const a = f.abort;
  if (a !== null) {
    const what = a.grpcStatus === null ? `${a.httpStatus}` : `grpc-status ${a.grpcStatus}`;
    parts.push(`${parts.length > 0 ? 'then ' : ''}abort ${what} for ${share(a.perMillion)} (FI)`);
  }
  const certain = a !== null && a.perMillion >= 1_000_000;
  steps.push({
    filter: 'fault',
    verdict: `${parts.join(', ')}${certain ? '' : '; explain assumes the request goes on'}`,
  });
  return certain ? { status: a.httpStatus, flag: 'FI', reason: 'fault_filter_abort' } : null;
}

/** What the CORS filter does with this request (the data plane's own decision). */
function explainCors(f: CorsFilter, req: PolicyRequest, steps: FilterStep[]): LocalReply | null {
  const origin = headerText(req.headers['origin']);
  const v = corsVerdict(f, req.method, origin, headerText(req.headers['access-control-request-method']));
  let verdict: string;
  switch (v.kind) {
    case 'not-cors':
      verdict = 'no Origin: not a CORS request (response gets Vary: Origin)';
      break;
    case 'actual':
      verdict = v.allowed
        ? `origin ${origin} allowed: access-control-allow-origin ${origin} on the response`
        : `origin ${origin} not allowed: no CORS headers on the response`;
      break;
    case 'preflight':
      verdict = v.answered
        ? `preflight from ${origin} answered here${v.allowed ? '' : ' without access-control-allow-origin (unmatchedPreflights IGNORE)'} → 200`
        : `preflight from ${origin}: origin not allowed, forwarded upstream (unmatchedPreflights FORWARD)`;
  }
  steps.push({ filter: 'cors', verdict });
  return v.kind === 'preflight' && v.answered ? { status: 200, flag: '-', reason: 'cors_response' } : null;
}

/** Which rules would count the request, in which bucket; the stores are not asked. */
function explainRateLimit(f: RateLimitFilter, req: RoutedRequest & PolicyRequest, steps: FilterStep[]): void {
  const rr = req as RoutedRequest & RateLimitRequest;
  for (const rule of f.rules) {
    const l = rule.limit;
    const rate =
      l.algorithm === 'InFlight'
        ? `at most ${l.requests} in flight`
        : `${l.algorithm} ${l.requests} per ${l.windowMs / 1000}s${l.algorithm === 'TokenBucket' && l.burst !== l.requests ? `, burst ${l.burst}` : ''}`;
    const what = `${rule.id} (${rate}, ${rule.storage}${rule.shadow ? ', shadow' : ''})`;
    let verdict: string;
    if (rule.applies !== null && !rule.applies(rr)) verdict = `${what}: to/when do not match; not counted`;
    else if (rule.exempt !== null && rule.exempt(rr.remoteIp))
      verdict = `${what}: client ${rr.remoteIp} is exempt`;
    else {
      const values = rule.key.map((k) => [k.describe, k.read(rr)] as const);
      const missing = values.find(([, v]) => v === null);
      verdict =
        missing !== undefined
          ? `${what}: no ${missing[0]} on this request; not counted`
          : `${what}: counted in bucket ${values.length === 0 ? '(shared)' : values.map(([d, v]) => `${d}=${JSON.stringify(v)}`).join(' ')}; explain does not consult the store`;
    }
    steps.push({ filter: 'rate_limit', verdict });
  }
}

export function explainPolicy(snapshot: Snapshot): PolicyExplainer {
  const jwks = createJwksStore({ offline: true });
  return async (routed: RoutedRequest, filters: readonly HttpFilter[]): Promise<PolicyExplanation> => {
    const hops = snapshot.settings.numTrustedProxies;
    const req = routed as RoutedRequest & PolicyRequest;
    Object.assign(req, {
      peerIp: EXPLAIN_PEER,
      remoteIp:
        hops > 0
          ? trustedClientAddress(headerText(req.headers['x-forwarded-for']), EXPLAIN_PEER, hops)
          : EXPLAIN_PEER,
      localIp: '127.0.0.1',
      sni: req.scheme === 'https' ? req.host : '',
      peerPrincipal: null,
      auth: null,
    });
    const steps: FilterStep[] = [];
    const stop = (reply: LocalReply): PolicyExplanation => ({ steps, reply });
    for (const f of filters) {
      switch (f.kind) {
        case 'ext-authz': {
          const d = decideExtAuthz(f, req);
          const p = f.provider;
          if (d.kind === 'skip')
            steps.push({
              filter: 'ext_authz',
              verdict: 'no CUSTOM rule matches; the authorizer is not asked',
            });
          else
            steps.push({
              filter: 'ext_authz',
              verdict: `${d.dryRun ? 'dry-run ' : ''}CUSTOM policy ${policyText(d.match)} matches: ${d.dryRun ? 'logged only' : `asked of provider ${p.name} (${p.protocol} ${p.authority}, timeout ${p.timeoutMs} ms${p.failOpen ? ', failOpen' : `, ${p.statusOnError} on error`}); explain does not call it and assumes it allows`}`,
            });
          break;
        }
        case 'jwt-authn': {
          const d = await runJwtAuthn(req, f, jwks, Date.now());
          if (d.kind === 'allow') {
            if (d.auth !== null) {
              req.auth = d.auth;
              req.claims = d.auth.claims;
            }
            // Outputs the upstream (and route matching) would see.
            const h = req.headers as Record<string, string | string[] | undefined>;
            for (const name of d.edits?.remove ?? []) delete h[name];
            for (const [name, value] of d.edits?.set ?? []) h[name] = value;
            steps.push({
              filter: 'jwt_authn',
              verdict: d.auth === null ? d.note : `${d.note}, principal ${d.auth.principal}`,
            });
            break;
          }
          const remote = f.providers.find((p) => p.jwks.kind === 'remote');
          const fetched = d.status === 'JwksKidAlgMismatch' && remote !== undefined;
          steps.push({
            filter: 'jwt_authn',
            verdict: fetched
              ? `the token would be checked against ${remote.jwks.kind === 'remote' ? remote.jwks.uri : ''}, which explain does not fetch; with inline keys it fails: ${JWT_STATUS[d.status]}`
              : `${JWT_STATUS[d.status]} → ${d.status === 'JwtAudienceNotAllowed' ? 403 : 401}`,
          });
          return stop({
            status: d.status === 'JwtAudienceNotAllowed' ? 403 : 401,
            flag: '-',
            reason: `jwt_authn_access_denied{${JWT_STATUS[d.status].replaceAll(' ', '_')}}`,
          });
        }
        case 'body-limit': {
          const h = req.headers;
          const v = bodyLimitVerdict(
            f,
            headerText(h['content-length']) || undefined,
            h['transfer-encoding'] !== undefined,
          );
          steps.push({
            filter: 'body_limit',
            verdict: `proxy-body-size ${f.maxBytes} bytes: ${v === 'too-large' ? 'Content-Length over it → 413' : v === 'read' ? 'chunked body read ahead up to it (413 if longer)' : 'body fits'}`,
          });
          if (v === 'too-large') return stop({ status: 413, flag: '-', reason: 'request_payload_too_large' });
          break;
        }
        case 'source-range': {
          const refused = sourceRangeRefuses(f, req.remoteIp);
          const ranges = [
            ...(f.allow.length > 0 ? [`whitelist ${f.allow.join(',')}`] : []),
            ...(f.deny.length > 0 ? [`denylist ${f.deny.join(',')}`] : []),
          ].join(', ');
          steps.push({
            filter: 'source_range',
            verdict: `client ${req.remoteIp} against ${ranges}: ${refused ? 'refused → 403' : 'allowed'}`,
          });
          if (refused) return stop({ status: 403, flag: '-', reason: 'ingress_source_range_denied' });
          break;
        }
        case 'basic-auth': {
          const creds = basicCredentials(headerText(req.headers['authorization']) || undefined);
          const known = creds !== null && f.users.has(creds[0]);
          steps.push({
            filter: 'basic_auth',
            verdict:
              creds === null
                ? `realm "${f.realm}": no Basic credentials → 401`
                : known
                  ? `realm "${f.realm}": user ${creds[0]} is known; explain does not check passwords`
                  : `realm "${f.realm}": user ${creds[0]} is unknown → 401`,
          });
          if (!known) return stop({ status: 401, flag: '-', reason: 'ingress_basic_auth_denied' });
          break;
        }
        case 'client-cert':
          steps.push({
            filter: 'client_cert',
            verdict: `on TLS connections ${f.required ? `a verified client certificate is required (400${f.errorPage !== null ? `, or 302 to ${f.errorPage}` : ''} without)` : 'a client certificate is optional'}; explain has no connection to check`,
          });
          break;
        case 'auth-request':
          steps.push({
            filter: 'auth_request',
            verdict: `${f.method} ${f.url} decides (2xx on, 401${f.signin !== null ? ' → 302 to auth-signin' : ''} or 403 back to the client, else 500); explain does not call it`,
          });
          break;
        case 'fault': {
          const reply = explainFault(f, steps);
          if (reply !== null) return stop(reply);
          break;
        }
        case 'rate-limit':
          explainRateLimit(f, req, steps);
          break;
        case 'cors': {
          const reply = explainCors(f, req, steps);
          if (reply !== null) return stop(reply);
          break;
        }
        case 'rbac': {
          if (f.shadow.length > 0) {
            const m = firstMatch(f.shadow, req);
            steps.push({
              filter: 'rbac',
              verdict: `dry-run ${f.action}: ${m === null ? 'no policy matches' : `${policyText(m)} matches`} (logged only)`,
            });
          }
          if (f.policies.length === 0) break;
          const v = decideRbac(f, req);
          const which = v.match === null ? '' : ` ${policyText(v.match)}`;
          if (v.kind === 'audit') {
            steps.push({
              filter: 'rbac',
              verdict: v.match === null ? 'no AUDIT policy matches' : `audited by AUDIT policy${which}`,
            });
          } else if (v.kind === 'allow') {
            steps.push({
              filter: 'rbac',
              verdict: f.action === 'ALLOW' ? `allowed by ALLOW policy${which}` : 'no DENY policy matches',
            });
          } else {
            steps.push({
              filter: 'rbac',
              verdict:
                f.action === 'DENY'
                  ? `denied by DENY policy${which} → 403`
                  : 'ALLOW policies exist and none matches → 403',
            });
            return stop({
              status: 403,
              flag: '-',
              reason: `rbac_access_denied_matched_policy[${policyId(v.match)}]`,
            });
          }
          break;
        }
      }
    }
    return { steps, reply: null };
  };
}

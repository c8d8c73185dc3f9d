/**
 * Istio `envoyExtAuthzHttp`: the check is the client's request re-sent to the authorizer as an
 * HTTP/1.1 side request (upstream/side-request.ts): same method,
 * `pathPrefix` + path + query, Host kept, the headers Envoy always sends (Host, Method, Path,
 * Content-Length, Authorization) plus `includeRequestHeadersInCheck` and
 * `includeAdditionalHeadersInCheck`, and the body prefix when configured.
 */
import type { ExtAuthzHttpProvider } from '../../snapshot/types.ts';
import { requestOnCluster, type SideAnswer } from '../../upstream/side-request.ts';
import {
  HOP_BY_HOP,
  headerText,
  patternMatches,
  type CheckAnswer,
  type CheckInput,
} from './ext-authz-check.ts';

/** Largest authorizer response body passed on to a denied client. */
const MAX_DENY_BODY = 64 * 1024;

function checkHeaders(p: ExtAuthzHttpProvider, input: CheckInput): string[] {
  const req = input.req;
  const out: string[] = ['host', req.authority];
  const auth = headerText(req.headers, 'authorization');
  if (auth !== undefined) out.push('authorization', auth);
  if (p.includeRequestHeaders.length > 0) {
    for (const name of Object.keys(req.headers)) {
      if (name === 'host' || name === 'authorization' || name === 'content-length' || HOP_BY_HOP.has(name))
        continue;
      if (!patternMatches(p.includeRequestHeaders, name)) continue;
      const v = headerText(req.headers, name);
      if (v !== undefined) out.push(name, v);
    }
  }
  for (const [name, value] of p.includeAdditionalHeaders) out.push(name, value);
  out.push('content-length', String(input.body?.length ?? 0));
  return out;
}

/** Raw undici headers → lowercase name/value pairs. */
function pairs(raw: Record<string, string | string[] | undefined>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    const name = k.toLowerCase();
    if (Array.isArray(v)) for (const x of v) out.push([name, x]);
    else out.push([name, v]);
  }
  return out;
}

/** Only a denial's body reaches the client. */
function denyBodyLimit(status: number): number {
  return status === 200 || status >= 500 ? 0 : MAX_DENY_BODY;
}

/** Why the check failed, for the decision log. */
function failureReason(p: ExtAuthzHttpProvider, failure: Exclude<SideAnswer, { kind: 'answer' }>): string {
  switch (failure.kind) {
    case 'no_endpoint':
      return `no endpoint for ${p.authority}`;
    case 'not_http1':
      return `${p.authority} is not reachable over HTTP/1.1 (HTTP/2 port or TLS not ready)`;
    case 'timeout':
      return 'timeout';
    case 'error':
      return failure.code ?? failure.message;
  }
}

export async function checkOverHttp(p: ExtAuthzHttpProvider, input: CheckInput): Promise<CheckAnswer> {
  const req = input.req;
  const res = await requestOnCluster(p.cluster, {
    method: req.method,
    path: p.pathPrefix + req.path + (req.query === '' ? '' : '?' + req.query),
    headers: checkHeaders(p, input),
    body: input.body ?? null,
    timeoutMs: p.timeoutMs,
    bodyLimit: denyBodyLimit,
  });
  if (res.kind !== 'answer') return { kind: 'error', reason: failureReason(p, res) };
  const status = res.status;
  const headers = pairs(res.headers as Record<string, string | string[] | undefined>);
  if (status === 200) {
    const set: [string, string][] = [];
    const remove: string[] = [];
    const responseHeaders: string[] = [];
    for (const [name, value] of headers) {
      // The authorizer names request headers to drop (Envoy's HTTP service convention).
      if (name === 'x-envoy-auth-headers-to-remove') {
        for (const h of value.split(',')) {
          const n = h.trim().toLowerCase();
          if (n !== '' && n !== 'host' && !n.startsWith(':')) remove.push(n);
        }
        continue;
      }
      if (HOP_BY_HOP.has(name)) continue;
      if (patternMatches(p.headersToUpstreamOnAllow, name)) set.push([name, value]);
      if (patternMatches(p.headersToDownstreamOnAllow, name)) responseHeaders.push(name, value);
    }
    return {
      kind: 'allow',
      edits: set.length > 0 || remove.length > 0 ? { remove, set } : null,
      responseHeaders: responseHeaders.length > 0 ? responseHeaders : null,
    };
  }
  // A 5xx is the authorizer failing, not a decision (Envoy's raw HTTP client).
  if (status >= 500) return { kind: 'error', reason: `authorizer answered ${status}` };
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name)) continue;
    // Without headersToDownstreamOnDeny every authorizer header reaches the client (Envoy).
    if (p.headersToDownstreamOnDeny !== null && !patternMatches(p.headersToDownstreamOnDeny, name)) continue;
    out.push(name, value);
  }
  return { kind: 'deny', status, headers: out, body: res.body };
}

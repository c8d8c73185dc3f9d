/**
 * ingress-nginx's auth-url: nginx's auth_request subrequest as ingress-nginx's template writes its
 * auth location (rootfs/etc/nginx/template/nginx.tmpl; template.go buildAuthResponseHeaders,
 * buildAuthSignURL):
 *  - the check goes to the auth URL's path and query, GET unless auth-method, no body
 *    (proxy_pass_request_body off, Content-Length ""), with the client's headers (minus
 *    X-Forwarded-Proto) and Host = the URL's host name, X-Original-URL, X-Original-Method,
 *    X-Sent-From, X-Real-IP, X-Forwarded-For, X-Auth-Request-Redirect, X-Request-ID (and
 *    X-Original-URI, X-Scheme with auth-method);
 *  - 2xx lets the request on: each auth-response-headers header is set on the upstream request
 *    from the auth answer, or removed when the answer lacks it (proxy_set_header with an empty
 *    value sends nothing), and the answer's Set-Cookie goes to the client;
 *  - 401 and 403 go back to the client (401 with the answer's WWW-Authenticate), 401 as a 302 to
 *    auth-signin when set; any other status, a timeout or a refused connection is 500.
 */
import type { AuthRequestFilter, NginxTemplate } from '../../snapshot/types.ts';
import { requestOnCluster } from '../../upstream/side-request.ts';
import { applyHeaderEdits } from '../header-edits.ts';
import { HOP_BY_HOP } from './ext-authz-check.ts';
import type { FilterContext, FilterReply } from './filter.ts';

/** Client headers the auth location sets itself, beside the hop-by-hop ones. */
const SET_BY_CHECK = new Set([
  'x-forwarded-proto',
  'x-original-url',
  'x-original-method',
  'x-original-uri',
  'x-sent-from',
  'x-real-ip',
  'x-forwarded-for',
  'x-auth-request-redirect',
  'x-request-id',
  'x-scheme',
]);

const UNAUTHORIZED = Buffer.from('401 Authorization Required');
const FORBIDDEN = Buffer.from('403 Forbidden');
const SERVER_ERROR = Buffer.from('500 Internal Server Error');

function failed(reason: string): FilterReply {
  return {
    status: 500,
    body: SERVER_ERROR,
    headers: null,
    flag: 'UAEX',
    details: `ingress_auth_error{${reason}}`,
  };
}

/** set-misc's set_escape_uri: everything but RFC 3986 unreserved characters is %-encoded. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function fillTemplate(t: NginxTemplate, ctx: FilterContext): string {
  let out = '';
  for (const part of t) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    switch (part.variable) {
      case 'host':
        out += ctx.host;
        break;
      case 'http_host':
        out += ctx.authority;
        break;
      case 'scheme':
        out += ctx.scheme;
        break;
      case 'request_uri':
        out += ctx.req.url ?? '/';
        break;
      case 'escaped_request_uri':
        out += escapeUri(ctx.req.url ?? '/');
        break;
    }
  }
  return out;
}

function checkHeaders(f: AuthRequestFilter, ctx: FilterContext): string[] {
  const out: string[] = [];
  const h = ctx.req.headers;
  for (const name of Object.keys(h)) {
    if (HOP_BY_HOP.has(name) || SET_BY_CHECK.has(name)) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  const uri = ctx.req.url ?? '/';
  out.push(
    'host',
    f.hostHeader,
    'x-original-url',
    `${ctx.scheme}://${ctx.authority}${uri}`,
    'x-original-method',
    ctx.method,
    'x-sent-from',
    'nginx-ingress-controller',
    'x-real-ip',
    ctx.remoteIp,
    'x-forwarded-for',
    ctx.remoteIp,
    'x-auth-request-redirect',
    f.requestRedirect ?? uri,
    'x-request-id',
    ctx.requestId,
  );
  if (f.methodSet) out.push('x-original-uri', uri, 'x-scheme', ctx.scheme);
  return out;
}

function values(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** nginx reads only the status and headers of an auth answer. */
function noBody(): number {
  return 0;
}

export async function runAuthRequest(ctx: FilterContext, f: AuthRequestFilter): Promise<FilterReply | null> {
  const res = await requestOnCluster(f.cluster, {
    method: f.method,
    path: f.path,
    headers: checkHeaders(f, ctx),
    body: null,
    timeoutMs: f.timeoutMs,
    bodyLimit: noBody,
  });
  if (res.kind !== 'answer') return failed(res.kind === 'error' ? (res.code ?? 'request_failed') : res.kind);
  const status = res.status;
  const cookies = values(res.headers['set-cookie']);
  if (status >= 200 && status < 300) {
    const upstream: [string, string][] = [];
    const remove: string[] = [];
    for (const name of f.responseHeaders) {
      const lower = name.toLowerCase();
      const v = res.headers[lower];
      if (v === undefined || v === '') remove.push(lower);
      else upstream.push([lower, Array.isArray(v) ? v.join(', ') : v]);
    }
    if (upstream.length > 0 || remove.length > 0) applyHeaderEdits(ctx.req, { remove, set: upstream });
    if (cookies.length > 0) for (const c of cookies) (ctx.responseHeadersToAdd ??= []).push('set-cookie', c);
    return null;
  }
  if (status === 401) {
    const cookieHeaders = cookies.flatMap((c) => ['set-cookie', c]);
    if (f.signin !== null)
      return {
        status: 302,
        body: null,
        headers: ['location', fillTemplate(f.signin, ctx), ...cookieHeaders],
        flag: 'UAEX',
        details: 'ingress_auth_signin',
      };
    const challenge = values(res.headers['www-authenticate']).flatMap((v) => ['www-authenticate', v]);
    return {
      status: 401,
      body: UNAUTHORIZED,
      headers: [...challenge, ...(f.alwaysSetCookie ? cookieHeaders : [])],
      flag: 'UAEX',
      details: 'ingress_auth_denied',
    };
  }
  if (status === 403)
    return {
      status: 403,
      body: FORBIDDEN,
      headers: f.alwaysSetCookie ? cookies.flatMap((c) => ['set-cookie', c]) : null,
      flag: 'UAEX',
      details: 'ingress_auth_denied',
    };
  return failed(`status_${status}`);
}

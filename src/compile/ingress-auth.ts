/**
 * ingress-nginx's auth-url (+ auth-method, auth-signin, auth-response-headers,
 * auth-request-redirect, auth-always-set-cookie) → the auth-request route filter. The auth
 * service is reached like any destination (its host and port resolve to a cluster: a Service,
 * ServiceEntry or DNS name); an https URL gets TLS from the DestinationRule the translation wrote.
 */
import type { IngressExternalAuth } from '../model/networking.ts';
import type { AuthRequestFilter, Cluster, NginxTemplate } from '../snapshot/types.ts';
import type { MatchBuildProblem } from './match.ts';

/** The nginx variables an auth-signin URL may use, filled per request. */
const SIGNIN_VARIABLES = new Set([
  'host',
  'http_host',
  'scheme',
  'pass_access_scheme',
  'request_uri',
  'escaped_request_uri',
]);

/**
 * template.go buildAuthSignURL: `rd=$pass_access_scheme://$http_host$escaped_request_uri` is
 * appended unless the URL already has the redirect parameter.
 */
function signinTemplate(signin: string, param: string): string {
  const q = signin.indexOf('?');
  const redirect = `${param}=$pass_access_scheme://$http_host$escaped_request_uri`;
  if (q < 0) return `${signin}?${redirect}`;
  const query = new URLSearchParams(signin.slice(q + 1));
  if ((query.get(param) ?? '') !== '') return signin;
  return `${signin}&${redirect}`;
}

function parseTemplate(text: string, path: string, problems: MatchBuildProblem[]): NginxTemplate {
  const out: NginxTemplate[number][] = [];
  let last = 0;
  for (const m of text.matchAll(/\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = m[1]!;
    if (!SIGNIN_VARIABLES.has(name)) {
      problems.push({
        path,
        message: `nginx variable $${name} is not one sluice fills ($host, $http_host, $scheme, $request_uri, $escaped_request_uri); it is left as written`,
      });
      continue;
    }
    if (m.index > last) out.push({ text: text.slice(last, m.index) });
    out.push({
      variable: name === 'pass_access_scheme' ? 'scheme' : (name as 'host'),
    });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

export function compileExternalAuth(
  auth: IngressExternalAuth,
  timeoutMs: number,
  resolve: (host: string, port: number) => Cluster | null,
  path: string,
  problems: MatchBuildProblem[],
): AuthRequestFilter | null {
  const where = `${path}.ingressNginx.externalAuth`;
  if (auth.url.includes('$')) {
    problems.push({
      path: where,
      level: 'error',
      message: `auth-url "${auth.url}" uses nginx variables; sluice needs the auth service's address when the config loads, so the paths are refused rather than served unchecked`,
    });
    return null;
  }
  const u = new URL(auth.url);
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const cluster = resolve(host, port);
  if (cluster === null) {
    problems.push({
      path: where,
      level: 'error',
      message: `auth-url host ${host}:${port} resolves to no upstream; the paths are refused rather than served unchecked`,
    });
    return null;
  }
  return {
    kind: 'auth-request',
    url: auth.url,
    cluster,
    hostHeader: host,
    path: `${u.pathname}${u.search}`,
    method: auth.method ?? 'GET',
    methodSet: auth.method !== null,
    signin:
      auth.signin === null
        ? null
        : parseTemplate(signinTemplate(auth.signin, auth.signinRedirectParam), `${where}.signin`, problems),
    responseHeaders: auth.responseHeaders,
    requestRedirect: auth.requestRedirect,
    alwaysSetCookie: auth.alwaysSetCookie,
    timeoutMs,
  };
}

import {
  GRPC_STATUS_CODES,
  type Destination,
  type Headers,
  type HTTPMatchRequest,
  type HTTPRoute,
  type L4MatchAttributes,
  type RouteDestination,
  type StringMatch,
  type VirtualServiceSpec,
} from '../../../model/networking.ts';
import { parseDuration } from '../../../util/duration.ts';
import { checkRegexRewrite } from '../../../util/re2.ts';
import type { FieldPath } from '../../field-path.ts';
import {
  checkFqdn,
  checkIpOrCidr,
  checkWildcardDomain,
  hostsOverlap,
  hostSubsetOf,
  isDns1123Label,
  isIpAddress,
} from '../../validate-hosts.ts';
import {
  type Findings,
  isHeaderName,
  SPEC,
  validateDurationValue,
  validateExportTo,
  validateIntPercent,
  validatePercentage,
  validatePort,
  validateRegex,
  validateSelectorLabels,
} from '../rules-common.ts';

/** VirtualService rules Istio's validation enforces (VS-3, VS-8, VS-13, VS-15, VS-17, VS-20). */

const REDIRECT_CODES = new Set([0, 301, 302, 303, 307, 308]);
const RETRY_ON = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE']);
const MAX_DIRECT_BODY = 1024 * 1024;
const WARN_DIRECT_BODY = 100 * 1024;

function validateGatewayRef(g: string, path: FieldPath, f: Findings): void {
  if (g === 'mesh') return;
  const parts = g.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    f.error(path, `invalid gateway reference "${g}": use name, namespace/name or mesh`);
    return;
  }
  const name = parts[parts.length - 1]!;
  if (parts.length === 2) {
    if (parts[0] !== '.' && !isDns1123Label(parts[0]!))
      f.error(path, `invalid gateway namespace "${parts[0]}" in "${g}"`);
    if (!isDns1123Label(name)) f.error(path, `invalid gateway name "${name}" in "${g}"`);
    return;
  }
  if (checkFqdn(name) !== undefined) f.error(path, `invalid gateway name "${name}" in "${g}"`);
  else if (name.includes('.')) {
    const [gw, ns] = name.split('.');
    f.warn(path, `legacy gateway name format "${g}"; prefer <namespace>/<name>: "${ns}/${gw}"`);
  }
}

export function validateVirtualService(namespace: string, spec: VirtualServiceSpec, f: Findings): void {
  const isDelegate = spec.hosts.length === 0;
  const gateways = spec.gateways ?? [];
  const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');
  if (isDelegate) {
    if (gateways.length > 0)
      f.error([SPEC, 'gateways'], 'a delegate VirtualService (no hosts) must have no gateways');
    if (spec.tls?.length)
      f.error([SPEC, 'tls'], 'a delegate VirtualService (no hosts) must not have tls routes');
    if (spec.tcp?.length)
      f.error([SPEC, 'tcp'], 'a delegate VirtualService (no hosts) must not have tcp routes');
  }
  gateways.forEach((g, i) => validateGatewayRef(g, [SPEC, 'gateways', i], f));
  let allHostsValid = true;
  spec.hosts.forEach((h, i) => {
    const p: FieldPath = [SPEC, 'hosts', i];
    const bad = checkWildcardDomain(h);
    if (bad !== undefined && !isIpAddress(h)) {
      f.error(p, bad);
      allHostsValid = false;
    } else if (h === '*' && appliesToMesh) {
      f.error(p, 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allHostsValid = false;
    }
  });
  if (allHostsValid) {
    spec.hosts.forEach((h, i) => {
      for (let j = i + 1; j < spec.hosts.length; j++) {
        if (hostsOverlap(h, spec.hosts[j]!))
          f.error([SPEC, 'hosts', j], `duplicate hosts in virtual service: ${h} & ${spec.hosts[j]}`);
      }
    });
  }
  if (appliesToMesh) {
    spec.http?.forEach((route, i) =>
      route.match?.forEach((m, j) => {
        for (const field of ['headers', 'withoutHeaders'] as const) {
          for (const key of Object.keys(m[field] ?? {})) {
            if (key.startsWith('@request.auth.claims')) {
              f.error(
                [SPEC, 'http', i, 'match', j, field, key],
                `JWT claim based routing (${key}) is only supported for gateways, and this VirtualService applies to the mesh`,
              );
            }
          }
        }
      }),
    );
  }
  if (!spec.http?.length && !spec.tcp?.length && !spec.tls?.length) {
    f.error([SPEC], 'http, tcp or tls must be provided in virtual service');
  }
  spec.http?.forEach((route, i) => validateHttpRoute(route, [SPEC, 'http', i], f));
  spec.tcp?.forEach((route, i) => {
    const p: FieldPath = [SPEC, 'tcp', i];
    route.match?.forEach((m, j) => validateL4Match(m, [...p, 'match', j], f));
    if (!route.route?.length) f.error([...p, 'route'], 'TCP route is required');
    else validateRouteDestinations(route.route, [...p, 'route'], f);
  });
  spec.tls?.forEach((route, i) => {
    const p: FieldPath = [SPEC, 'tls', i];
    if (route.match.length === 0)
      f.error([...p, 'match'], 'TLS route must have at least one match condition');
    route.match.forEach((m, j) => {
      const mp: FieldPath = [...p, 'match', j];
      validateL4Match(m, mp, f);
      if (m.sniHosts.length === 0) f.error([...mp, 'sniHosts'], 'TLS match must have at least one SNI host');
      m.sniHosts.forEach((sni, k) => {
        const bad = checkWildcardDomain(sni);
        if (bad && isIpAddress(sni))
          f.warn(
            [...mp, 'sniHosts', k],
            `using an IP address ("${sni}") as an SNI host goes against the SNI spec; most clients never send one`,
          );
        else if (bad) f.error([...mp, 'sniHosts', k], bad);
        else if (!isDelegate && !spec.hosts.some((h) => hostSubsetOf(sni, h))) {
          f.error(
            [...mp, 'sniHosts', k],
            `SNI host "${sni}" is not a compatible subset of any of the virtual service hosts: [${spec.hosts.join(', ')}]`,
          );
        }
      });
    });
    if (!route.route?.length) f.error([...p, 'route'], 'TLS route is required');
    else validateRouteDestinations(route.route, [...p, 'route'], f);
  });
  validateExportTo(namespace, spec.exportTo, [SPEC, 'exportTo'], f);
  if (spec.gateways === undefined && !isDelegate) {
    f.info(
      [SPEC, 'gateways'],
      'no gateways: this VirtualService applies to the mesh only (VS-1), and a gateway ignores it',
      'SLUICE_ANALYSIS',
    );
  }
}

function validateL4Match(m: L4MatchAttributes, path: FieldPath, f: Findings): void {
  validatePort(m.port, [...path, 'port'], f);
  m.destinationSubnets?.forEach((s, i) => {
    const bad = checkIpOrCidr(s);
    if (bad) f.error([...path, 'destinationSubnets', i], bad);
  });
  validateSelectorLabels(m.sourceLabels, [...path, 'sourceLabels'], f);
  m.gateways?.forEach((g, i) => validateGatewayRef(g, [...path, 'gateways', i], f));
}

function validateStringMatch(
  m: StringMatch | Record<string, never> | undefined,
  path: FieldPath,
  f: Findings,
  opts: { emptyPrefixOk: boolean; ignoreCase?: boolean },
): void {
  if (!m) return;
  const sm = m as { exact?: string; prefix?: string; regex?: string };
  if (sm.prefix !== undefined && sm.prefix === '' && !opts.emptyPrefixOk)
    f.error([...path, 'prefix'], 'prefix must not be empty');
  if (sm.regex !== undefined) validateRegex(sm.regex, [...path, 'regex'], f, opts.ignoreCase ?? false);
}

function validateHeaderMatchName(name: string, path: FieldPath, f: Findings): void {
  if (name.startsWith('@request.auth.claims')) {
    const rest = name.slice('@request.auth.claims'.length);
    if (!/^(\.[^.[\]]+)+$/.test(rest) && !/^(\[[^[\]]+\])+$/.test(rest))
      f.error(
        path,
        `invalid JWT claim route header "${name}": use @request.auth.claims.<claim> or @request.auth.claims[a][b]`,
      );
    return;
  }
  if (!isHeaderName(name)) f.error(path, `invalid header name "${name}"`);
}

function validateHttpMatch(m: HTTPMatchRequest, path: FieldPath, f: Findings): void {
  validateStringMatch(m.uri, [...path, 'uri'], f, {
    emptyPrefixOk: true,
    ignoreCase: m.ignoreUriCase ?? false,
  });
  validateStringMatch(m.scheme, [...path, 'scheme'], f, { emptyPrefixOk: false });
  validateStringMatch(m.method, [...path, 'method'], f, { emptyPrefixOk: false });
  validateStringMatch(m.authority, [...path, 'authority'], f, { emptyPrefixOk: false });
  for (const field of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    const map = m[field];
    if (!map) continue;
    for (const [name, sm] of Object.entries(map)) {
      const p: FieldPath = [...path, field, name];
      if (field !== 'queryParams') validateHeaderMatchName(name, p, f);
      else if (name === '') f.error(p, 'query parameter name must not be empty');
      // `regex: "*"` is Istio's old spelling of "present"; it is not an RE2 pattern.
      const regex = (sm as { regex?: string }).regex;
      if (regex === '*') continue;
      validateStringMatch(sm, p, f, { emptyPrefixOk: false });
    }
  }
  validatePort(m.port, [...path, 'port'], f);
  validateSelectorLabels(m.sourceLabels, [...path, 'sourceLabels'], f);
  m.gateways?.forEach((g, i) => validateGatewayRef(g, [...path, 'gateways', i], f));
}

/** Header operations (ValidateHTTPHeaderWithAuthorityOperationName / ValidateHTTPHeaderOperationName). */
function validateHeaderOps(h: Headers | undefined, path: FieldPath, f: Findings): void {
  if (!h) return;
  for (const dir of ['request', 'response'] as const) {
    const ops = h[dir];
    if (!ops) continue;
    const check = (name: string, p: FieldPath, op: 'set' | 'add' | 'remove'): void => {
      const lower = name.toLowerCase();
      if (name === '') f.error(p, 'header name cannot be empty');
      else if (dir === 'request' && op !== 'remove') {
        if (name.startsWith(':') && lower !== ':authority')
          f.error(p, `invalid header "${name}": header cannot have a ":" prefix`);
        else if (!isHeaderName(name)) f.error(p, `invalid header name "${name}"`);
      } else if (lower === 'host')
        f.error(
          p,
          `invalid header "${name}": cannot ${op === 'remove' ? 'remove' : 'set'} the Host header here`,
        );
      else if (name.startsWith(':')) f.error(p, `invalid header "${name}": header cannot have a ":" prefix`);
      else if (!isHeaderName(name)) f.error(p, `invalid header name "${name}"`);
    };
    for (const op of ['set', 'add'] as const) {
      for (const [name, value] of Object.entries(ops[op] ?? {})) {
        check(name, [...path, dir, op, name], op);
        // eslint-disable-next-line no-control-regex
        if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value))
          f.error([...path, dir, op, name], 'header value contains control characters');
      }
    }
    ops.remove?.forEach((name, i) => check(name, [...path, dir, 'remove', i], 'remove'));
  }
}

function validateDestination(d: Destination, path: FieldPath, f: Findings): void {
  if (d.host === '') f.error([...path, 'host'], 'destination host is required');
  else if (d.host === '*')
    f.error([...path, 'host'], 'invalid destination host *: a destination must name one host');
  else {
    const bad = checkWildcardDomain(d.host);
    if (bad && !isIpAddress(d.host)) f.error([...path, 'host'], bad);
  }
  if (d.subset !== undefined && d.subset !== '' && !isDns1123Label(d.subset))
    f.error([...path, 'subset'], `subset name "${d.subset}" is invalid: must be a DNS label`);
  validatePort(d.port?.number, [...path, 'port', 'number'], f);
}

function validateRouteDestinations(
  routes: readonly (RouteDestination & { headers?: Headers })[],
  path: FieldPath,
  f: Findings,
): void {
  let total = 0;
  routes.forEach((r, i) => {
    validateDestination(r.destination, [...path, i, 'destination'], f);
    const w = r.weight ?? 0;
    if (w < 0) f.error([...path, i, 'weight'], `weight must not be negative, got ${w}`);
    total += w;
    validateHeaderOps(r.headers, [...path, i, 'headers'], f);
  });
  if (routes.length > 1 && total === 0)
    f.error(
      path,
      `total destination weight is 0: with ${routes.length} destinations at least one needs a weight above 0`,
    );
}

function isBase64(s: string): boolean {
  const c = s.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/]*={0,2}$/.test(c) && c.length % 4 === 0;
}

function validateHttpRoute(h: HTTPRoute, path: FieldPath, f: Findings): void {
  const actions = [
    h.route?.length ? 'route' : '',
    h.redirect ? 'redirect' : '',
    h.directResponse ? 'directResponse' : '',
    h.delegate ? 'delegate' : '',
  ].filter(Boolean);
  if (actions.length === 0) f.error(path, 'HTTP route, redirect, directResponse or delegate is required');
  else if (actions.length > 1)
    f.error(
      [...path, actions[1]!],
      `HTTP route may have only one of route, redirect, directResponse, delegate; got ${actions.join(' and ')}`,
    );
  if (h.redirect && h.rewrite)
    f.error([...path, 'rewrite'], 'HTTP route cannot contain both rewrite and redirect');
  if (h.redirect && h.fault) f.error([...path, 'fault'], 'HTTP route cannot contain both fault and redirect');
  if (h.directResponse && h.rewrite)
    f.error([...path, 'rewrite'], 'HTTP route cannot contain both rewrite and directResponse');
  h.match?.forEach((m, i) => validateHttpMatch(m, [...path, 'match', i], f));
  if (h.route?.length) validateRouteDestinations(h.route, [...path, 'route'], f);
  else if (h.route && h.route.length === 0 && actions.length === 0)
    f.error([...path, 'route'], 'destination is required');
  if (h.redirect) {
    const r = h.redirect;
    const rp: FieldPath = [...path, 'redirect'];
    if (r.redirectCode !== undefined && !REDIRECT_CODES.has(r.redirectCode))
      f.error(
        [...rp, 'redirectCode'],
        `redirect code must be 301, 302, 303, 307 or 308, got ${r.redirectCode}`,
      );
    if (!r.uri && !r.authority && !r.scheme && r.port === undefined && r.derivePort === undefined)
      f.error(rp, 'redirect must specify uri, authority, scheme, port or derivePort');
    if (r.port !== undefined && r.derivePort !== undefined)
      f.error([...rp, 'derivePort'], 'redirect may set only one of port and derivePort');
    if (r.scheme !== undefined && r.scheme !== '' && r.scheme !== 'http' && r.scheme !== 'https') {
      f.error([...rp, 'scheme'], `invalid redirect scheme "${r.scheme}": must be "http" or "https"`);
    }
    validatePort(r.port, [...rp, 'port'], f);
  }
  if (h.directResponse) {
    const d = h.directResponse;
    const dp: FieldPath = [...path, 'directResponse'];
    if (d.status < 200 || d.status > 599)
      f.error([...dp, 'status'], `status must be in 200..599, got ${d.status}`);
    const body = d.body;
    if (body) {
      if (body.string !== undefined && body.bytes !== undefined)
        f.error([...dp, 'body'], 'body may set only one of string and bytes');
      if (body.bytes !== undefined && !isBase64(body.bytes))
        f.error([...dp, 'body', 'bytes'], 'bytes must be base64');
      const size =
        body.string !== undefined
          ? Buffer.byteLength(body.string)
          : body.bytes !== undefined
            ? Math.floor((body.bytes.replace(/\s+/g, '').length * 3) / 4)
            : 0;
      if (size > MAX_DIRECT_BODY) f.error([...dp, 'body'], `body is ${size} bytes; at most 1 MB is allowed`);
      else if (size > WARN_DIRECT_BODY)
        f.warn(
          [...dp, 'body'],
          `body is ${size} bytes; direct responses above 100 KB are kept in memory per route`,
        );
    }
  }
  if (h.rewrite) {
    const rw = h.rewrite;
    const rp: FieldPath = [...path, 'rewrite'];
    if (rw.uri !== undefined && rw.uriRegexRewrite !== undefined)
      f.error(rp, 'rewrite may only contain one of uri and uriRegexRewrite');
    if (rw.uri === undefined && rw.authority === undefined && rw.uriRegexRewrite === undefined)
      f.error(rp, 'rewrite must specify uri, authority or uriRegexRewrite');
    if (rw.uriRegexRewrite && rw.uriRegexRewrite.rewrite === '') {
      f.error([...rp, 'uriRegexRewrite', 'rewrite'], 'uriRegexRewrite requires both match and rewrite');
    } else if (rw.uriRegexRewrite) {
      const c = checkRegexRewrite(rw.uriRegexRewrite.match, rw.uriRegexRewrite.rewrite);
      if (!c.ok) f.error([...rp, 'uriRegexRewrite', c.field], c.error, 'SLUICE_REGEX_INVALID');
    }
  }
  validateDurationValue(h.timeout, [...path, 'timeout'], f, true);
  if (h.retries) {
    const r = h.retries;
    const rp: FieldPath = [...path, 'retries'];
    if (r.attempts !== undefined && r.attempts < 0)
      f.error([...rp, 'attempts'], `attempts cannot be negative, got ${r.attempts}`);
    if (
      (r.attempts ?? 0) === 0 &&
      (r.perTryTimeout !== undefined || (r.retryOn ?? '') !== '' || r.retryRemoteLocalities !== undefined)
    ) {
      f.error(
        [...rp, 'attempts'],
        'retry policy configured while attempts is 0 (retries disabled); set attempts',
      );
    }
    validateDurationValue(r.perTryTimeout, [...rp, 'perTryTimeout'], f);
    validateDurationValue(r.backoff, [...rp, 'backoff'], f);
    if (r.retryOn !== undefined) {
      for (const token of r.retryOn.split(',').map((t) => t.trim())) {
        if (token === '') continue;
        if (/^\d+$/.test(token)) {
          const code = Number(token);
          if (code < 100 || code > 599)
            f.error([...rp, 'retryOn'], `"${token}" is not a valid HTTP status code for retryOn`);
        } else if (!RETRY_ON.has(token))
          f.error([...rp, 'retryOn'], `"${token}" is not a valid retryOn policy`);
      }
    }
  }
  if (h.fault) {
    const fp: FieldPath = [...path, 'fault'];
    if (!h.fault.delay && !h.fault.abort) f.error(fp, 'fault must have at least a delay or an abort');
    const d = h.fault.delay;
    if (d) {
      if (d.exponentialDelay !== undefined)
        f.error([...fp, 'delay', 'exponentialDelay'], 'exponentialDelay is not supported (Istio rejects it)');
      if (d.fixedDelay === undefined && d.exponentialDelay === undefined)
        f.error([...fp, 'delay'], 'delay must set fixedDelay');
      validateDurationValue(d.fixedDelay, [...fp, 'delay', 'fixedDelay'], f);
      validatePercentage(d.percentage, [...fp, 'delay', 'percentage'], f);
      validateIntPercent(d.percent, [...fp, 'delay', 'percent'], f);
    }
    const a = h.fault.abort;
    if (a) {
      const kinds = [
        a.httpStatus !== undefined,
        a.grpcStatus !== undefined,
        a.http2Error !== undefined,
      ].filter(Boolean).length;
      if (kinds === 0) f.warn([...fp, 'abort'], 'abort is configured but sets no httpStatus or grpcStatus');
      if (a.http2Error !== undefined)
        f.error([...fp, 'abort', 'http2Error'], 'HTTP/2 abort fault injection is not supported');
      if (a.grpcStatus !== undefined && !Object.hasOwn(GRPC_STATUS_CODES, a.grpcStatus)) {
        f.error(
          [...fp, 'abort', 'grpcStatus'],
          `gRPC status "${a.grpcStatus}" is not supported; use a name such as NOT_FOUND or UNAVAILABLE`,
        );
      }
      if (kinds > 1)
        f.error([...fp, 'abort'], 'abort may set only one of httpStatus, grpcStatus, http2Error');
      if (a.httpStatus !== undefined && (a.httpStatus < 200 || a.httpStatus > 600))
        f.error([...fp, 'abort', 'httpStatus'], `httpStatus must be in 200..600, got ${a.httpStatus}`);
      validatePercentage(a.percentage, [...fp, 'abort', 'percentage'], f);
    }
  }
  if (h.mirror && h.mirrors?.length) f.error([...path, 'mirrors'], 'mirror and mirrors cannot both be set');
  if (h.mirror) validateDestination(h.mirror, [...path, 'mirror'], f);
  h.mirrors?.forEach((m, i) => {
    validateDestination(m.destination, [...path, 'mirrors', i, 'destination'], f);
    validatePercentage(m.percentage, [...path, 'mirrors', i, 'percentage'], f);
  });
  validatePercentage(h.mirrorPercentage, [...path, 'mirrorPercentage'], f);
  validateIntPercent(h.mirrorPercent, [...path, 'mirrorPercent'], f);
  if (h.corsPolicy) {
    const c = h.corsPolicy;
    const cp: FieldPath = [...path, 'corsPolicy'];
    c.allowOrigins?.forEach((o, i) => {
      const m = o as { exact?: string; prefix?: string; regex?: string };
      if (!m.exact && !m.prefix && !m.regex)
        f.error([...cp, 'allowOrigins', i], 'an allowOrigins entry needs a non-empty exact, prefix or regex');
      else validateStringMatch(o, [...cp, 'allowOrigins', i], f, { emptyPrefixOk: false });
    });
    c.allowMethods?.forEach((m, i) => {
      if (m !== '*' && !METHODS.has(m))
        f.error([...cp, 'allowMethods', i], `"${m}" is not a supported HTTP method`);
    });
    for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
      c[field]?.forEach((name, i) => {
        if (name !== '*' && !isHeaderName(name)) f.error([...cp, field, i], `invalid header name "${name}"`);
      });
    }
    if (c.maxAge !== undefined) {
      const d = parseDuration(c.maxAge, { bareSeconds: false });
      if (d.ok && d.ms % 1000 !== 0)
        f.error([...cp, 'maxAge'], `maxAge is accurate only to seconds, got "${c.maxAge}"`);
    }
  }
  validateHeaderOps(h.headers, [...path, 'headers'], f);
  const authoritySet =
    h.headers?.request?.set &&
    Object.keys(h.headers.request.set).some((k) => k.toLowerCase() === ':authority');
  if (authoritySet && h.rewrite?.authority !== undefined)
    f.error(
      [...path, 'headers', 'request', 'set'],
      'cannot set :authority here and rewrite.authority: the authority would change twice',
    );
}

import type { Code } from '../errors/codes.ts';
import type { Level } from '../errors/diagnostic.ts';
import type { EndpointSliceSpec, SecretSpec } from '../model/kube.ts';
import type {
  ClientTlsSettings,
  Destination,
  DestinationRuleSpec,
  GatewaySpec,
  Headers,
  HTTPMatchRequest,
  HTTPRoute,
  L4MatchAttributes,
  Percent,
  RouteDestination,
  ServerTlsSettings,
  ServiceEntrySpec,
  StringMatch,
  TrafficPolicy,
  VirtualServiceSpec,
} from '../model/networking.ts';
import type { Resource } from '../model/resource.ts';
import type {
  AuthorizationPolicySpec,
  PolicyTargetReference,
  RequestAuthenticationSpec,
  WorkloadSelector,
} from '../model/security.ts';
import { parseDuration } from '../util/duration.ts';
import { checkRegexRewrite, compileRe2 } from '../util/re2.ts';
import type { FieldPath } from './field-path.ts';
import {
  checkFqdn,
  checkGatewayHost,
  checkIpOrCidr,
  checkLabel,
  checkWildcardDomain,
  hostsOverlap,
  hostSubsetOf,
  isCidr,
  isDns1123Label,
  isIpAddress,
} from './validate-hosts.ts';

/**
 * Per-resource rules Istio's validation enforces (istio/istio pkg/config/validation/validation.go,
 * virtualservice.go, and the CRD schemas' CEL rules), plus warnings for valid config that will
 * surprise. Cross-resource checks belong to compile/analysis.
 */
export interface Finding {
  readonly level: Level;
  readonly code: Code;
  readonly path: FieldPath;
  readonly message: string;
}

class Findings {
  readonly list: Finding[] = [];
  error(path: FieldPath, message: string, code: Code = 'SLUICE_CONFIG_INVALID'): void {
    this.list.push({ level: 'error', code, path, message });
  }
  warn(path: FieldPath, message: string, code: Code = 'SLUICE_CONFIG_INVALID'): void {
    this.list.push({ level: 'warning', code, path, message });
  }
  info(path: FieldPath, message: string, code: Code): void {
    this.list.push({ level: 'info', code, path, message });
  }
}

export function validateResource(r: Resource): Finding[] {
  const f = new Findings();
  switch (r.kind) {
    case 'Gateway':
      validateGateway(r.name, r.spec as GatewaySpec, f);
      break;
    case 'VirtualService':
      validateVirtualService(r.namespace, r.spec as VirtualServiceSpec, f);
      break;
    case 'DestinationRule':
      validateDestinationRule(r.namespace, r.spec as DestinationRuleSpec, f);
      break;
    case 'ServiceEntry':
      validateServiceEntry(r.namespace, r.spec as ServiceEntrySpec, f);
      break;
    case 'RequestAuthentication':
      validateRequestAuthentication(r.namespace, r.spec as RequestAuthenticationSpec, f);
      break;
    case 'AuthorizationPolicy':
      validateAuthorizationPolicy(r.namespace, r.spec as AuthorizationPolicySpec, f);
      break;
    case 'Secret':
      validateSecret(r.spec as SecretSpec, f);
      break;
    case 'EndpointSlice':
      if ((r.spec as EndpointSliceSpec).serviceName === '') {
        f.warn(
          ['metadata', 'labels'],
          'no kubernetes.io/service-name label: these endpoints belong to no Service and are unused',
        );
      }
      break;
    default:
      break;
  }
  return f.list;
}

// ---------------------------------------------------------------- shared

const SPEC = 'spec';

function validatePort(n: number | undefined, path: FieldPath, f: Findings, what = 'port'): void {
  if (n === undefined) return;
  if (n < 1 || n > 65535) f.error(path, `${what} must be between 1-65535, got ${n}`);
}

function validateSelectorLabels(
  labels: Readonly<Record<string, string>> | undefined,
  path: FieldPath,
  f: Findings,
): void {
  if (!labels) return;
  for (const [k, v] of Object.entries(labels)) {
    const bad = checkLabel(k, v);
    if (bad) f.error([...path, k], bad);
  }
}

function validatePercentage(p: Percent | undefined, path: FieldPath, f: Findings): void {
  const v = p?.value;
  if (v === undefined) return;
  if (v < 0 || v > 100 || (v > 0 && v < 0.0001))
    f.error([...path, 'value'], `percentage must be 0 or in 0.0001..100, got ${v}`);
}

function validateIntPercent(v: number | undefined, path: FieldPath, f: Findings): void {
  if (v !== undefined && (v < 0 || v > 100)) f.error(path, `percentage must be in 0..100, got ${v}`);
}

/** Durations at least 1 ms with ms precision (ValidateDuration). */
function validateDurationValue(s: string | undefined, path: FieldPath, f: Findings, allowZero = false): void {
  if (s === undefined) return;
  const d = parseDuration(s, { bareSeconds: false });
  if (!d.ok) return; // the schema already reported it
  if (allowZero && d.ms === 0) return;
  if (d.ms < 1) f.error(path, `duration must be at least 1ms, got "${s}"`);
  else if (!Number.isInteger(d.ms)) f.error(path, `only durations to ms precision are supported, got "${s}"`);
}

function validateExportTo(
  namespace: string,
  exportTo: readonly string[] | undefined,
  path: FieldPath,
  f: Findings,
): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  exportTo.forEach((e, i) => {
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      f.error(
        [...path, i],
        key !== e
          ? `duplicate entries in exportTo: . and current namespace ${namespace}`
          : `duplicate entries in exportTo for entry ${e}`,
      );
    }
    seen.add(key);
    if (e !== '.' && e !== '*' && e !== '~' && !isDns1123Label(e))
      f.error([...path, i], `invalid exportTo value "${e}": use ".", "*", "~" or a namespace name`);
  });
  if (seen.has('*') && exportTo.length > 1)
    f.error(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) f.error(path, 'cannot export to no one (~) and someone');
}

const HEADER_NAME = /^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function isHeaderName(s: string): boolean {
  return HEADER_NAME.test(s);
}

function validateRegex(source: string, path: FieldPath, f: Findings, ignoreCase = false): void {
  if (source === '') {
    f.error(path, 'regex must not be empty', 'SLUICE_REGEX_INVALID');
    return;
  }
  const c = compileRe2(source, { ignoreCase });
  if (!c.ok) f.error(path, c.error, 'SLUICE_REGEX_INVALID');
}

// ---------------------------------------------------------------- Gateway (GW-4, GW-6, GW-7)

const HTTP_FAMILY = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const TLS_FAMILY = new Set(['HTTPS', 'TLS']);
const TLS_VERSION_ORDER = ['TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];

function validateGateway(name: string, spec: GatewaySpec, f: Findings): void {
  if (!isDns1123Label(name)) {
    f.error(
      ['metadata', 'name'],
      `invalid gateway name "${name}": must be a DNS label (lowercase letters, digits, "-", no dots)`,
    );
  }
  if (spec.servers.length === 0) {
    f.error([SPEC, 'servers'], 'gateway must have at least one server');
    return;
  }
  const portNames = new Map<string, number>();
  spec.servers.forEach((server, i) => {
    const sp: FieldPath = [SPEC, 'servers', i];
    if (server.hosts.length === 0) f.error([...sp, 'hosts'], 'server config must contain at least one host');
    server.hosts.forEach((h, j) => {
      for (const e of checkGatewayHost(h)) f.error([...sp, 'hosts', j], e);
    });
    const port = server.port;
    const unixBind = server.bind?.startsWith('unix://') ?? false;
    if (port.number > 0 || !unixBind) validatePort(port.number, [...sp, 'port', 'number'], f, 'port number');
    if (port.targetPort !== undefined && port.targetPort > 0) {
      f.error(
        [...sp, 'port', 'targetPort'],
        'targetPort has no impact on Gateways: the server listens on port.number',
      );
    }
    if (port.name === '') f.error([...sp, 'port', 'name'], 'port name must be set');
    else if (portNames.has(port.name)) {
      f.error(
        [...sp, 'port', 'name'],
        `port names in servers must be unique: duplicate name ${port.name} (also spec.servers[${portNames.get(port.name)}])`,
      );
    } else portNames.set(port.name, i);
    if (server.bind !== undefined && server.bind !== '') {
      if (unixBind) {
        const sock = server.bind.slice('unix://'.length);
        if (sock === '' || (!sock.startsWith('@') && (!sock.startsWith('/') || sock.endsWith('/')))) {
          f.error([...sp, 'bind'], `${server.bind} is not an absolute path to a unix socket`);
        }
        if (port.number !== 0)
          f.error([...sp, 'port', 'number'], 'port number must be 0 for a unix domain socket bind');
      } else if (!isIpAddress(server.bind))
        f.error([...sp, 'bind'], `bind "${server.bind}" is not an IP address or unix:// path`);
    }
    validateServerTls(server.tls, [...sp, 'tls'], f);
    const proto = port.protocol;
    const tls = server.tls;
    if (tls?.httpsRedirect && !HTTP_FAMILY.has(proto)) {
      f.warn(
        [...sp, 'tls', 'httpsRedirect'],
        `tls.httpsRedirect should only be used with HTTP servers, not ${proto}`,
      );
    }
    if (TLS_FAMILY.has(proto)) {
      if (!tls) f.error([...sp, 'tls'], `server must have TLS settings for ${proto}`);
      else if (tls.mode === undefined && (proto === 'HTTPS' || hasCertificate(tls))) {
        // GW-6: the enum's zero value is PASSTHROUGH, so a forgotten mode silently disables termination.
        f.warn(
          [...sp, 'tls', 'mode'],
          hasCertificate(tls)
            ? 'tls.mode is not set, so it is PASSTHROUGH (GW-6): the certificate is IGNORED and TLS is not terminated here; set mode: SIMPLE to terminate TLS'
            : 'tls.mode is not set, so it is PASSTHROUGH (GW-6): TLS is passed through by SNI, not terminated',
          'SLUICE_TLS_CONFIG',
        );
      }
    } else if (tls) {
      if (HTTP_FAMILY.has(proto)) {
        const passthrough = tls.mode === undefined || tls.mode === 'PASSTHROUGH';
        if (!passthrough || tls.caCertificates || tls.privateKey || tls.serverCertificate) {
          f.error(
            [...sp, 'tls'],
            `server cannot have TLS settings for plain text ${proto} ports (only httpsRedirect)`,
          );
        }
      } else {
        f.error([...sp, 'tls'], `server cannot have TLS settings for non HTTPS/TLS ports (${proto})`);
      }
    }
    if (server.defaultEndpoint !== undefined) {
      f.warn(
        [...sp, 'defaultEndpoint'],
        'defaultEndpoint is not implemented by Istio gateways or sluice; it is ignored',
        'SLUICE_CONFIG_UNSUPPORTED',
      );
    }
    if (tls?.mode === 'ISTIO_MUTUAL') {
      f.warn(
        [...sp, 'tls', 'mode'],
        'ISTIO_MUTUAL needs the mesh CA, which sluice does not have; this server cannot complete TLS handshakes',
        'SLUICE_CONFIG_UNSUPPORTED',
      );
    }
    if (tls?.mode === 'AUTO_PASSTHROUGH') {
      f.warn(
        [...sp, 'tls', 'mode'],
        'AUTO_PASSTHROUGH is for east-west (multi-cluster) gateways; sluice does not serve this server',
        'SLUICE_CONFIG_UNSUPPORTED',
      );
    }
  });
}

function hasCertificate(tls: ServerTlsSettings): boolean {
  return !!(
    tls.credentialName ||
    tls.serverCertificate ||
    tls.privateKey ||
    tls.caCertificates ||
    tls.caCrl ||
    tls.credentialNames?.length ||
    tls.tlsCertificates?.length
  );
}

/** validateTLSOptions (GW-13, GW-15, GW-16, GW-17). */
function validateServerTls(tls: ServerTlsSettings | undefined, path: FieldPath, f: Findings): void {
  if (!tls) return;
  const T = 'SLUICE_TLS_CONFIG';
  if (
    (tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') &&
    !tls.cipherSuites?.length
  ) {
    f.warn(
      [...path, 'minProtocolVersion'],
      'TLS versions below TLSV1_2 need cipherSuites set: the default ciphers no longer include compatible ones',
      T,
    );
  }
  if (tls.minProtocolVersion && tls.maxProtocolVersion) {
    const min = TLS_VERSION_ORDER.indexOf(tls.minProtocolVersion);
    const max = TLS_VERSION_ORDER.indexOf(tls.maxProtocolVersion);
    if (min >= 0 && max >= 0 && min > max) {
      f.error(
        [...path, 'minProtocolVersion'],
        `minProtocolVersion ${tls.minProtocolVersion} is above maxProtocolVersion ${tls.maxProtocolVersion}`,
        T,
      );
    }
  }
  const seenCiphers = new Set<string>();
  tls.cipherSuites?.forEach((c, i) => {
    if (seenCiphers.has(c)) f.warn([...path, 'cipherSuites', i], `ignoring duplicate cipher suite ${c}`, T);
    seenCiphers.add(c);
  });
  if (tls.mode === 'ISTIO_MUTUAL') {
    const fields = ['serverCertificate', 'privateKey', 'caCertificates', 'credentialName'] as const;
    for (const field of fields) {
      if (tls[field]) f.error([...path, field], `ISTIO_MUTUAL TLS cannot have an associated ${field}`, T);
    }
    if (tls.tlsCertificates?.length)
      f.error([...path, 'tlsCertificates'], 'ISTIO_MUTUAL TLS cannot have associated tlsCertificates', T);
    if (tls.credentialNames?.length)
      f.error([...path, 'credentialNames'], 'ISTIO_MUTUAL TLS cannot have associated credentialNames', T);
    return;
  }
  if ((tls.mode === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH') && hasCertificate(tls)) {
    f.warn([...path, 'mode'], `${tls.mode} mode does not use certificates; they are ignored`, T);
  }
  const sources = [
    tls.serverCertificate && tls.privateKey ? 'serverCertificate/privateKey' : '',
    tls.credentialName ? 'credentialName' : '',
    tls.credentialNames?.length ? 'credentialNames' : '',
    tls.tlsCertificates?.length ? 'tlsCertificates' : '',
  ].filter(Boolean);
  if (sources.length > 1) {
    f.error(
      path,
      `only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates may be set; got ${sources.join(' and ')}`,
      T,
    );
  }
  if (tls.credentialNames && tls.credentialNames.length > 2) {
    f.error(
      [...path, 'credentialNames'],
      `at most 2 credentialNames (one RSA, one ECDSA), got ${tls.credentialNames.length}`,
      T,
    );
  }
  // Istio's rules (validateTLSOptions). With a credential the CRL is read from the Secret that gives
  // the client CA: `ca.crl` beside `ca.crt`, or `crl` beside `cacert` (GW-15; compile/tls.ts).
  if (tls.caCrl) {
    if (tls.credentialName)
      f.error(
        [...path, 'caCrl'],
        'caCrl is not supported with credentialName: put the CRL in the credential (Secret key ca.crl beside ca.crt, or crl beside cacert)',
        T,
      );
    else if (tls.credentialNames?.length)
      f.warn(
        [...path, 'caCrl'],
        'caCrl is ignored with credentialNames: the CRL is read from the credential (Secret key ca.crl beside ca.crt, or crl beside cacert)',
        T,
      );
    if (tls.mode === 'SIMPLE') f.error([...path, 'caCrl'], 'caCrl is not supported with SIMPLE TLS', T);
  }
  const mode = tls.mode;
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return;
  // Certificates fetched by name need no files.
  if (tls.credentialName || tls.credentialNames?.length) return;
  const label = mode === 'SIMPLE' ? 'SIMPLE TLS' : `${mode} TLS`;
  if (mode !== 'SIMPLE' && !tls.caCertificates) {
    f.error(
      [...path, 'caCertificates'],
      `${label} requires a client CA bundle (caCertificates or credentialName)`,
      T,
    );
  }
  if (tls.tlsCertificates?.length) {
    if (tls.tlsCertificates.length > 2)
      f.warn([...path, 'tlsCertificates'], `${label} supports up to 2 server certificates`, T);
    tls.tlsCertificates.forEach((c, i) => {
      if (!c.serverCertificate)
        f.error(
          [...path, 'tlsCertificates', i, 'serverCertificate'],
          `${label} requires a server certificate`,
          T,
        );
      if (!c.privateKey)
        f.error([...path, 'tlsCertificates', i, 'privateKey'], `${label} requires a private key`, T);
    });
    return;
  }
  if (!tls.serverCertificate)
    f.error(
      [...path, 'serverCertificate'],
      `${label} requires a server certificate (serverCertificate or credentialName)`,
      T,
    );
  if (!tls.privateKey)
    f.error([...path, 'privateKey'], `${label} requires a private key (privateKey or credentialName)`, T);
}

// ---------------------------------------------------------------- VirtualService (VS-3, VS-8, VS-13, VS-15, VS-17, VS-20)

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
const GRPC_STATUS = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
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

function validateVirtualService(namespace: string, spec: VirtualServiceSpec, f: Findings): void {
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
      if (a.grpcStatus !== undefined && !GRPC_STATUS.has(a.grpcStatus)) {
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

// ---------------------------------------------------------------- DestinationRule (§3)

function validateClientTls(t: ClientTlsSettings | undefined, path: FieldPath, f: Findings): void {
  if (!t) return;
  if ((t.mode === 'SIMPLE' || t.mode === 'MUTUAL') && t.credentialName) {
    if (t.clientCertificate || t.caCertificates || t.privateKey)
      f.error(
        path,
        'cannot specify client certificates or CA certificate when credentialName is set',
        'SLUICE_TLS_CONFIG',
      );
    return;
  }
  if (t.mode === 'MUTUAL') {
    if (!t.clientCertificate)
      f.error(
        [...path, 'clientCertificate'],
        'client certificate required for mutual tls',
        'SLUICE_TLS_CONFIG',
      );
    if (!t.privateKey)
      f.error([...path, 'privateKey'], 'private key required for mutual tls', 'SLUICE_TLS_CONFIG');
  }
}

function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let d = 3; d * d <= x; d += 2) if (x % d === 0) return false;
  return true;
}

/** One traffic policy's blocks (validateTrafficPolicy and validatePortTrafficPolicies). */
function validatePolicyBlocks(b: TrafficPolicy, p: FieldPath, f: Findings): void {
  const lb = b.loadBalancer;
  if (lb) {
    const lp: FieldPath = [...p, 'loadBalancer'];
    if (lb.simple !== undefined && lb.consistentHash !== undefined)
      f.error(lp, 'loadBalancer may set only one of simple and consistentHash');
    const ch = lb.consistentHash;
    if (ch) {
      if (ch.minimumRingSize) {
        f.warn(
          [...lp, 'consistentHash', 'minimumRingSize'],
          'consistentHash.minimumRingSize is deprecated; use ringHash.minimumRingSize',
        );
        if (ch.ringHash || ch.maglev)
          f.error([...lp, 'consistentHash'], 'only one of minimumRingSize or maglev/ringHash can be set');
      }
      const keys = [ch.httpHeaderName, ch.httpCookie, ch.useSourceIp, ch.httpQueryParameterName].filter(
        (v) => v !== undefined,
      ).length;
      if (keys > 1)
        f.error(
          [...lp, 'consistentHash'],
          'consistentHash may set only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName',
        );
      if (ch.ringHash && ch.maglev)
        f.error([...lp, 'consistentHash'], 'consistentHash may set only one of ringHash and maglev');
      if (ch.httpCookie && ch.httpCookie.name === '')
        f.error([...lp, 'consistentHash', 'httpCookie', 'name'], 'name required for httpCookie');
      validateDurationValue(ch.httpCookie?.ttl, [...lp, 'consistentHash', 'httpCookie', 'ttl'], f, true);
      const ml = ch.maglev;
      if (ml) {
        const tp: FieldPath = [...lp, 'consistentHash', 'maglev', 'tableSize'];
        const size = ml.tableSize ?? 0;
        if (size === 0) f.error(tp, 'tableSize must be set for maglev');
        else if (size >= 5000011) f.error(tp, `tableSize must be less than 5000011 for maglev, got ${size}`);
        else if (!isPrime(size)) f.error(tp, `tableSize must be a prime number for maglev, got ${size}`);
      }
    }
    const w = lb.warmup;
    if (w) {
      const wp: FieldPath = [...lp, 'warmup'];
      if (w.duration === undefined) f.error([...wp, 'duration'], 'warmup duration is required');
      validateDurationValue(w.duration, [...wp, 'duration'], f);
      if (w.minimumPercent !== undefined && (w.minimumPercent < 0 || w.minimumPercent > 100)) {
        f.error([...wp, 'minimumPercent'], `minimumPercent must be in 0..100, got ${w.minimumPercent}`);
      }
      if (w.aggression !== undefined && w.aggression < 1)
        f.error([...wp, 'aggression'], `aggression must be at least 1, got ${w.aggression}`);
    }
    validateDurationValue(lb.warmupDurationSecs, [...lp, 'warmupDurationSecs'], f);
  }
  const od = b.outlierDetection;
  if (od) {
    const op: FieldPath = [...p, 'outlierDetection'];
    if (od.consecutiveErrors)
      f.warn(
        [...op, 'consecutiveErrors'],
        'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors',
      );
    if (!od.splitExternalLocalOriginErrors && (od.consecutiveLocalOriginFailures ?? 0) > 0) {
      f.error(
        [...op, 'consecutiveLocalOriginFailures'],
        'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true',
      );
    }
    validateDurationValue(od.interval, [...op, 'interval'], f);
    validateDurationValue(od.baseEjectionTime, [...op, 'baseEjectionTime'], f);
    validateIntPercent(od.maxEjectionPercent, [...op, 'maxEjectionPercent'], f);
    validateIntPercent(od.minHealthPercent, [...op, 'minHealthPercent'], f);
  }
  const cp = b.connectionPool;
  if (cp) {
    const pp: FieldPath = [...p, 'connectionPool'];
    if (!cp.http && !cp.tcp) f.error(pp, 'connection pool must have at least one field (http or tcp)');
    const http = cp.http;
    if (http) {
      for (const k of [
        'http1MaxPendingRequests',
        'http2MaxRequests',
        'maxRequestsPerConnection',
        'maxRetries',
        'maxConcurrentStreams',
      ] as const) {
        const v = http[k];
        if (v !== undefined && v < 0) f.error([...pp, 'http', k], `${k} must not be negative, got ${v}`);
      }
      validateDurationValue(http.idleTimeout, [...pp, 'http', 'idleTimeout'], f);
      if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol) {
        f.error(
          [...pp, 'http', 'useClientProtocol'],
          'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE',
        );
      }
    }
    const tcp = cp.tcp;
    if (tcp) {
      if (tcp.maxConnections !== undefined && tcp.maxConnections < 0) {
        f.error(
          [...pp, 'tcp', 'maxConnections'],
          `maxConnections must not be negative, got ${tcp.maxConnections}`,
        );
      }
      validateDurationValue(tcp.connectTimeout, [...pp, 'tcp', 'connectTimeout'], f);
      validateDurationValue(tcp.maxConnectionDuration, [...pp, 'tcp', 'maxConnectionDuration'], f);
      validateDurationValue(tcp.idleTimeout, [...pp, 'tcp', 'idleTimeout'], f, true);
      validateDurationValue(tcp.tcpKeepalive?.time, [...pp, 'tcp', 'tcpKeepalive', 'time'], f);
      validateDurationValue(tcp.tcpKeepalive?.interval, [...pp, 'tcp', 'tcpKeepalive', 'interval'], f);
    }
  }
  validateClientTls(b.tls, [...p, 'tls'], f);
  if (b.tls?.mode === 'ISTIO_MUTUAL') {
    f.warn(
      [...p, 'tls', 'mode'],
      'ISTIO_MUTUAL origination needs mesh certificates, which sluice does not have; connections using it will fail',
      'SLUICE_CONFIG_UNSUPPORTED',
    );
  }
  if (b.loadBalancer?.localityLbSetting !== undefined) {
    f.warn(
      [...p, 'loadBalancer', 'localityLbSetting'],
      'sluice runs in a single locality (DR-5): localityLbSetting is accepted and has no effect',
      'SLUICE_CONFIG_UNSUPPORTED',
    );
  }
}

function validateTrafficPolicy(tp: TrafficPolicy | undefined, path: FieldPath, f: Findings): void {
  if (!tp) return;
  const any = [
    tp.loadBalancer,
    tp.connectionPool,
    tp.outlierDetection,
    tp.tls,
    tp.portLevelSettings,
    tp.tunnel,
    tp.proxyProtocol,
    tp.retryBudget,
  ].some((v) => v !== undefined);
  if (!any) {
    f.error(path, 'traffic policy must have at least one field');
    return;
  }
  if (tp.tunnel && tp.proxyProtocol) f.error(path, 'tunnel and proxyProtocol must not be set together');
  const tunnel = tp.tunnel as { protocol?: string; targetHost?: string; targetPort?: number } | undefined;
  if (tunnel) {
    const tup: FieldPath = [...path, 'tunnel'];
    if (
      tunnel.protocol !== undefined &&
      tunnel.protocol !== '' &&
      tunnel.protocol !== 'CONNECT' &&
      tunnel.protocol !== 'POST'
    ) {
      f.error([...tup, 'protocol'], `tunnel protocol must be "CONNECT" or "POST", got "${tunnel.protocol}"`);
    }
    const th = tunnel.targetHost ?? '';
    if (checkFqdn(th) !== undefined && !isIpAddress(th))
      f.error([...tup, 'targetHost'], `tunnel target host must be an FQDN or IP address, got "${th}"`);
    validatePort(tunnel.targetPort ?? 0, [...tup, 'targetPort'], f, 'tunnel targetPort');
  }
  validatePolicyBlocks(tp, path, f);
  tp.portLevelSettings?.forEach((pl, i) => {
    const pp: FieldPath = [...path, 'portLevelSettings', i];
    if (pl.port === undefined) f.error([...pp, 'port'], 'portLevelSettings need a port');
    else validatePort(pl.port.number ?? 0, [...pp, 'port', 'number'], f);
    if (!pl.outlierDetection && !pl.connectionPool && !pl.loadBalancer && !pl.tls) {
      f.error(
        pp,
        'port traffic policy must have at least one of loadBalancer, connectionPool, outlierDetection, tls',
      );
    } else validatePolicyBlocks(pl, pp, f);
  });
}

function validateDestinationRule(namespace: string, spec: DestinationRuleSpec, f: Findings): void {
  if (spec.host === '') f.error([SPEC, 'host'], 'host is required');
  else {
    const bad = checkWildcardDomain(spec.host);
    if (bad) f.error([SPEC, 'host'], bad);
  }
  validateTrafficPolicy(spec.trafficPolicy, [SPEC, 'trafficPolicy'], f);
  const names = new Set<string>();
  spec.subsets?.forEach((s, i) => {
    const p: FieldPath = [SPEC, 'subsets', i];
    if (!isDns1123Label(s.name))
      f.error([...p, 'name'], `subset name "${s.name}" is invalid: must be a DNS label`);
    if (names.has(s.name)) f.error([...p, 'name'], `duplicate subset name "${s.name}"`);
    names.add(s.name);
    validateSelectorLabels(s.labels, [...p, 'labels'], f);
    validateTrafficPolicy(s.trafficPolicy, [...p, 'trafficPolicy'], f);
  });
  validateSelectorLabels(spec.workloadSelector?.matchLabels, [SPEC, 'workloadSelector', 'matchLabels'], f);
  validateExportTo(namespace, spec.exportTo, [SPEC, 'exportTo'], f);
  if (spec.workloadSelector && spec.exportTo?.length) {
    const own = spec.exportTo.every((e) => e === '.' || e === namespace);
    if (!own)
      f.error(
        [SPEC, 'exportTo'],
        'a DestinationRule with a workloadSelector cannot be exported beyond its own namespace',
      );
  }
}

// ---------------------------------------------------------------- ServiceEntry (SE-1..SE-3)

function validateServiceEntry(namespace: string, spec: ServiceEntrySpec, f: Findings): void {
  const resolution = spec.resolution ?? 'NONE';
  const endpoints = spec.endpoints ?? [];
  if (spec.hosts.length === 0) f.error([SPEC, 'hosts'], 'service entry must have at least one host');
  spec.hosts.forEach((h, i) => {
    const p: FieldPath = [SPEC, 'hosts', i];
    if (h === '*') f.error(p, 'invalid host *: a ServiceEntry host cannot be a bare wildcard');
    else {
      const bad = checkWildcardDomain(h);
      if (bad) f.error(p, bad);
      else if (h.startsWith('*') && h !== '*' && !h.startsWith('*.')) {
        f.warn(
          p,
          `partial wildcard "${h}" matches any host ending in "${h.slice(1)}"; prefer a whole-label wildcard such as "*.example.com"`,
        );
      }
    }
  });
  spec.addresses?.forEach((a, i) => {
    const p: FieldPath = [SPEC, 'addresses', i];
    const bad = checkIpOrCidr(a);
    if (bad) f.error(p, bad);
    else if (isCidr(a) && resolution !== 'NONE' && resolution !== 'STATIC') {
      f.error(p, `CIDR addresses are allowed only for NONE/STATIC resolution types, not ${resolution}`);
    }
  });
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  spec.ports?.forEach((port, i) => {
    const p: FieldPath = [SPEC, 'ports', i];
    if (portNames.has(port.name)) f.error([...p, 'name'], `duplicate port name "${port.name}"`);
    portNames.add(port.name);
    if (portNumbers.has(port.number))
      f.error([...p, 'number'], `port number cannot be duplicated: ${port.number}`);
    portNumbers.add(port.number);
    if (port.name === '' || !isDns1123Label(port.name))
      f.error([...p, 'name'], `invalid port name "${port.name}": must be a DNS label`);
    validatePort(port.number, [...p, 'number'], f);
    validatePort(port.targetPort, [...p, 'targetPort'], f, 'targetPort');
  });
  if (spec.workloadSelector !== undefined && spec.endpoints !== undefined && endpoints.length > 0) {
    f.error([SPEC, 'workloadSelector'], 'only one of workloadSelector or endpoints can be set');
  }
  validateSelectorLabels(spec.workloadSelector?.labels, [SPEC, 'workloadSelector', 'labels'], f);
  if (spec.workloadSelector && Object.keys(spec.workloadSelector.labels ?? {}).length === 0) {
    f.warn(
      [SPEC, 'workloadSelector'],
      'workload selector without labels selects every workload in the namespace',
    );
  }
  if (resolution === 'NONE' && spec.workloadSelector)
    f.warn([SPEC, 'workloadSelector'], 'workloadSelector should not be set when resolution is NONE');
  if (resolution === 'NONE' && endpoints.length > 0)
    f.error([SPEC, 'endpoints'], 'NONE resolution cannot set endpoints');
  if (resolution === 'DYNAMIC_DNS' && endpoints.length > 0)
    f.error([SPEC, 'endpoints'], 'DYNAMIC_DNS resolution cannot set endpoints');
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
    f.error(
      [SPEC, 'endpoints'],
      `DNS_ROUND_ROBIN resolution cannot have multiple endpoints (got ${endpoints.length})`,
    );
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
    spec.hosts.forEach((h, i) => {
      if (h.includes('*') || checkFqdn(h) !== undefined) {
        f.error(
          [SPEC, 'hosts', i],
          `hosts must be FQDNs without wildcards when no endpoints are given for ${resolution} resolution, got "${h}"`,
        );
      }
    });
  }
  endpoints.forEach((e, i) => {
    const p: FieldPath = [SPEC, 'endpoints', i];
    const addr = e.address ?? '';
    if (addr === '') {
      if (resolution === 'STATIC') {
        if (e.network) f.warn([...p, 'address'], `address is unset with network "${e.network}"`);
        else f.error([...p, 'address'], 'address is required');
      } else if (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') {
        f.error([...p, 'address'], `endpoint address is required for ${resolution} resolution`);
      }
    } else if (addr.startsWith('unix://')) {
      const sock = addr.slice('unix://'.length);
      if (sock === '' || (!sock.startsWith('@') && (!sock.startsWith('/') || sock.endsWith('/')))) {
        f.error([...p, 'address'], `"${addr}" is not an absolute path to a unix socket`);
      }
      if (Object.keys(e.ports ?? {}).length > 0)
        f.error([...p, 'ports'], `unix endpoint ${addr} must not include ports`);
      if (resolution === 'STATIC' && (spec.ports?.length ?? 0) !== 1)
        f.error([...p, 'address'], 'exactly 1 service port is required for unix endpoints');
    } else if (!isIpAddress(addr)) {
      if (resolution === 'STATIC')
        f.error(
          [...p, 'address'],
          `endpoint address "${addr}" is not a valid IP address (STATIC resolution)`,
        );
      else if (checkFqdn(addr) !== undefined)
        f.error([...p, 'address'], `endpoint address "${addr}" is not a valid FQDN or an IP address`);
    }
    for (const [name, port] of Object.entries(e.ports ?? {})) {
      const pp: FieldPath = [...p, 'ports', name];
      if (!portNames.has(name)) f.error(pp, `endpoint port ${name} is not defined by the service entry`);
      else if (!isDns1123Label(name)) f.error(pp, `invalid port name: ${name}`);
      validatePort(port, pp, f);
    }
    validateSelectorLabels(e.labels, [...p, 'labels'], f);
  });
  if (resolution !== 'NONE' && spec.hosts.length > 1) {
    const i =
      spec.ports?.findIndex(
        (port) => !port.protocol || !(HTTP_FAMILY.has(port.protocol) || TLS_FAMILY.has(port.protocol)),
      ) ?? -1;
    if (i >= 0)
      f.error(
        [SPEC, 'ports', i],
        'multiple hosts provided with non-HTTP, non-TLS ports: connections cannot be told apart by host',
      );
  }
  validateExportTo(namespace, spec.exportTo, [SPEC, 'exportTo'], f);
}

// ---------------------------------------------------------------- RequestAuthentication / AuthorizationPolicy

const GROUP = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const SUPPORTED_TARGETS = new Set([
  '/Service',
  'networking.istio.io/ServiceEntry',
  'gateway.networking.k8s.io/Gateway',
  'gateway.networking.k8s.io/GatewayClass',
]);

function validateTargeting(
  namespace: string,
  spec: {
    selector?: WorkloadSelector;
    targetRef?: PolicyTargetReference;
    targetRefs?: readonly PolicyTargetReference[];
  },
  f: Findings,
): void {
  const set = [
    spec.selector ? 'selector' : '',
    spec.targetRef ? 'targetRef' : '',
    spec.targetRefs?.length ? 'targetRefs' : '',
  ].filter(Boolean);
  if (set.length > 1)
    f.error(
      [SPEC, set[1]!],
      `only one of targetRef, targetRefs or selector can be set; got ${set.join(' and ')}`,
    );
  validateSelectorLabels(spec.selector?.matchLabels, [SPEC, 'selector', 'matchLabels'], f);
  const check = (ref: PolicyTargetReference, p: FieldPath): void => {
    if (!ref.name) f.error([...p, 'name'], 'targetRef name is required');
    if (ref.kind === undefined || ref.kind === '') f.error([...p, 'kind'], 'targetRef kind is required');
    else if (!KIND.test(ref.kind))
      f.error([...p, 'kind'], `targetRef kind "${ref.kind}" is not a valid kind name`);
    if (ref.group !== undefined && !GROUP.test(ref.group))
      f.error([...p, 'group'], `targetRef group "${ref.group}" is not a valid API group`);
    if (ref.namespace !== undefined && ref.namespace !== '' && ref.namespace !== namespace) {
      f.error(
        [...p, 'namespace'],
        `cross namespace referencing is not currently supported: targetRef namespace "${ref.namespace}" is not the policy's namespace "${namespace}"`,
      );
    }
    if (
      ref.kind &&
      KIND.test(ref.kind) &&
      GROUP.test(ref.group ?? '') &&
      !SUPPORTED_TARGETS.has(`${ref.group ?? ''}/${ref.kind}`)
    ) {
      f.error(
        [...p, 'kind'],
        `targetRef must be a core Service, a networking.istio.io ServiceEntry or a gateway.networking.k8s.io Gateway/GatewayClass, got ${ref.group ?? ''}/${ref.kind}`,
      );
    }
  };
  if (spec.targetRef) check(spec.targetRef, [SPEC, 'targetRef']);
  spec.targetRefs?.forEach((r, i) => check(r, [SPEC, 'targetRefs', i]));
}

const CLAIM_HEADER = /^[-_A-Za-z0-9]+$/;

function validateRequestAuthentication(
  namespace: string,
  spec: RequestAuthenticationSpec,
  f: Findings,
): void {
  validateTargeting(namespace, spec, f);
  spec.jwtRules?.forEach((rule, i) => {
    const p: FieldPath = [SPEC, 'jwtRules', i];
    if (rule.issuer === '' && !rule.jwksUri)
      f.error([...p, 'issuer'], 'issuer or jwksUri must be a non-empty string');
    rule.audiences?.forEach((a, j) => {
      if (a === '') f.error([...p, 'audiences', j], 'audience must be a non-empty string');
    });
    if (rule.jwksUri !== undefined) {
      let ok: boolean;
      try {
        const u = new URL(rule.jwksUri);
        ok = u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        ok = false;
      }
      if (!ok)
        f.error(
          [...p, 'jwksUri'],
          `jwksUri must be an http or https URL with a scheme, got ${JSON.stringify(rule.jwksUri)}`,
        );
    }
    if (rule.jwks !== undefined) {
      let keys: unknown;
      try {
        const parsed = JSON.parse(rule.jwks) as { keys?: unknown; kty?: unknown };
        // A JWK Set, or a single JWK (jwk.Parse takes both).
        keys = typeof parsed.kty === 'string' ? [parsed] : parsed.keys;
      } catch {
        keys = undefined;
      }
      if (!Array.isArray(keys))
        f.error([...p, 'jwks'], 'jwks is not a JSON Web Key Set (a JSON object with a "keys" list)');
    }
    rule.fromHeaders?.forEach((h, j) => {
      if (h.name === '') f.error([...p, 'fromHeaders', j, 'name'], 'header name is required');
      else if (!isHeaderName(h.name))
        f.error([...p, 'fromHeaders', j, 'name'], `invalid header name "${h.name}"`);
    });
    rule.fromParams?.forEach((q, j) => {
      if (q === '') f.error([...p, 'fromParams', j], 'parameter name must not be empty');
    });
    rule.fromCookies?.forEach((c, j) => {
      if (c === '') f.error([...p, 'fromCookies', j], 'cookie name must not be empty');
    });
    rule.outputClaimToHeaders?.forEach((o, j) => {
      if (!CLAIM_HEADER.test(o.header))
        f.error(
          [...p, 'outputClaimToHeaders', j, 'header'],
          `header must match ^[-_A-Za-z0-9]+$, got "${o.header}"`,
        );
      if (o.claim === '') f.error([...p, 'outputClaimToHeaders', j, 'claim'], 'claim must not be empty');
    });
    if (rule.outputPayloadToHeader !== undefined && !isHeaderName(rule.outputPayloadToHeader))
      f.error([...p, 'outputPayloadToHeader'], `invalid header name "${rule.outputPayloadToHeader}"`);
    validateDurationValue(rule.timeout, [...p, 'timeout'], f);
  });
}

const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);
const PLAIN_KEYS = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

function validateConditionKey(key: string): string | undefined {
  if (PLAIN_KEYS.has(key)) return undefined;
  if (/^request\.headers\[[^[\]]+\]$/.test(key)) return undefined;
  if (/^request\.auth\.claims(\[[^[\]]+\])+$/.test(key)) return undefined;
  if (key.startsWith('experimental.envoy.filters.')) return undefined;
  return `unknown condition key "${key}"`;
}

function validateValues(
  values: readonly string[] | undefined,
  path: FieldPath,
  f: Findings,
  kind: 'ip' | 'port' | 'plain',
): void {
  values?.forEach((v, i) => {
    if (v === '') f.error([...path, i], 'empty value is not allowed');
    else if (kind === 'ip') {
      const bad = checkIpOrCidr(v);
      if (bad) f.error([...path, i], bad);
    } else if (kind === 'port') {
      const n = /^\d+$/.test(v) ? Number(v) : NaN;
      if (!(n >= 0 && n <= 65535)) f.error([...path, i], `"${v}" is not a valid port`);
    }
  });
}

function validatePathTemplate(p: string, path: FieldPath, f: Findings): void {
  if (!p.includes('{') && !p.includes('}')) return;
  for (const seg of p.split('/')) {
    if (seg === '{*}' || seg === '{**}') continue;
    if (seg.includes('{') || seg.includes('}') || seg.includes('*')) {
      f.error(
        path,
        `invalid path template "${p}": only whole segments {*} and {**} are allowed, and no other * { }`,
      );
      return;
    }
  }
}

function validateAuthorizationPolicy(namespace: string, spec: AuthorizationPolicySpec, f: Findings): void {
  validateTargeting(namespace, spec, f);
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM') {
    if (spec.rules === undefined) {
      f.error(
        [SPEC],
        'CUSTOM action without rules never triggers; add an empty rule {} to apply it to every request',
      );
    } else if (!spec.provider?.name)
      f.error([SPEC, 'provider'], 'CUSTOM action needs provider.name (an extension provider)');
    spec.rules?.forEach((rule, i) => {
      rule.from?.forEach((from, j) => {
        const src = from.source;
        if (!src) return;
        for (const field of [
          'namespaces',
          'notNamespaces',
          'serviceAccounts',
          'notServiceAccounts',
          'principals',
          'notPrincipals',
          'requestPrincipals',
          'notRequestPrincipals',
        ] as const) {
          if (src[field]?.length)
            f.error(
              [SPEC, 'rules', i, 'from', j, 'source', field],
              `${field} is not supported with CUSTOM action`,
            );
        }
      });
      rule.when?.forEach((c, j) => {
        if (
          ['source.namespace', 'source.serviceAccount', 'source.principal'].includes(c.key) ||
          c.key.startsWith('request.auth.')
        ) {
          f.error([SPEC, 'rules', i, 'when', j, 'key'], `${c.key} is not supported with CUSTOM action`);
        }
      });
    });
  } else if (spec.provider)
    f.error([SPEC, 'provider'], `provider is only allowed with action CUSTOM, not ${action}`);
  if (action === 'DENY' && spec.rules === undefined) {
    f.error(
      [SPEC],
      'DENY action without rules never triggers; add an empty rule {} to apply it to every request',
    );
  }
  spec.rules?.forEach((rule, i) => {
    const rp: FieldPath = [SPEC, 'rules', i];
    if (rule.from !== undefined && rule.from.length === 0)
      f.error([...rp, 'from'], '`from` must not be empty');
    if (rule.to !== undefined && rule.to.length === 0) f.error([...rp, 'to'], '`to` must not be empty');
    rule.from?.forEach((from, j) => {
      const fp: FieldPath = [...rp, 'from', j, 'source'];
      const s = from.source;
      if (!s) {
        f.error([...rp, 'from', j], '`from.source` must not be empty');
        return;
      }
      if (Object.values(s).every((v) => !v || (Array.isArray(v) && v.length === 0)))
        f.error(fp, '`from.source` must not be empty');
      const identities =
        (s.principals?.length ?? 0) +
        (s.notPrincipals?.length ?? 0) +
        (s.namespaces?.length ?? 0) +
        (s.notNamespaces?.length ?? 0);
      if (identities > 0 && (s.serviceAccounts?.length ?? 0) + (s.notServiceAccounts?.length ?? 0) > 0) {
        f.error(
          [...fp, s.serviceAccounts?.length ? 'serviceAccounts' : 'notServiceAccounts'],
          'Cannot set serviceAccounts with namespaces or principals',
        );
      }
      for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const)
        validateValues(s[field], [...fp, field], f, 'ip');
      for (const field of [
        'principals',
        'notPrincipals',
        'requestPrincipals',
        'notRequestPrincipals',
        'namespaces',
        'notNamespaces',
        'serviceAccounts',
        'notServiceAccounts',
        'trustDomains',
        'notTrustDomains',
      ] as const) {
        validateValues(s[field], [...fp, field], f, 'plain');
      }
    });
    rule.to?.forEach((to, j) => {
      const op = to.operation;
      const tp: FieldPath = [...rp, 'to', j, 'operation'];
      if (!op) {
        f.error([...rp, 'to', j], '`to.operation` must not be empty');
        return;
      }
      if (Object.values(op).every((v) => !v || (Array.isArray(v) && v.length === 0)))
        f.error(tp, '`to.operation` must not be empty');
      validateValues(op.ports, [...tp, 'ports'], f, 'port');
      validateValues(op.notPorts, [...tp, 'notPorts'], f, 'port');
      for (const field of ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const)
        validateValues(op[field], [...tp, field], f, 'plain');
      for (const field of ['paths', 'notPaths'] as const)
        op[field]?.forEach((p, k) => validatePathTemplate(p, [...tp, field, k], f));
    });
    rule.when?.forEach((c, j) => {
      const cp: FieldPath = [...rp, 'when', j];
      if (c.key === '') {
        f.error([...cp, 'key'], '`key` must not be empty');
        return;
      }
      const bad = validateConditionKey(c.key);
      if (bad) f.error([...cp, 'key'], bad);
      if (!c.values?.length && !c.notValues?.length)
        f.error(cp, `at least one of values or notValues must be set for key ${c.key}`);
      const kind = IP_KEYS.has(c.key) ? 'ip' : c.key === 'destination.port' ? 'port' : 'plain';
      validateValues(c.values, [...cp, 'values'], f, kind);
      validateValues(c.notValues, [...cp, 'notValues'], f, kind);
    });
  });
}

// ---------------------------------------------------------------- Secret

function validateSecret(spec: SecretSpec, f: Findings): void {
  if (spec.type === 'kubernetes.io/tls') {
    for (const key of ['tls.crt', 'tls.key']) {
      if (!spec.data[key])
        f.warn(['data'], `a kubernetes.io/tls Secret needs data["${key}"]`, 'SLUICE_TLS_CONFIG');
    }
  }
}

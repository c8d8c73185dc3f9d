import type { GatewaySpec, ServerTlsSettings } from '../../../model/networking.ts';
import type { FieldPath } from '../../field-path.ts';
import { checkGatewayHost, isDns1123Label, isIpAddress } from '../../validate-hosts.ts';
import { type Findings, HTTP_FAMILY, SPEC, TLS_FAMILY, validatePort } from '../rules-common.ts';

/** Gateway rules Istio's validation enforces (GW-4, GW-6, GW-7, GW-13 … GW-17). */

const TLS_VERSION_ORDER = ['TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];

export function validateGateway(name: string, spec: GatewaySpec, f: Findings): void {
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

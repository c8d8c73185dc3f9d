/**
 * Terminated servers' TLS settings (GW-13, GW-15..17): credential → PEMs, client CA, protocol
 * versions, ciphers, client-certificate checks. Pure: Secrets come from the resource set (config
 * documents, the certs-dir provider, and file paths read by a provider into FILE_SECRET_NAMESPACE).
 *
 * Missing or unusable credentials resolve to null (that server's names fail the handshake, the
 * others keep serving). credentialName problems are reported by analysis (IST0101/IST0161); this
 * pass reports what analysis does not see: file paths, client CAs, key/cert pairing of files.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type { Diagnostic } from '../errors/diagnostic.ts';
import { FILE_SECRET_KEY, FILE_SECRET_NAMESPACE, type SecretSpec } from '../model/kube.ts';
import type { ServerTlsSettings, TlsProtocolVersion } from '../model/networking.ts';
import type { PrivateBytes } from '../model/private-bytes.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import type { TlsCredential, TlsSettings, TlsVersionName } from '../snapshot/types.ts';
import { checkCrls } from './crl.ts';
import type { ServerEntry } from './gateways.ts';
import { subjectOf } from './indexes.ts';

export type SecretResource = Resource<'Secret', SecretSpec>;

/** Envoy's default server cipher list for TLS ≤1.2 (GW-17). */
export const ENVOY_DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
].join(':');

const VERSIONS: Record<TlsProtocolVersion, TlsVersionName | null> = {
  TLS_AUTO: null,
  TLSV1_0: 'TLSv1',
  TLSV1_1: 'TLSv1.1',
  TLSV1_2: 'TLSv1.2',
  TLSV1_3: 'TLSv1.3',
};

export interface TlsContext {
  resolve(entry: ServerEntry): TlsSettings | null;
}

function text(p: PrivateBytes | undefined): string | null {
  if (p === undefined) return null;
  const s = Buffer.from(p.base64, 'base64').toString('utf8');
  return s.trim() === '' ? null : s;
}

function describeSecret(s: SecretResource): string {
  if (s.namespace === FILE_SECRET_NAMESPACE) return `file ${s.name}`;
  if (s.annotations['sluice.dev/source'] === 'certs-dir') return `certs-dir ${s.name}`;
  return `Secret ${s.namespace}/${s.name}`;
}

/** Parses and checks one chain + key; a string is the problem (never echoing key material). */
export function parseCredential(
  name: string,
  source: string,
  certPem: string,
  keyPem: string,
  nowMs: number,
): TlsCredential | string {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch {
    return 'the certificate is not a PEM X.509 certificate';
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyPem))
    return 'the private key is encrypted; sluice needs an unencrypted key (openssl pkey -in key.pem -out plain.pem)';
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return 'the private key is not a PEM private key (PKCS#1, PKCS#8 or SEC1)';
  }
  if (!x509.checkPrivateKey(key)) return 'the private key does not match the certificate';
  const notBeforeMs = Date.parse(x509.validFrom);
  const notAfterMs = Date.parse(x509.validTo);
  if (nowMs > notAfterMs) return `the certificate expired on ${new Date(notAfterMs).toISOString()}`;
  if (nowMs < notBeforeMs)
    return `the certificate is not valid before ${new Date(notBeforeMs).toISOString()}`;
  const t = key.asymmetricKeyType;
  const dnsNames: string[] = [];
  for (const part of (x509.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dnsNames.push(part.slice(4));
  }
  return {
    name,
    source,
    certPem,
    keyPem,
    fingerprint: createHash('sha256').update(x509.raw).digest('hex'),
    keyType: t === 'rsa' || t === 'rsa-pss' ? 'RSA' : t === 'ec' ? 'EC' : 'OTHER',
    subject: x509.subject.replaceAll('\n', ', '),
    issuer: x509.issuer.replaceAll('\n', ', '),
    dnsNames,
    notBeforeMs,
    notAfterMs,
  };
}

/** The PEM parses as an X.509 certificate (the first of a bundle). */
export function isValidCa(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where credentials come from (GW-15, GW-16; DR-8 uses the same): Secrets by credential name in
 * the gateway's namespace (or `ns/name`), config documents winning over `--certs-dir` ones, and
 * certificate files a provider read into FILE_SECRET_NAMESPACE.
 */
export interface SecretLookup {
  secret(name: string): SecretResource | undefined;
  /** A certificate file's text by its path as written, or null when it could not be read. */
  file(path: string): string | null;
}

export function createSecretLookup(set: ResourceSet, gatewayNamespace: string): SecretLookup {
  const secrets = new Map<string, SecretResource>();
  for (const r of set.resources) {
    if (r.kind !== 'Secret') continue;
    const key = `${r.namespace}/${r.name}`;
    // Documents beat the certs-dir when both define a name (GW-15: Secret first, else --certs-dir).
    if (!secrets.has(key) || r.annotations['sluice.dev/source'] !== 'certs-dir')
      secrets.set(key, r as SecretResource);
  }
  return {
    secret(name: string): SecretResource | undefined {
      const slash = name.indexOf('/');
      return slash < 0
        ? secrets.get(`${gatewayNamespace}/${name}`)
        : secrets.get(`${name.slice(0, slash)}/${name.slice(slash + 1)}`);
    },
    file(path: string): string | null {
      return text(secrets.get(`${FILE_SECRET_NAMESPACE}/${path}`)?.spec.data[FILE_SECRET_KEY]);
    },
  };
}

/** A credential Secret's chain and key: `cert`/`key` (generic) or `tls.crt`/`tls.key`; null when absent. */
export function credentialPemsOf(secret: SecretResource): { certPem: string; keyPem: string } | null {
  const d = secret.spec.data;
  const generic = text(d['cert']) !== null && text(d['key']) !== null;
  const certPem = text(d[generic ? 'cert' : 'tls.crt']);
  const keyPem = text(d[generic ? 'key' : 'tls.key']);
  return certPem === null || keyPem === null ? null : { certPem, keyPem };
}

export interface SecretCa {
  readonly caPem: string;
  /** The CRL beside it and where it came from (for messages); null when none. */
  readonly crl: { readonly pem: string; readonly from: string } | null;
}

/**
 * GW-15's CA of a credential: Secret `<name>-cacert` first, then `<name>` itself, keys `cacert`
 * or `ca.crt`. The CRL comes from the Secret that gives the CA: `crl` beside `cacert`, `ca.crl`
 * beside `ca.crt` (istio/istio pilot/pkg/credentials/kube/secrets.go ExtractRoot, TLSSecretCrl).
 */
export function secretCaOf(lookup: SecretLookup, name: string): SecretCa | null {
  for (const s of [lookup.secret(`${name}-cacert`), lookup.secret(name)]) {
    if (s === undefined) continue;
    const generic = text(s.spec.data['cacert']);
    const caPem = generic ?? text(s.spec.data['ca.crt']);
    if (caPem === null) continue;
    const key = generic !== null ? 'crl' : 'ca.crl';
    const pem = text(s.spec.data[key]);
    return { caPem, crl: pem === null ? null : { pem, from: `${describeSecret(s)} key ${key}` } };
  }
  return null;
}

export function createTlsContext(
  set: ResourceSet,
  gatewayNamespace: string,
  diagnostics: Diagnostic[],
  nowMs: number,
): TlsContext {
  const lookup = createSecretLookup(set, gatewayNamespace);
  const secretOf = lookup.secret;
  const fileOf = lookup.file;

  function resolve(entry: ServerEntry): TlsSettings | null {
    const tls = entry.server.tls;
    if (!tls) return null;
    const mode = tls.mode;
    if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return null;
    const base = `spec.servers[${entry.index}].tls`;
    const problem = (path: string, message: string, level: Diagnostic['level'] = 'error'): null => {
      diagnostics.push({
        level,
        code: 'SLUICE_TLS_CONFIG',
        subject: subjectOf(entry.gateway),
        path: `${base}.${path}`,
        message: `${message}; this server's names (${entry.server.hosts.join(', ')}) refuse TLS handshakes`,
      });
      return null;
    };

    const credentials: TlsCredential[] = [];
    let caPem: string | null = null;
    /** The CRL, where it came from (for messages) and the field that named it. */
    let crl: { pem: string; from: string; path: string } | null = null;
    const names = tls.credentialName
      ? [tls.credentialName]
      : tls.credentialNames && tls.credentialNames.length > 0
        ? tls.credentialNames
        : [];
    if (names.length > 0) {
      for (const n of names) {
        const secret = secretOf(n);
        // Missing or broken Secrets are reported by analysis (IST0101, IST0161).
        if (secret === undefined) return null;
        const pems = credentialPemsOf(secret);
        if (pems === null) return null;
        const c = parseCredential(n, describeSecret(secret), pems.certPem, pems.keyPem, nowMs);
        if (typeof c === 'string') return null;
        credentials.push(c);
      }
      if (mode !== 'SIMPLE') {
        // GW-15: `<name>-cacert` first, then the credential itself; keys cacert or ca.crt.
        const caName = tls.caCertCredentialName ?? names[0]!;
        const found = secretCaOf(lookup, caName);
        if (found !== null) {
          caPem = found.caPem;
          if (found.crl !== null)
            crl = { ...found.crl, path: tls.credentialName ? 'credentialName' : 'credentialNames' };
        }
        if (caPem === null)
          return problem(
            tls.credentialName ? 'credentialName' : 'credentialNames',
            `${mode} needs a client CA: no Secret ${caName}-cacert or ${caName} with key cacert or ca.crt`,
          );
      }
    } else {
      const pairs: { cert: string; key: string; ca?: string; path: string }[] = [];
      if (tls.serverCertificate)
        pairs.push({
          cert: tls.serverCertificate,
          key: tls.privateKey ?? '',
          ...(tls.caCertificates ? { ca: tls.caCertificates } : {}),
          path: 'serverCertificate',
        });
      else
        (tls.tlsCertificates ?? []).forEach((c, i) => {
          if (c.serverCertificate)
            pairs.push({
              cert: c.serverCertificate,
              key: c.privateKey ?? '',
              ...(c.caCertificates ? { ca: c.caCertificates } : {}),
              path: `tlsCertificates[${i}].serverCertificate`,
            });
        });
      if (pairs.length === 0)
        return problem('mode', `${mode} needs a certificate: credentialName or serverCertificate/privateKey`);
      for (const p of pairs) {
        const certPem = fileOf(p.cert);
        if (certPem === null) return problem(p.path, `certificate file ${p.cert} could not be read`);
        const keyPem = fileOf(p.key);
        if (keyPem === null)
          return problem(
            p.path.replace('serverCertificate', 'privateKey'),
            `private key file ${p.key || '(none)'} could not be read`,
          );
        const c = parseCredential(p.cert, `file ${p.cert}`, certPem, keyPem, nowMs);
        if (typeof c === 'string') return problem(p.path, `${p.cert}: ${c}`);
        credentials.push(c);
      }
      if (mode !== 'SIMPLE') {
        const caPath = tls.caCertificates ?? pairs.find((p) => p.ca !== undefined)?.ca;
        if (caPath === undefined) return problem('caCertificates', `${mode} needs caCertificates`);
        caPem = fileOf(caPath);
        if (caPem === null) return problem('caCertificates', `CA file ${caPath} could not be read`);
        if (tls.caCrl) {
          const pem = fileOf(tls.caCrl);
          if (pem === null) return problem('caCrl', `CRL file ${tls.caCrl} could not be read`);
          crl = { pem, from: `CRL file ${tls.caCrl}`, path: 'caCrl' };
        }
      }
    }
    if (credentials.length === 2 && credentials[0]!.keyType === credentials[1]!.keyType)
      return problem(
        'credentialNames',
        `two credentials must be one RSA and one ECDSA, both are ${credentials[0]!.keyType}`,
      );
    if (caPem !== null && !isValidCa(caPem))
      return problem('mode', 'the client CA bundle is not a PEM certificate');
    if (crl !== null && caPem !== null) {
      const found = checkCrls(crl.pem, caPem, nowMs);
      if (found.error !== null) return problem(crl.path, `${crl.from}: ${found.error}`);
      for (const w of found.warnings)
        diagnostics.push({
          level: 'warning',
          code: 'SLUICE_TLS_CONFIG',
          subject: subjectOf(entry.gateway),
          path: `${base}.${crl.path}`,
          message: `${crl.from}: ${w}`,
        });
    }

    return settingsFrom(tls, mode, credentials, caPem, crl?.pem ?? null);
  }
  return { resolve };
}

function settingsFrom(
  tls: ServerTlsSettings,
  mode: TlsSettings['mode'],
  credentials: TlsCredential[],
  caPem: string | null,
  crlPem: string | null,
): TlsSettings {
  const minVersion = VERSIONS[tls.minProtocolVersion ?? 'TLS_AUTO'] ?? 'TLSv1.2';
  const maxVersion = VERSIONS[tls.maxProtocolVersion ?? 'TLS_AUTO'] ?? 'TLSv1.3';
  const ciphers = tls.cipherSuites && tls.cipherSuites.length > 0 ? tls.cipherSuites.join(':') : null;
  const subjectAltNames = tls.subjectAltNames ?? [];
  const spkiHashes = tls.verifyCertificateSpki ?? [];
  const certHashes = (tls.verifyCertificateHash ?? []).map((h) => h.replaceAll(':', '').toLowerCase());
  const h = createHash('sha256');
  h.update(mode).update('\0').update(minVersion).update('\0').update(maxVersion).update('\0');
  h.update(ciphers ?? '')
    .update('\0')
    .update(caPem ?? '')
    .update('\0')
    .update(crlPem ?? '')
    .update('\0');
  for (const c of credentials) h.update(c.certPem).update('\0').update(c.keyPem).update('\0');
  h.update(JSON.stringify([subjectAltNames, spkiHashes, certHashes]));
  return {
    mode,
    credentials,
    clientCaPem: caPem,
    crlPem,
    minVersion,
    maxVersion,
    ciphers,
    subjectAltNames,
    spkiHashes,
    certHashes,
    key: h.digest('hex'),
  };
}

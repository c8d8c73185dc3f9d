/**
 * Development certificates: a CA and a server certificate signed by it (node-forge builds the
 * X.509 structures; Node's crypto makes the RSA keys, which is much faster than forge's JS).
 * For the quickstart and tests; production certificates come from Secrets, files or ACME.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

function rsaKeys(bits: number): {
  publicKey: forge.pki.rsa.PublicKey;
  privateKey: forge.pki.rsa.PrivateKey;
  keyPem: string;
} {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), keyPem };
}

function serial(): string {
  // Positive 16-byte serial: clear the top bit so DER does not read it as negative.
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number, now: Date): void {
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + days * 86_400_000);
}

export function makeCa(opts: { commonName?: string; days?: number; now?: Date } = {}): PemPair {
  const keys = rsaKeys(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, opts.days ?? 3650, opts.now ?? new Date());
  const attrs = [
    { name: 'commonName', value: opts.commonName ?? 'sluice development CA' },
    { name: 'organizationName', value: 'sluice' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** A leaf for `hosts` (DNS names, `*.` wildcards, IPv4 addresses), signed by `ca`. */
export function makeServerCert(
  ca: PemPair,
  hosts: readonly string[],
  opts: { days?: number; now?: Date; clientAuth?: boolean } = {},
): PemPair {
  if (hosts.length === 0) throw new Error('at least one host is needed');
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = rsaKeys(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, opts.days ?? 825, opts.now ?? new Date());
  cert.setSubject([{ name: 'commonName', value: hosts[0] as string }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: opts.clientAuth ?? false },
    {
      name: 'subjectAltName',
      altNames: hosts.map((h) => (IPV4.test(h) ? { type: 7, ip: h } : { type: 2, value: h })),
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

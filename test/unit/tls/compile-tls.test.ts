/**
 * compile/tls.ts: credential resolution (GW-15, GW-16), TLS parameters (GW-17) and the
 * per-server diagnostics that leave the other servers serving.
 */
import { createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { compile } from '../../../src/compile/index.ts';
import { FILE_SECRET_KEY, FILE_SECRET_NAMESPACE } from '../../../src/model/kube.ts';
import { privateBytes } from '../../../src/model/private-bytes.ts';
import type { Resource } from '../../../src/model/resource.ts';
import type { TlsServer } from '../../../src/snapshot/types.ts';
import { TEST_IDENTITY } from '../../support/gateway.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../../support/certs.ts';
import { makeCrl } from '../../support/crl.ts';
import { makeCa } from '../../../src/tls/self-signed.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function gateway(servers: string): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
${servers}
`;
}

function build(yaml: string, extra: Resource[] = []): { servers: readonly TlsServer[]; messages: string[] } {
  const loaded = loadResources([{ file: 't.yaml', text: yaml }], { defaultNamespace: 'default' });
  const set = { resources: [...loaded.resources.resources, ...extra] };
  const { snapshot, diagnostics } = compile(set, { ...TEST_IDENTITY, nowMs: Date.now() });
  return {
    servers: snapshot.listeners.get(8443)?.tlsServers ?? [],
    messages: diagnostics
      .filter((d) => d.level !== 'info')
      .map((d) => `${d.level} ${d.path ?? ''}: ${d.message}`),
  };
}

function fileSecret(path: string, text: string): Resource {
  return {
    kind: 'Secret',
    apiVersion: 'v1',
    namespace: FILE_SECRET_NAMESPACE,
    name: path,
    labels: {},
    annotations: {},
    origin: { kind: 'file', file: path, doc: 1 },
    spec: { data: { [FILE_SECRET_KEY]: privateBytes(b64(text)) } },
  };
}

const A = rsaLeaf(['a.example.com']);
const B = rsaLeaf(['b.example.com']);

describe('compile/tls (GW-15..17)', () => {
  it('GW-15 credentialName: Secret tls.crt/tls.key, Envoy defaults TLS 1.2..1.3', () => {
    const { servers } = build(
      tlsSecretYaml('a', A) +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, credentialName: a }`),
    );
    const tls = servers[0]!.tls!;
    expect(tls.mode).toBe('SIMPLE');
    expect(tls.minVersion).toBe('TLSv1.2');
    expect(tls.maxVersion).toBe('TLSv1.3');
    expect(tls.ciphers).toBeNull();
    expect(tls.credentials[0]!.dnsNames).toEqual(['a.example.com']);
    expect(tls.credentials[0]!.source).toBe('Secret istio-system/a');
    expect(tls.credentials[0]!.keyType).toBe('RSA');
  });

  it('GW-15 cert/key keys are read first; the client CA comes from <name>-cacert before ca.crt', () => {
    const other = rsaLeaf(['x.example.com'], { tag: 'ca-decoy' });
    const { servers } = build(
      `apiVersion: v1
kind: Secret
metadata: { name: a, namespace: istio-system }
data: { cert: ${b64(A.certPem)}, key: ${b64(A.keyPem)}, ca.crt: ${b64(other.certPem)} }
---
apiVersion: v1
kind: Secret
metadata: { name: a-cacert, namespace: istio-system }
data: { cacert: ${b64(testCa().certPem)} }
` +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: MUTUAL, credentialName: a, minProtocolVersion: TLSV1_3, cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384] }`),
    );
    const tls = servers[0]!.tls!;
    expect(tls.clientCaPem).toBe(testCa().certPem);
    expect(tls.minVersion).toBe('TLSv1.3');
    expect(tls.ciphers).toBe('ECDHE-RSA-AES256-GCM-SHA384');
  });

  it('GW-15 a missing Secret fails only that server; the other keeps its certificate', () => {
    const { servers, messages } = build(
      tlsSecretYaml('a', A) +
        gateway(`    - port: { number: 8443, name: https-a, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, credentialName: a }
    - port: { number: 8443, name: https-b, protocol: HTTPS }
      hosts: [b.example.com]
      tls: { mode: SIMPLE, credentialName: missing }`),
    );
    expect(servers[0]!.tls).not.toBeNull();
    expect(servers[1]!.tls).toBeNull();
    expect(messages.some((m) => m.includes('"missing" not found'))).toBe(true);
  });

  it('GW-15 MUTUAL without any client CA is a diagnostic on that server', () => {
    const { servers, messages } = build(
      tlsSecretYaml('a', A) +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: MUTUAL, credentialName: a }`),
    );
    expect(servers[0]!.tls).toBeNull();
    expect(messages.some((m) => /MUTUAL needs a client CA/.test(m))).toBe(true);
  });

  it('GW-16 file paths: read into the set by the provider; mismatch, encrypted and expired keys are errors', () => {
    const serverYaml = (cert: string, key: string): string =>
      gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, serverCertificate: ${cert}, privateKey: ${key} }`);
    const ok = build(serverYaml('/c.pem', '/k.pem'), [
      fileSecret('/c.pem', A.certPem),
      fileSecret('/k.pem', A.keyPem),
    ]);
    expect(ok.servers[0]!.tls!.credentials[0]!.source).toBe('file /c.pem');

    const mismatch = build(serverYaml('/c.pem', '/k.pem'), [
      fileSecret('/c.pem', A.certPem),
      fileSecret('/k.pem', B.keyPem),
    ]);
    expect(mismatch.servers[0]!.tls).toBeNull();
    expect(
      mismatch.messages.some((m) => m.startsWith('error') && m.includes('does not match the certificate')),
    ).toBe(true);

    const encrypted = createPrivateKey(A.keyPem)
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' })
      .toString();
    const enc = build(serverYaml('/c.pem', '/k.pem'), [
      fileSecret('/c.pem', A.certPem),
      fileSecret('/k.pem', encrypted),
    ]);
    expect(enc.messages.some((m) => m.includes('the private key is encrypted'))).toBe(true);

    const old = rsaLeaf(['a.example.com'], {
      days: 1,
      now: new Date(Date.now() - 10 * 86_400_000),
      tag: 'expired',
    });
    const expired = build(serverYaml('/c.pem', '/k.pem'), [
      fileSecret('/c.pem', old.certPem),
      fileSecret('/k.pem', old.keyPem),
    ]);
    expect(expired.messages.some((m) => m.includes('the certificate expired on'))).toBe(true);

    const missing = build(serverYaml('/c.pem', '/k.pem'));
    expect(missing.messages.some((m) => m.includes('certificate file /c.pem could not be read'))).toBe(true);
  });

  it('settings keys change with the certificate and only with it', () => {
    const y = (name: string): string =>
      tlsSecretYaml(name, name === 'a' ? A : B).replace(`name: ${name},`, 'name: c,') +
      gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, credentialName: c }`);
    const k1 = build(y('a')).servers[0]!.tls!.key;
    expect(build(y('a')).servers[0]!.tls!.key).toBe(k1);
    expect(build(y('b')).servers[0]!.tls!.key).not.toBe(k1);
  });
});

describe('compile/tls: client certificate revocation lists (GW-15, GW-16)', () => {
  const CLIENT = rsaLeaf(['client.example.com'], { clientAuth: true, tag: 'crl-client' });
  const CRL = makeCrl(testCa(), [CLIENT.certPem]);
  const mutualFiles = (extra = ''): string =>
    gateway(`    - port: { number: 8443, name: https-a, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem${extra} }
    - port: { number: 8443, name: https-b, protocol: HTTPS }
      hosts: [b.example.com]
      tls: { mode: SIMPLE, credentialName: b }`);
  const files = (crl?: string): Resource[] => [
    fileSecret('/c.pem', A.certPem),
    fileSecret('/k.pem', A.keyPem),
    fileSecret('/ca.pem', testCa().certPem),
    ...(crl === undefined ? [] : [fileSecret('/crl.pem', crl)]),
  ];

  it('GW-16 caCrl file: the CRL joins the settings and their key (a new CRL is a new context)', () => {
    const plain = build(tlsSecretYaml('b', B) + mutualFiles(), files());
    const withCrl = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files(CRL));
    expect(withCrl.messages).toEqual([]);
    expect(plain.servers[0]!.tls!.crlPem).toBeNull();
    expect(withCrl.servers[0]!.tls!.crlPem).toBe(CRL);
    expect(withCrl.servers[0]!.tls!.key).not.toBe(plain.servers[0]!.tls!.key);
    const other = makeCrl(testCa(), []);
    const rotated = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files(other));
    expect(rotated.servers[0]!.tls!.key).not.toBe(withCrl.servers[0]!.tls!.key);
  });

  it('GW-16 an unreadable or unparseable CRL fails that server only, naming the file', () => {
    const missing = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files());
    expect(missing.servers[0]!.tls).toBeNull();
    expect(missing.servers[1]!.tls).not.toBeNull();
    expect(missing.messages).toContainEqual(
      expect.stringMatching(/^error spec\.servers\[0\]\.tls\.caCrl: CRL file \/crl\.pem could not be read/),
    );
    for (const broken of [
      'not a crl at all',
      CRL.replace(/\n[A-Za-z0-9+/]{20}/, '\n'),
      '-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n',
    ]) {
      const r = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files(broken));
      expect(r.servers[0]!.tls).toBeNull();
      expect(r.servers[1]!.tls).not.toBeNull();
      expect(r.messages.join('\n')).toMatch(/^error spec\.servers\[0\]\.tls\.caCrl: CRL file \/crl\.pem: /m);
    }
  });

  it('GW-16 a CRL whose signature does not verify is refused; one from another CA or expired is a warning', () => {
    // Flip a byte of the signature (the end of the DER).
    const der = Buffer.from(CRL.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff;
    const tampered = `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`;
    const bad = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files(tampered));
    expect(bad.servers[0]!.tls).toBeNull();
    expect(bad.messages.join('\n')).toMatch(/its signature does not verify with that CA/);

    const stranger = makeCrl(makeCa({ commonName: 'other CA' }), []);
    const foreign = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files(stranger));
    expect(foreign.servers[0]!.tls!.crlPem).toBe(stranger);
    expect(foreign.messages).toEqual([
      expect.stringMatching(/^warning .*caCrl: .*no CRL from client CA .*sluice test CA.*refused/),
      expect.stringMatching(
        /^warning .*caCrl: CRL file \/crl\.pem: the CRL was not issued by any of the client CAs/,
      ),
    ]);

    const stale = makeCrl(testCa(), [], {
      lastUpdate: new Date(Date.now() - 20 * 86400_000),
      nextUpdate: new Date(Date.now() - 86400_000),
    });
    const expired = build(tlsSecretYaml('b', B) + mutualFiles(', caCrl: /crl.pem'), files(stale));
    expect(expired.servers[0]!.tls).not.toBeNull();
    expect(expired.messages).toEqual([
      expect.stringMatching(
        /^warning .*caCrl: .*the CRL expired on .* every client certificate of .*is refused/,
      ),
    ]);
  });

  it('GW-15 credentialName: the CRL comes with the CA, ca.crl beside ca.crt or crl beside cacert', () => {
    const tlsCa = build(
      `apiVersion: v1
kind: Secret
metadata: { name: a, namespace: istio-system }
data: { tls.crt: ${b64(A.certPem)}, tls.key: ${b64(A.keyPem)}, ca.crt: ${b64(testCa().certPem)}, ca.crl: ${b64(CRL)} }
` +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: OPTIONAL_MUTUAL, credentialName: a }`),
    );
    expect(tlsCa.servers[0]!.tls!.crlPem).toBe(CRL);
    const generic = build(
      tlsSecretYaml('a', A) +
        `---
apiVersion: v1
kind: Secret
metadata: { name: a-cacert, namespace: istio-system }
data: { cacert: ${b64(testCa().certPem)}, crl: ${b64(CRL)}, ca.crl: ${b64('ignored')} }
` +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: MUTUAL, credentialName: a }`),
    );
    expect(generic.messages).toEqual([]);
    expect(generic.servers[0]!.tls!.crlPem).toBe(CRL);
    const broken = build(
      tlsSecretYaml('a', A) +
        `---
apiVersion: v1
kind: Secret
metadata: { name: a-cacert, namespace: istio-system }
data: { cacert: ${b64(testCa().certPem)}, crl: ${b64('garbage')} }
` +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: MUTUAL, credentialName: a }`),
    );
    expect(broken.servers[0]!.tls).toBeNull();
    expect(broken.messages.join('\n')).toMatch(
      /^error spec\.servers\[0\]\.tls\.credentialName: Secret istio-system\/a-cacert key crl: no -----BEGIN X509 CRL----- block/m,
    );
    // SIMPLE verifies no client certificate: a CRL in the Secret is not used.
    const simple = build(
      `apiVersion: v1
kind: Secret
metadata: { name: a, namespace: istio-system }
data: { tls.crt: ${b64(A.certPem)}, tls.key: ${b64(A.keyPem)}, ca.crt: ${b64(testCa().certPem)}, ca.crl: ${b64('garbage')} }
` +
        gateway(`    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, credentialName: a }`),
    );
    expect(simple.servers[0]!.tls!.crlPem).toBeNull();
  });
});

/**
 * Test certificates: one development CA per test process (RSA via node-forge), leaves signed by
 * it, ECDSA leaves and client certificates via the `openssl` CLI. Memoised: key generation is the
 * slow part and tests run on 2 cores.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeCa, makeServerCert, type PemPair } from '../../src/tls/self-signed.ts';

let ca: PemPair | null = null;
const leaves = new Map<string, PemPair>();

export function testCa(): PemPair {
  ca ??= makeCa({ commonName: 'sluice test CA' });
  return ca;
}

/** An RSA leaf for `hosts` signed by the test CA (cached by hosts + options). */
export function rsaLeaf(
  hosts: readonly string[],
  opts: { days?: number; now?: Date; clientAuth?: boolean; tag?: string } = {},
): PemPair {
  const key = JSON.stringify([
    hosts,
    opts.days ?? null,
    opts.now?.toISOString() ?? null,
    opts.clientAuth ?? false,
    opts.tag ?? '',
  ]);
  let p = leaves.get(key);
  if (p === undefined) {
    p = makeServerCert(testCa(), hosts, opts);
    leaves.set(key, p);
  }
  return p;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `openssl ${args[0]} failed (install: apt-get install openssl): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * A leaf signed by the test CA made with the openssl CLI: ECDSA P-256 or RSA, server or client
 * (SANs as given: `DNS:a.example.com`, `URI:spiffe://...`).
 */
export function opensslLeaf(opts: {
  key: 'ec' | 'rsa';
  cn: string;
  sans: readonly string[];
  client?: boolean;
}): PemPair {
  const key = JSON.stringify(opts);
  const cached = leaves.get(key);
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-certs-'));
  try {
    const c = testCa();
    writeFileSync(path.join(dir, 'ca.crt'), c.certPem);
    writeFileSync(path.join(dir, 'ca.key'), c.keyPem);
    if (opts.key === 'ec')
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'k.pem'], dir);
    else openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'k.pem'], dir);
    openssl(['pkcs8', '-topk8', '-nocrypt', '-in', 'k.pem', '-out', 'key.pem'], dir);
    openssl(['req', '-new', '-key', 'key.pem', '-subj', `/CN=${opts.cn}`, '-out', 'r.csr'], dir);
    writeFileSync(
      path.join(dir, 'ext.cnf'),
      `subjectAltName=${opts.sans.join(',')}\nextendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}\nbasicConstraints=CA:FALSE\n`,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'r.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '30',
        '-sha256',
        '-extfile',
        'ext.cnf',
        '-out',
        'cert.pem',
      ],
      dir,
    );
    const p = {
      certPem: readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
      keyPem: readFileSync(path.join(dir, 'key.pem'), 'utf8'),
    };
    leaves.set(key, p);
    return p;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A kubernetes.io/tls Secret document (chain = leaf + CA) in `namespace`. */
export function tlsSecretYaml(
  name: string,
  pair: PemPair,
  opts: { namespace?: string; caPem?: string; chain?: boolean } = {},
): string {
  const chain = opts.chain === false ? pair.certPem : pair.certPem + testCa().certPem;
  const ca = opts.caPem !== undefined ? `\n  ca.crt: ${b64(opts.caPem)}` : '';
  return `apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: ${opts.namespace ?? 'istio-system'} }
type: kubernetes.io/tls
data:
  tls.crt: ${b64(chain)}
  tls.key: ${b64(pair.keyPem)}${ca}
`;
}

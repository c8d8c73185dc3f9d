/**
 * Certificate revocation lists for tests, made by the `openssl ca` CLI (node-forge cannot make
 * CRLs): a throw-away CA database in a temp dir, `-revoke` per certificate, then `-gencrl`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PemPair } from '../../src/tls/self-signed.ts';

const CA_CONFIG = `[ ca ]
default_ca = test_ca
[ test_ca ]
database = ./index.txt
crlnumber = ./crlnumber
default_md = sha256
default_crl_days = 30
unique_subject = no
`;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: 'pipe' });
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    throw new Error(
      `openssl ${args.slice(0, 2).join(' ')} failed (install: apt-get install openssl): ${e.message}\n${e.stderr?.toString() ?? ''}`,
      { cause: err },
    );
  }
}

/** YYYYMMDDHHMMSSZ, as `openssl ca -crl_lastupdate` takes it. */
function asn1Time(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/**
 * A PEM CRL signed by `ca` listing `revoked` (certificate PEMs). `lastUpdate`/`nextUpdate` default
 * to an hour ago and 30 days on.
 */
export function makeCrl(
  ca: PemPair,
  revoked: readonly string[],
  opts: { lastUpdate?: Date; nextUpdate?: Date } = {},
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-crl-'));
  try {
    writeFileSync(path.join(dir, 'ca.cnf'), CA_CONFIG);
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'crlnumber'), '01\n');
    writeFileSync(path.join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(path.join(dir, 'ca.key'), ca.keyPem);
    const signer = ['-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key'];
    revoked.forEach((pem, i) => {
      writeFileSync(path.join(dir, `r${i}.pem`), pem);
      openssl(['ca', ...signer, '-revoke', `r${i}.pem`], dir);
    });
    const last = opts.lastUpdate ?? new Date(Date.now() - 3600_000);
    const next = opts.nextUpdate ?? new Date(Date.now() + 30 * 86400_000);
    openssl(
      [
        'ca',
        ...signer,
        '-gencrl',
        '-crl_lastupdate',
        asn1Time(last),
        '-crl_nextupdate',
        asn1Time(next),
        '-out',
        'crl.pem',
      ],
      dir,
    );
    return readFileSync(path.join(dir, 'crl.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SluiceError } from '../errors/sluice-error.ts';
import { makeCa, makeServerCert } from '../tls/self-signed.ts';
import type { Options } from './flags.ts';
import { EXIT_OK, type CommandIO } from './io.ts';

/**
 * `sluice certs self-signed --host H ... --out DIR` writes DIR/ca.crt, DIR/ca.key, DIR/tls.crt,
 * DIR/tls.key: the layout --certs-dir/<credentialName>/ expects.
 */
export async function runCerts(opts: Options, io: CommandIO): Promise<number> {
  const [sub] = opts.positionals;
  if (sub !== 'self-signed')
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      'usage: sluice certs self-signed --host H [--host H ...] --out DIR',
    );
  if (opts.hosts.length === 0)
    throw new SluiceError('SLUICE_CLI_USAGE', 'certs self-signed needs at least one --host');
  if (!opts.out) throw new SluiceError('SLUICE_CLI_USAGE', 'certs self-signed needs --out DIR');
  const ca = makeCa();
  const leaf = makeServerCert(ca, opts.hosts);
  await mkdir(opts.out, { recursive: true });
  // Keys are readable by the owner only.
  await writeFile(path.join(opts.out, 'ca.crt'), ca.certPem);
  await writeFile(path.join(opts.out, 'ca.key'), ca.keyPem, { mode: 0o600 });
  await writeFile(path.join(opts.out, 'tls.crt'), leaf.certPem + ca.certPem);
  await writeFile(path.join(opts.out, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  io.out(`wrote ${opts.out}/{ca.crt,ca.key,tls.crt,tls.key} for ${opts.hosts.join(', ')}\n`);
  return EXIT_OK;
}

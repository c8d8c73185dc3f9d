/**
 * The quickstart's HTTPS certificate: made once into `<certsDir>/<name>/` (the layout
 * `sluice certs self-signed` writes and the certs-dir provider reads), kept on later starts.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeCa, makeServerCert } from './self-signed.ts';

export async function ensureDevCredential(
  certsDir: string,
  name: string,
  hosts: readonly string[],
): Promise<{ dir: string; created: boolean }> {
  const dir = path.join(certsDir, name);
  try {
    await access(path.join(dir, 'tls.crt'));
    await access(path.join(dir, 'tls.key'));
    return { dir, created: false };
  } catch {
    // absent: make it
  }
  const ca = makeCa({ commonName: 'sluice quickstart CA' });
  const leaf = makeServerCert(ca, hosts);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'ca.crt'), ca.certPem);
  await writeFile(path.join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
  // Key first: the certs-dir watcher may read between the two writes, and a certificate without
  // its key would be refused (the previous state keeps serving) rather than served half-made.
  await writeFile(path.join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  await writeFile(path.join(dir, 'tls.crt'), leaf.certPem + ca.certPem);
  return { dir, created: true };
}

/**
 * The ACME glue of `serve` (control/acme-runner.ts): the manager exists only while a MeshConfig
 * declares issuers, and listeners answer challenges another process published in the shared
 * store (the --workers primary, another replica) only while ACME is on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadResources } from '../../src/config/index.ts';
import { createAcmeRunner, type AcmeRunner } from '../../src/control/acme-runner.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { createFileChallengeStore } from '../../src/providers/acme-lock.ts';

const MESH = `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  acme: { issuers: [{ name: ca, directoryUrl: "https://127.0.0.1:9/dir" }] }
`;
const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: istio-system, annotations: { sluice.dev/acme-issuer: ca } }
spec:
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.test]
      tls: { mode: SIMPLE, credentialName: a }
`;

function set(...docs: string[]) {
  return loadResources([{ file: 'x.yaml', text: docs.join('---\n') }], { defaultNamespace: 'default' })
    .resources;
}

let certsDir = '';
let runner: AcmeRunner | null = null;
afterEach(async () => {
  await runner?.close();
  runner = null;
  if (certsDir !== '') await rm(certsDir, { recursive: true, force: true });
});

describe('ACME runner', () => {
  it('answers tokens from the shared store only while a MeshConfig declares issuers', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-runner-'));
    // What the ordering process published.
    await createFileChallengeStore(certsDir).put('http-01:tok-1', 'tok-1.thumb', 60_000);
    runner = createAcmeRunner({ role: 'answer', certsDir, logger: silentLogger() });
    const lookup = runner.hooks.lookupHttpToken!;
    expect(runner.hooks.httpToken('tok-1')).toBeNull();
    expect(await lookup('tok-1')).toBeNull();
    runner.update(set(MESH));
    expect(await lookup('tok-1')).toBe('tok-1.thumb');
    expect(await lookup('tok-2')).toBeNull();
    runner.update(set(GATEWAY));
    expect(await lookup('tok-1')).toBeNull();
  });

  it('a worker (role answer) never orders; the orderer starts and stops its manager with the issuers', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-runner-'));
    const worker = createAcmeRunner({ role: 'answer', certsDir, logger: silentLogger() });
    worker.update(set(MESH, GATEWAY));
    expect(worker.status()).toEqual([]);
    await worker.close();

    // Port 9 refuses: the order fails at once and backs off; only the target list matters here.
    runner = createAcmeRunner({
      role: 'order',
      certsDir,
      logger: silentLogger(),
      tuning: { requestRetries: 0 },
    });
    runner.update(set(MESH, GATEWAY));
    expect(runner.status().map((t) => [t.issuer, t.credential, t.hosts])).toEqual([
      ['ca', 'a', ['a.example.test']],
    ]);
    runner.update(set(GATEWAY));
    expect(runner.status()).toEqual([]);
  });
});

/**
 * Istio objects for the Kubernetes tests, built from the operations tests' YAML so both speak of
 * the same gateway (`istio-system/gw`), upstreams and VirtualService `test/shop`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObj } from './fake-kube-api.ts';

/** Every document of a YAML text as API objects. */
export function objectsOf(yamlText: string): KubeObj[] {
  return parseAllDocuments(yamlText).map((d) => d.toJSON() as KubeObj);
}

export function objectOf(yamlText: string): KubeObj {
  const [first] = objectsOf(yamlText);
  if (first === undefined) throw new Error('no document');
  return first;
}

/** `serve --kubernetes` on loopback: every port 0 but the Gateways', one worker, no drain delay. */
export function kubeServeArgs(kubeconfig: string, extra: readonly string[] = []): string[] {
  return [
    '--kubernetes',
    '--kubeconfig',
    kubeconfig,
    '--bind',
    '127.0.0.1',
    '--status-port',
    '0',
    '--metrics-port',
    '0',
    '--admin-port',
    '0',
    '--workers',
    '1',
    '--drain-delay',
    '0',
    '--certs-dir',
    path.join(path.dirname(kubeconfig), '.no-certs'),
    ...extra,
  ];
}

/** A temp dir for a kubeconfig (and config files), removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-kube-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

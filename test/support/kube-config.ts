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

/** A temp dir for a kubeconfig (and config files), removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-kube-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * sluice.dev/limit-storage on an Ingress: where limit-rps / limit-rpm count (Local, the default,
 * or Global in MeshConfig redis), limit-connections always per process, and the errors and
 * warnings that keep a Global limit from ever being counted per process silently.
 */
import { describe, expect, it } from 'vitest';
import { LIMIT_STORAGE_ANNOTATION } from '../../../../src/config/ingress/annotations.ts';
import { formatDiagnostic } from '../../../../src/errors/diagnostic.ts';
import type { Snapshot } from '../../../../src/snapshot/types.ts';
import { compileIngressYaml, ingressYaml, path, serviceYaml } from '../../../support/ingress.ts';

const MESH = `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { url: "redis://127.0.0.1:6379" }
`;

const web = (annotations: Record<string, string>): string =>
  ingressYaml({ name: 'web', annotations, paths: [path('/', 'Prefix', 'main')] }) +
  '---\n' +
  serviceYaml('main', 8080);

function compileWith(annotations: Record<string, string>, mesh = true) {
  const r = compileIngressYaml(mesh ? `${web(annotations)}---\n${MESH}` : web(annotations));
  // What is said about the Ingress (the MeshConfig and Service have their own findings).
  const shown = (level: string): string[] =>
    r.diagnostics.filter((d) => d.level === level && d.subject?.kind === 'Ingress').map(formatDiagnostic);
  return { ...r, errors: shown('error'), warnings: shown('warning') };
}

/** The Ingress route's rate-limit rules as [name, storage, reject status]. */
function limitRules(snapshot: Snapshot): [string, string, number][] {
  const route = snapshot.listeners.get(80)!.httpTable!.exact.get('demo.example.com')!.routes[0]!;
  const f = route.filters?.find((x) => x.kind === 'rate-limit');
  if (f?.kind !== 'rate-limit') throw new Error('no rate-limit filter on the route');
  return f.rules.map((r) => [r.name, r.storage, r.rejectStatus]);
}

const WHERE = `test.yaml#1 Ingress default/web: metadata.annotations[${LIMIT_STORAGE_ANNOTATION}]`;

describe('sluice.dev/limit-storage', () => {
  it('Global: limit-rps and limit-rpm count in Redis, limit-connections per process with a warning', () => {
    const { snapshot, errors, warnings } = compileWith({
      'limit-rps': '5',
      'limit-rpm': '100',
      'limit-connections': '3',
      [LIMIT_STORAGE_ANNOTATION]: 'Global',
    });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      `warning ${WHERE}: Global applies to limit-rps and limit-rpm; limit-connections (requests in flight) has no Global storage in sluice and is counted in each gateway process [SLUICE_INGRESS_ANNOTATION]`,
    ]);
    expect(limitRules(snapshot)).toEqual([
      ['limit-connections', 'Local', 503],
      ['limit-rps', 'Global', 503],
      ['limit-rpm', 'Global', 503],
    ]);
    // The gateway opens its Redis store only when a snapshot carries the settings.
    expect(snapshot.settings.rateLimitRedis?.keyPrefix).toBeDefined();
  });

  it('Local, written or by default, counts every bucket in the process and opens no Redis', () => {
    const written: Record<string, string>[] = [
      { 'limit-rps': '5', [LIMIT_STORAGE_ANNOTATION]: 'Local' },
      { 'limit-rps': '5' },
    ];
    for (const annotations of written) {
      const { snapshot, errors, warnings } = compileWith(annotations);
      expect(errors).toEqual([]);
      expect(warnings).toEqual([]);
      expect(limitRules(snapshot)).toEqual([['limit-rps', 'Local', 503]]);
      expect(snapshot.settings.rateLimitRedis).toBeUndefined();
    }
  });

  it('Global without a MeshConfig redis refuses the Ingress, naming the annotation', () => {
    const { snapshot, errors } = compileWith(
      { 'limit-rpm': '60', [LIMIT_STORAGE_ANNOTATION]: 'Global' },
      false,
    );
    expect(errors).toEqual([
      `error   ${WHERE}: Global needs a MeshConfig with redis (url, sentinel or cluster) to count in; the config is refused rather than counting per gateway process [SLUICE_INGRESS_REFUSED]`,
    ]);
    expect(snapshot.listeners.size).toBe(0);
  });

  it('a value other than Local or Global refuses the Ingress, naming the annotation', () => {
    const { snapshot, errors } = compileWith({ 'limit-rps': '5', [LIMIT_STORAGE_ANNOTATION]: 'global' });
    expect(errors).toEqual([
      `error   ${WHERE}: "global" is not Local or Global; the config is refused rather than counting the limits where the annotation does not say [SLUICE_INGRESS_REFUSED]`,
    ]);
    expect(snapshot.listeners.size).toBe(0);
  });

  it('without limit-rps or limit-rpm it is a warning and opens no Redis', () => {
    const { snapshot, errors, warnings } = compileWith({
      'limit-connections': '2',
      [LIMIT_STORAGE_ANNOTATION]: 'Global',
    });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      `warning ${WHERE}: without limit-rps or limit-rpm it has no effect [SLUICE_INGRESS_ANNOTATION]`,
    ]);
    expect(limitRules(snapshot)).toEqual([['limit-connections', 'Local', 503]]);
    expect(snapshot.settings.rateLimitRedis).toBeUndefined();
  });
});

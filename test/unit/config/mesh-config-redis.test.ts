/**
 * MeshConfig `redis` (the connection ACME coordination, and later rate limits, use): a strict
 * schema whose errors name the field path and never echo the URL (it may hold a password).
 */
import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';
import type { MeshConfigSpec } from '../../../src/model/sluice.ts';

function load(redis: string) {
  const text = `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: ${redis}
`;
  return loadResources([{ file: 'mesh.yaml', text }], { defaultNamespace: 'default' });
}

const errors = (redis: string): string[] =>
  load(redis)
    .diagnostics.filter((d) => d.level === 'error')
    .map(formatDiagnostic);

describe('MeshConfig redis', () => {
  it.each([
    '{ url: "redis://127.0.0.1:6379" }',
    '{ url: "redis://redis.cache.svc.cluster.local" }',
    '{ url: "redis://:s3cret@10.0.0.5:6380/2", keyPrefix: "edge:" }',
    '{ url: "rediss://sluice:s3cret@redis.example.com:6380/0" }',
    '{ url: "redis://[::1]:6379" }',
  ])('accepts %s', (redis) => {
    const { resources, diagnostics } = load(redis);
    expect(diagnostics.filter((d) => d.level === 'error')).toEqual([]);
    const spec = resources.resources[0]?.spec as MeshConfigSpec;
    expect(spec.redis?.url).toMatch(/^rediss?:\/\//);
  });

  it.each([
    [
      '{ url: "http://redis:6379" }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.url: must be redis://[user:password@]host[:port][/db] or rediss://… (TLS); got scheme "http" [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://:hunter2@redis:99999" }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.url: must be redis://[user:password@]host[:port][/db] or rediss://… (TLS); it is not a URL [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://:hunter2@redis:6379/cache" }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.url: must be redis://[user:password@]host[:port][/db] or rediss://… (TLS); the path must be a database number such as /0 [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://redis:6379?db=1" }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.url: must be redis://[user:password@]host[:port][/db] or rediss://… (TLS); query strings and fragments are not supported [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ keyPrefix: "edge:" }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.url: required field is missing (expected a string) [SLUICE_CONFIG_SCHEMA]',
    ],
  ])('refuses %s with the field path', (redis, line) => {
    const found = errors(redis);
    expect(found).toEqual([line]);
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('refuses unknown fields (a typo must not silently fall back to file coordination)', () => {
    expect(errors('{ url: "redis://r:6379", passwd: x }')).toEqual([
      expect.stringMatching(/spec\.redis\.passwd: unknown field/),
    ]);
  });
});

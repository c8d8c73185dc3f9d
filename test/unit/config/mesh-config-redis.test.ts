/**
 * MeshConfig `redis` (the connection ACME coordination and Global rate limits use): one server,
 * Sentinel or Cluster, the password from the URL, a file or a variable; a strict schema whose
 * errors name the field path and never echo the URL (it may hold a password).
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
    '{ url: "redis://10.0.0.5:6379", username: sluice, passwordFile: /var/run/secrets/redis/password }',
    '{ sentinel: { masterName: mymaster, nodes: ["10.0.0.1:26379", "[::1]:26379"] }, passwordEnv: REDIS_PASSWORD }',
    '{ cluster: { nodes: ["redis-0.redis:6379", "redis-1.redis:6379"] }, keyPrefix: "edge:" }',
    '{ cluster: { nodes: ["redis-0.redis:6379"] }, tls: { caCertificates: /etc/redis-ca/ca.crt } }',
    '{ sentinel: { masterName: m, nodes: ["s-0:26379"] }, tls: { caCertificates: /ca.crt, serverName: redis.cache } }',
    '{ url: "rediss://redis.example.com:6380", tls: { caCertificates: /ca.crt } }',
    '{ cluster: { nodes: ["10.0.0.1:6379"] }, tls: {} }',
    '{ sentinel: { masterName: m, nodes: ["s-0:26379"] }, tls: { insecureSkipVerify: true, serverName: redis.cache } }',
  ])('accepts %s', (redis) => {
    const { resources, diagnostics } = load(redis);
    expect(diagnostics.filter((d) => d.level === 'error')).toEqual([]);
    const spec = resources.resources[0]?.spec as MeshConfigSpec;
    expect(spec.redis?.url ?? spec.redis?.sentinel?.masterName ?? spec.redis?.cluster?.nodes[0]).toBeTruthy();
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
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis: one of url, sentinel and cluster is required [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://r:6379", cluster: { nodes: ["r:6379"] } }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis: url, sentinel and cluster exclude one another; got url and cluster [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ cluster: { nodes: ["r"] } }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.cluster.nodes[0]: must be host:port ([address]:port for IPv6) [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ sentinel: { masterName: m, nodes: [] } }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.sentinel.nodes: must have at least 1 item, got 0 [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://:hunter2@r:6379", passwordEnv: REDIS_PASSWORD }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.url: the URL holds a password and passwordFile/passwordEnv names another; keep one [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://r:6379", passwordEnv: A, passwordFile: /p }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.passwordEnv: passwordFile and passwordEnv exclude one another [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://r:6379", passwordEnv: "not a name" }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.passwordEnv: must be an environment variable name; got "not a name" [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ url: "redis://r:6379", tls: { caCertificates: /ca.crt } }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.tls: tls applies to rediss:// URLs (redis:// is plaintext); use rediss:// or remove tls [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ cluster: { nodes: ["r:6379"] }, tls: { caCertificates: /ca.crt, insecureSkipVerify: true } }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.tls.insecureSkipVerify: insecureSkipVerify accepts any certificate, so caCertificates would never be used; keep one [SLUICE_CONFIG_SCHEMA]',
    ],
    [
      '{ cluster: { nodes: ["r:6379"] }, tls: { caCertificates: "" } }',
      'error   mesh.yaml#1:5 MeshConfig istio-system/mesh: spec.redis.tls.caCertificates: must not be empty [SLUICE_CONFIG_SCHEMA]',
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
    expect(errors('{ cluster: { nodes: ["r:6379"] }, tls: { sni: redis.cache } }')).toEqual([
      expect.stringMatching(/spec\.redis\.tls\.sni: unknown field/),
    ]);
  });
});

/**
 * RateLimitPolicy validation: the schema and the per-resource rules, each problem naming the
 * field path; nothing sluice does not act on passes silently (unknown fields are errors, an
 * unused `burst` or `failureMode` a warning); compile places rules only where targets resolve.
 */
import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { compile } from '../../../src/compile/index.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';
import { dumpSnapshot } from '../../../src/snapshot/dump.ts';

const IDENTITY = {
  namespace: 'istio-system',
  labels: { istio: 'ingressgateway' },
  rootNamespace: 'istio-system',
};

function load(spec: string) {
  const text = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: limits, namespace: default }
spec:
${spec}`;
  return loadResources([{ file: 'rl.yaml', text }], { defaultNamespace: 'default' });
}

const problems = (spec: string): string[] =>
  load(spec)
    .diagnostics.filter((d) => d.level !== 'info')
    .map((d) => formatDiagnostic(d).replace(/ +/, ' '));

const VS = '  targetRefs: [{kind: VirtualService, name: shop}]\n';

describe('RateLimitPolicy validation', () => {
  it('accepts the documented shape without a problem', () => {
    expect(
      problems(`  targetRefs: [ { group: networking.istio.io, kind: VirtualService, name: shop, sectionName: checkout } ]
  phase: AfterAuth
  storage: Local
  responseHeaders: Draft
  rules:
  - name: writes-per-user
    to:   [ { operation: { hosts: ["api.example.com"], methods: ["POST","PUT","DELETE"], paths: ["/v1/*"] } } ]
    when: [ { key: "request.auth.claims[iss]", values: ["https://id.example.com"] } ]
    key:  [ { requestAuthClaim: sub } ]
    limit: { requests: 100, unit: Minute }
  - name: per-client-ip
    key:  [ { remoteAddress: {} } ]
    algorithm: TokenBucket
    limit: { requests: 20, unit: Second, burst: 100 }
    exempt: { remoteIpBlocks: ["10.0.0.0/8"] }
    shadowMode: true
`),
    ).toEqual([]);
  });

  it.each([
    [`${VS}  rules:\n  - name: a\n    limit: {requests: 0, unit: Minute}\n`, 'spec.rules[0].limit.requests'],
    [`${VS}  rules:\n  - name: a\n    limit: {requests: 5, unit: Week}\n`, 'spec.rules[0].limit.unit'],
    [
      `${VS}  rules:\n  - name: a\n    limits: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].limits: unknown field (did you mean limit?)',
    ],
    [
      `${VS}  rules:\n  - name: a\n    key: [{remoteAddress: {}, host: {}}]\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].key[0]: exactly one of',
    ],
    [
      `${VS}  rules:\n  - name: a\n    limit: {requests: 5, unit: Minute}\n  - name: a\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[1].name: duplicate rule name "a"',
    ],
    [
      `  targetRefs: [{kind: Service, name: shop}]\n  rules:\n  - name: a\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.targetRefs[0].kind: must be Gateway or VirtualService',
    ],
    [
      `${VS}  phase: BeforeAuth\n  rules:\n  - name: a\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.phase: BeforeAuth needs Gateway targetRefs only',
    ],
    [
      `  targetRefs: [{kind: Gateway, name: gw}]\n  phase: BeforeAuth\n  rules:\n  - name: a\n    key: [{requestAuthClaim: sub}]\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].key[0].requestAuthClaim: JWT claims are never set BeforeAuth',
    ],
    [
      `  targetRefs: [{kind: Gateway, name: gw}]\n  rules:\n  - name: a\n    key: [{routeName: {}}]\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].key[0].routeName: routeName needs VirtualService targetRefs',
    ],
    [
      `${VS}  rules:\n  - name: a\n    when: [{key: source.principal, values: [x]}]\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].when[0].key: source.principal needs a verified mesh client certificate',
    ],
    [
      `${VS}  rules:\n  - name: a\n    when: [{key: request.nope, values: [x]}]\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].when[0].key: unknown condition key "request.nope"',
    ],
    [
      `${VS}  rules:\n  - name: a\n    exempt: {remoteIpBlocks: ["10.0.0.0/33"]}\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.rules[0].exempt.remoteIpBlocks[0]',
    ],
    [
      `${VS}  rules:\n  - name: a\n    algorithm: SlidingWindow\n    limit: {requests: 20000, unit: Hour}\n`,
      'spec.rules[0].limit.requests: SlidingWindow keeps one timestamp per admitted request',
    ],
    [
      `${VS}  rules:\n  - name: a\n    limit: {inFlight: 5, requests: 5}\n`,
      'spec.rules[0].limit: inFlight stands alone; remove requests',
    ],
    [
      `${VS}  storage: Global\n  rules:\n  - name: a\n    limit: {inFlight: 5}\n`,
      'spec.rules[0].limit.inFlight: inFlight limits are counted per process (storage Local)',
    ],
    [
      `${VS}  rules:\n  - name: a\n    limit: {requests: 5}\n`,
      'spec.rules[0].limit: needs requests and unit',
    ],
    [
      `${VS}  storage: Service\n  rules:\n  - name: a\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.service: storage Service needs service (host, port, domain)',
    ],
    [
      `${VS}  storage: Service\n  service: {host: rls, port: 8081, domain: edge}\n  rules:\n  - name: a\n    algorithm: SlidingWindow\n`,
      'spec.rules[0].algorithm: with storage Service the rate limit service decides how it counts',
    ],
    [
      `${VS}  rules:\n  - name: a\n`,
      'spec.rules[0].limit: required (only storage Service can leave the limit to the service)',
    ],
  ])('refuses %#: %s', (spec, expected) => {
    const found = problems(spec);
    expect(
      found.some(
        (p) => p.startsWith('error rl.yaml#1') && p.includes(` RateLimitPolicy default/limits: ${expected}`),
      ),
      found.join('\n'),
    ).toBe(true);
  });

  it.each([
    [
      `${VS}  rules:\n  - name: a\n    algorithm: FixedWindow\n    limit: {requests: 5, unit: Minute, burst: 10}\n`,
      'spec.rules[0].limit.burst: burst is used by TokenBucket only',
    ],
    [
      `${VS}  failureMode: Closed\n  rules:\n  - name: a\n    limit: {requests: 5, unit: Minute}\n`,
      'spec.failureMode: failureMode applies to storage Global and Service only',
    ],
  ])('warns about what it does not act on %#', (spec, expected) => {
    const found = problems(spec);
    expect(
      found.some((p) => p.startsWith('warning') && p.includes(expected)),
      found.join('\n'),
    ).toBe(true);
    expect(load(spec).resources.resources).toHaveLength(1);
  });
});

describe('RateLimitPolicy compile', () => {
  const base = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [gw]
  http: [{route: [{destination: {host: shop.default.svc.cluster.local}}]}]
---
`;
  function compiled(extra: string) {
    const loaded = loadResources([{ file: 'c.yaml', text: base + extra }], { defaultNamespace: 'default' });
    return compile(loaded.resources, { ...IDENTITY, nowMs: 0 });
  }

  it('a target this gateway does not serve is a warning and places nothing', () => {
    const r = compiled(`apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: default}
spec:
  targetRefs: [{kind: VirtualService, name: nope}, {kind: Gateway, name: other}]
  rules: [{name: a, limit: {requests: 5, unit: Minute}}]
`);
    const msgs = r.diagnostics.map(formatDiagnostic);
    expect(msgs.some((m) => m.includes('spec.targetRefs[0]: VirtualService default/nope not found'))).toBe(
      true,
    );
    expect(msgs.some((m) => m.includes('spec.targetRefs[1]: Gateway default/other not found'))).toBe(true);
    expect(JSON.stringify(dumpSnapshot(r.snapshot))).not.toContain('rate_limit');
  });

  it('Global storage without MeshConfig redis is an error; with it, the dump hides the password', () => {
    const policy = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: default}
spec:
  targetRefs: [{kind: VirtualService, name: shop}]
  storage: Global
  rules: [{name: a, key: [{remoteAddress: {}}], limit: {requests: 5, unit: Minute}}]
`;
    expect(
      compiled(policy)
        .diagnostics.map(formatDiagnostic)
        .some((m) =>
          m.includes('spec.storage: storage Global needs a MeshConfig with redis (url, sentinel or cluster)'),
        ),
    ).toBe(true);
    const r = compiled(`${policy}---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec: {redis: {url: "redis://:hunter2@127.0.0.1:6379", timeout: 30ms}}
`);
    expect(r.diagnostics.filter((d) => d.level === 'error')).toEqual([]);
    const dump = JSON.stringify(dumpSnapshot(r.snapshot));
    expect(dump).not.toContain('hunter2');
    expect(dump).toContain('"timeoutMs":30');
    expect(dump).toContain('"url":"redis://:***@127.0.0.1:6379"');
    expect(dump).toContain('"rule":"default/limits/a"');
    expect(dump).toContain('"key":["remoteAddress"]');
  });
});

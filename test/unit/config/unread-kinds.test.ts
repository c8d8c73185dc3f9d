import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';

const doc = (apiVersion: string, kind: string, name = 'x') =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: { name: ${name}, namespace: shop }\nspec: {}\n`;

function diagnose(apiVersion: string, kind: string) {
  const r = loadResources([{ file: 'c.yaml', text: doc(apiVersion, kind) }], { defaultNamespace: 'default' });
  expect(r.resources.resources).toEqual([]);
  return { lines: r.diagnostics.map(formatDiagnostic), diagnostics: r.diagnostics, skipped: r.skipped };
}

describe('documents of kinds sluice does not read', () => {
  it.each([
    [
      'networking.istio.io/v1',
      'VirtualServce',
      'kind: networking.istio.io has no kind "VirtualServce" (did you mean VirtualService?)',
    ],
    [
      'networking.istio.io/v1alpha3',
      'virtualservice',
      'kind: networking.istio.io has no kind "virtualservice" (did you mean VirtualService?)',
    ],
    [
      'security.istio.io/v1',
      'AuthorizationPolcy',
      'kind: security.istio.io has no kind "AuthorizationPolcy" (did you mean AuthorizationPolicy?)',
    ],
    [
      'sluice.dev/v1alpha1',
      'MeshConfg',
      'kind: sluice.dev has no kind "MeshConfg" (did you mean MeshConfig?)',
    ],
    [
      'networking.k8s.io/v1',
      'Ingres',
      'kind: networking.k8s.io has no kind "Ingres" (did you mean Ingress?)',
    ],
    [
      'sluice.dev/v1alpha1',
      'Quota',
      'kind: sluice.dev has no kind "Quota" (it has MeshConfig, RateLimitPolicy)',
    ],
    [
      'security.istio.io/v1',
      'ServiceEntry',
      'apiVersion: ServiceEntry is not a security.istio.io kind: it is apiVersion networking.istio.io/v1, not security.istio.io/v1',
    ],
    [
      'networking.istio.oi/v1',
      'Gateway',
      'apiVersion: networking.istio.oi/v1 is not an API version of Gateway (did you mean networking.istio.io/v1?)',
    ],
    [
      'v1',
      'VirtualService',
      'apiVersion: v1 is not an API version of VirtualService (did you mean networking.istio.io/v1?)',
    ],
  ])('%s %s is a warning with what was probably meant', (apiVersion, kind, text) => {
    const { lines, diagnostics } = diagnose(apiVersion, kind);
    const line = text.startsWith('kind:') ? 2 : 1;
    expect(lines).toEqual([
      `warning c.yaml#1:${line} ${kind} shop/x: ${text}; the document is ignored [SLUICE_CONFIG_UNKNOWN_KIND]`,
    ]);
    expect(diagnostics[0]!.unsupported).toBeUndefined();
  });

  it.each([
    ['networking.istio.io/v1alpha3', 'EnvoyFilter'],
    ['networking.istio.io/v1beta1', 'ProxyConfig'],
    ['networking.istio.io/v1', 'WorkloadEntry'],
    ['networking.istio.io/v1', 'WorkloadGroup'],
    ['telemetry.istio.io/v1', 'Telemetry'],
    ['extensions.istio.io/v1alpha1', 'WasmPlugin'],
  ])('%s %s would change an Istio gateway: a warning, counted', (apiVersion, kind) => {
    const { lines, diagnostics } = diagnose(apiVersion, kind);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^warning c\\.yaml#1:1 ${kind} shop/x: ${kind} is not implemented by sluice; it is ignored: .+ \\[SLUICE_CONFIG_UNSUPPORTED\\]$`,
      ),
    );
    expect(diagnostics[0]!.unsupported).toBe('*');
  });

  it.each([
    ['security.istio.io/v1beta1', 'PeerAuthentication', 'shop/'],
    ['networking.istio.io/v1', 'Sidecar', 'shop/'],
    ['networking.k8s.io/v1', 'NetworkPolicy', 'shop/'],
  ])('%s %s never applies to a gateway: an info saying so', (apiVersion, kind, ns) => {
    const { lines } = diagnose(apiVersion, kind);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^info    c\\.yaml#1:1 ${kind} ${ns}x: ${kind} never applies to a gateway: .+; the document is ignored \\[SLUICE_CONFIG_NOT_APPLICABLE\\]$`,
      ),
    );
  });

  it('keeps the warning for a version sluice does not read of a kind it reads', () => {
    const { lines } = diagnose('networking.istio.io/v1beta2', 'Gateway');
    expect(lines).toEqual([
      'warning c.yaml#1:1 Gateway shop/x: apiVersion: networking.istio.io/v1beta2 is not a version sluice reads for Gateway (use networking.istio.io/v1alpha3, networking.istio.io/v1beta1, networking.istio.io/v1); the document is ignored [SLUICE_CONFIG_UNSUPPORTED]',
    ]);
  });

  it.each([
    ['cert-manager.io/v1', 'Certificate'],
    ['gateway.networking.k8s.io/v1', 'HTTPRoute'],
    ['gateway.networking.k8s.io/v1', 'Gateway'],
    ['v1', 'ConfigMap'],
    ['apps/v1', 'Deployment'],
  ])("%s %s, another project's kind, says nothing (skipped, for a debug line)", (apiVersion, kind) => {
    const { lines, skipped } = diagnose(apiVersion, kind);
    expect(lines).toEqual([]);
    expect(skipped.map((s) => `${s.apiVersion} ${s.kind}`)).toEqual([`${apiVersion} ${kind}`]);
  });
});

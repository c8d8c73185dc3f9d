import { describe, expect, it } from 'vitest';
import { named, res, run } from './fixtures.ts';

function ap(name: string, source: Record<string, unknown>) {
  return res('AuthorizationPolicy', name, { rules: [{ from: [{ source }] }] }, { namespace: 'httpbin' });
}

describe('authorization policy namespaces (IST0101)', () => {
  const namespaces = ['httpbin', 'prod-httpbin', 'httpbin-test'].map((n) => res('Namespace', n, {}));

  it('reports namespaces and notNamespaces entries matching no Namespace, wildcards understood', () => {
    const ds = run([
      ...namespaces,
      ap('ok', { namespaces: ['prod-*', '*-test', '*', 'httpbin'] }),
      ap('bogus', { namespaces: ['*-bogus', 'httpbin'] }),
      ap('bogus-not', { notNamespaces: ['bogus-*'] }),
    ]);
    expect(named(ds, 'IST0101')).toEqual([
      'IST0101 AuthorizationPolicy httpbin/bogus',
      'IST0101 AuthorizationPolicy httpbin/bogus-not',
    ]);
    expect(ds[0]!.path).toBe('spec.rules[0].from[0].source.namespaces[0]');
  });

  it('says nothing when the configuration holds no Namespace documents', () => {
    expect(run([ap('bogus', { namespaces: ['nowhere'] })])).toEqual([]);
  });
});

import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { refNotFound } from './context.ts';

function namespaceMatches(pattern: string, namespace: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return namespace.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return namespace.startsWith(pattern.slice(0, -1));
  return pattern === namespace;
}

/**
 * IST0101 for an AuthorizationPolicy `source.namespaces` / `notNamespaces` entry that matches no
 * Namespace (Istio's authz.AuthorizationPoliciesAnalyzer). Checked only when the set contains
 * Namespace documents: a config without any says nothing about which namespaces exist. A warning.
 */
export function analyzeAuthorizationPolicyNamespaces(ctx: AnalysisContext): Diagnostic[] {
  if (ctx.namespaces.length === 0) return [];
  const known = ctx.namespaces.map((n) => n.name);
  const out: Diagnostic[] = [];
  for (const ap of ctx.authorizationPolicies) {
    (ap.spec.rules ?? []).forEach((rule, i) => {
      (rule.from ?? []).forEach((from, j) => {
        const src = from.source;
        if (!src) return;
        for (const field of ['namespaces', 'notNamespaces'] as const) {
          (src[field] ?? []).forEach((pattern, k) => {
            if (known.some((ns) => namespaceMatches(pattern, ns))) return;
            out.push(
              refNotFound({
                resource: ap,
                path: `spec.rules[${i}].from[${j}].source.${field}[${k}]`,
                message: `namespace "${pattern}" matches no Namespace in the configuration (known: ${known.join(', ')})`,
              }),
            );
          });
        }
      });
    });
  }
  return out;
}

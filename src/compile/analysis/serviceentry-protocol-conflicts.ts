import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { AnalysisContext } from './context.ts';
import { finding, nameOf } from './context.ts';

type ServiceEntryResource = AnalysisContext['serviceEntries'][number];

function scopesOf(se: ServiceEntryResource): string[] {
  const exportTo = se.spec.exportTo ?? [];
  if (exportTo.length === 0 || exportTo.includes('*')) return ['*'];
  return [...new Set(exportTo.map((e) => (e === '.' ? se.namespace : e)))];
}

/**
 * IST0177: ServiceEntries visible from the same namespace declare one host and port with different
 * protocols (Istio's serviceentry.ConflictingServiceEntryProtocolAnalyzer). A warning on each.
 */
export function analyzeServiceEntryProtocolConflicts(ctx: AnalysisContext): Diagnostic[] {
  const index = new Map<
    string,
    { scope: string; host: string; port: number; entries: { se: ServiceEntryResource; protocol: string }[] }
  >();
  for (const se of ctx.serviceEntries) {
    for (const scope of scopesOf(se)) {
      for (const host of se.spec.hosts) {
        for (const p of se.spec.ports ?? []) {
          const key = `${scope}\u0000${host}\u0000${p.number}`;
          const slot = index.get(key) ?? { scope, host, port: p.number, entries: [] };
          slot.entries.push({ se, protocol: (p.protocol ?? '').toUpperCase() });
          index.set(key, slot);
        }
      }
    }
  }
  const reported = new Set<ServiceEntryResource>();
  const out: Diagnostic[] = [];
  const keys = [...index.keys()].sort();
  for (const key of keys) {
    const slot = index.get(key)!;
    const entries =
      slot.scope === '*'
        ? slot.entries
        : [...slot.entries, ...(index.get(`*\u0000${slot.host}\u0000${slot.port}`)?.entries ?? [])];
    const protocols = [...new Set(entries.map((e) => e.protocol))].sort();
    if (protocols.length < 2) continue;
    const names = [...new Set(entries.map((e) => nameOf(e.se)))].sort();
    for (const e of entries) {
      if (reported.has(e.se)) continue;
      reported.add(e.se);
      const other = entries.find((o) => o.se !== e.se);
      out.push(
        finding({
          level: 'warning',
          code: 'SLUICE_PORT_CONFLICT',
          istioCode: 'IST0177',
          resource: e.se,
          message: `host ${slot.host} port ${slot.port} is declared with different protocols [${protocols.map((p) => p || '<unset>').join(', ')}] by ${names.join(', ')}; which one applies is undefined`,
          ...(other ? { related: other.se } : {}),
        }),
      );
    }
  }
  return out;
}

import { formatOrigin, type Origin } from './origin.ts';
import type { Code } from './codes.ts';

export type Level = 'error' | 'warning' | 'info';

/** The resource a diagnostic is about (or a second resource it conflicts with). */
export interface DiagnosticSubject {
  readonly origin?: Origin;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/**
 * A config problem. Accumulated per resource and returned, never thrown. `path` is the field
 * path as the user wrote it (`spec.http[0].route[1].weight`); `line` the 1-based line of that
 * field when known. `message` says what is wrong and what was found; it never contains secret values.
 */
export interface Diagnostic {
  readonly level: Level;
  readonly code: Code;
  readonly subject?: DiagnosticSubject;
  readonly path?: string;
  readonly line?: number;
  readonly message: string;
  /** Another resource involved (a conflicting Gateway, a missing reference's owner). */
  readonly related?: DiagnosticSubject;
  /** The istioctl analyze message this corresponds to, e.g. IST0101, when there is one. */
  readonly istioCode?: string;
  /**
   * Set on what sluice parses but does not act on (model/unsupported.ts): the `field` label it
   * is counted under in sluice_config_unsupported_total{kind,field} (`*` for a whole resource).
   */
  readonly unsupported?: string;
}

const LEVEL_ORDER: Record<Level, number> = { error: 0, warning: 1, info: 2 };

function subjectText(s: DiagnosticSubject): string {
  return s.namespace === undefined ? `${s.kind} ${s.name}` : `${s.kind} ${s.namespace}/${s.name}`;
}

/**
 * error   gateways/shop.yaml#2:14 VirtualService default/shop: spec.http[0].route[1].weight: must be ... [SLUICE_CONFIG_SCHEMA]
 */
export function formatDiagnostic(d: Diagnostic): string {
  const parts: string[] = [d.level.padEnd(7)];
  const where: string[] = [];
  if (d.subject?.origin) where.push(formatOrigin(d.subject.origin, d.line));
  if (d.subject) where.push(subjectText(d.subject) + ':');
  if (where.length > 0) parts.push(where.join(' '));
  const text = d.path ? `${d.path}: ${d.message}` : d.message;
  parts.push(text);
  const tag = d.istioCode ? `[${d.code} ${d.istioCode}]` : `[${d.code}]`;
  parts.push(tag);
  return parts.join(' ');
}

function originSortKey(o: Origin | undefined): string {
  if (!o) return '';
  switch (o.kind) {
    case 'file':
      return `${o.file}\u0000${String(o.doc).padStart(6, '0')}`;
    case 'kube':
      return `kube:${o.namespace}/${o.resource}/${o.name}`;
    case 'builtin':
      return `builtin:${o.what}`;
  }
}

/** Sorted by origin, line, level, then text; exact duplicates removed. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of ds) {
    const key = formatDiagnostic(d);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort((a, b) => {
    const oa = originSortKey(a.subject?.origin);
    const ob = originSortKey(b.subject?.origin);
    if (oa !== ob) return oa < ob ? -1 : 1;
    const la = a.line ?? 0;
    const lb = b.line ?? 0;
    if (la !== lb) return la - lb;
    if (a.level !== b.level) return LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level];
    const ta = formatDiagnostic(a);
    const tb = formatDiagnostic(b);
    return ta < tb ? -1 : ta > tb ? 1 : 0;
  });
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.level === 'error');
}

export function diagnosticToJson(d: Diagnostic): Record<string, unknown> {
  return {
    level: d.level,
    code: d.code,
    ...(d.istioCode ? { istioCode: d.istioCode } : {}),
    ...(d.subject
      ? {
          origin: d.subject.origin ? formatOrigin(d.subject.origin, d.line) : undefined,
          kind: d.subject.kind,
          namespace: d.subject.namespace,
          name: d.subject.name,
        }
      : {}),
    ...(d.path ? { path: d.path } : {}),
    message: d.message,
    ...(d.unsupported !== undefined ? { unsupported: d.unsupported } : {}),
    ...(d.related
      ? { related: { ...d.related, origin: d.related.origin ? formatOrigin(d.related.origin) : undefined } }
      : {}),
  };
}

import type { Resource } from '../model/resource.ts';
import {
  describeUnsupported,
  unsupportedLabel,
  unsupportedOfKind,
  type UnsupportedWhen,
} from '../model/unsupported.ts';
import type { FieldPath } from './field-path.ts';
import type { Finding } from './kinds/rules-common.ts';

/** The table's patterns, split once: every resource of a kind is checked against the same ones. */
const segmentsByPattern = new Map<string, readonly string[]>();

/** `http[].match[].statPrefix` → ['http', '[]', 'match', '[]', 'statPrefix']. */
function segmentsOf(pattern: string): readonly string[] {
  let out = segmentsByPattern.get(pattern);
  if (out === undefined) {
    const segments: string[] = [];
    for (const part of pattern.split('.')) {
      if (part.endsWith('[]')) segments.push(part.slice(0, -2), '[]');
      else segments.push(part);
    }
    segmentsByPattern.set(pattern, (out = segments));
  }
  return out;
}

/** Every place `segments[at..]` reaches under `value`, with its concrete path and the value there. */
function reach(
  value: unknown,
  segments: readonly string[],
  at: number,
  path: FieldPath,
  out: { path: FieldPath; value: unknown }[],
): void {
  if (value === undefined || value === null) return;
  const head = segments[at];
  if (head === undefined) {
    out.push({ path, value });
    return;
  }
  if (head === '[]') {
    if (Array.isArray(value)) value.forEach((item, i) => reach(item, segments, at + 1, [...path, i], out));
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return;
  reach((value as Record<string, unknown>)[head], segments, at + 1, [...path, head], out);
}

/** The values of `when` that `value` shows (every one for a token list), or null if none. */
function matchedBy(when: UnsupportedWhen | undefined, value: unknown): (string | boolean)[] | null {
  if (when === undefined) return [];
  const text = typeof value === 'string' ? value.toLowerCase() : null;
  let hits: (string | boolean)[];
  if ('equals' in when)
    hits = when.equals.filter((w) => w === value || (text !== null && String(w).toLowerCase() === text));
  else if ('startsWith' in when)
    hits = text === null ? [] : when.startsWith.filter((p) => text.startsWith(p.toLowerCase())).slice(0, 1);
  else {
    const tokens = new Set((text ?? '').split(',').map((t) => t.trim()));
    hits = when.hasToken.filter((t) => tokens.has(t));
  }
  return hits.length > 0 ? hits : null;
}

/**
 * Warnings for what this resource sets that sluice parses but does not act on
 * (model/unsupported.ts), each naming the field as written and what happens instead.
 */
export function findUnsupportedFields(r: Resource): Finding[] {
  const findings: Finding[] = [];
  for (const entry of unsupportedOfKind(r.kind)) {
    const found: { path: FieldPath; value: unknown }[] = [];
    if (entry.field === '*') found.push({ path: [], value: r.spec });
    else for (const at of entry.at ?? [entry.field]) reach(r.spec, segmentsOf(at), 0, ['spec'], found);
    for (const { path, value } of found) {
      const hits = matchedBy(entry.when, value);
      if (hits === null) continue;
      for (const hit of hits.length > 0 ? hits : [undefined]) {
        findings.push({
          level: 'warning',
          code: 'SLUICE_CONFIG_UNSUPPORTED',
          path,
          message: describeUnsupported(entry, hit),
          unsupported: unsupportedLabel(entry, hit),
        });
      }
    }
  }
  return findings;
}

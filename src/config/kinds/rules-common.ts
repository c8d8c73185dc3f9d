import type { Code } from '../../errors/codes.ts';
import type { Level } from '../../errors/diagnostic.ts';
import type { Percent } from '../../model/networking.ts';
import { parseDuration } from '../../util/duration.ts';
import { compileRe2 } from '../../util/re2.ts';
import type { FieldPath } from '../field-path.ts';
import { checkLabel, isDns1123Label } from '../validate-hosts.ts';

/**
 * What every kind's rules share. Per-resource rules Istio's validation enforces (istio/istio pkg/config/validation/validation.go,
 * virtualservice.go, and the CRD schemas' CEL rules), plus warnings for valid config that will
 * surprise. Cross-resource checks belong to compile/analysis.
 */
export interface Finding {
  readonly level: Level;
  readonly code: Code;
  readonly path: FieldPath;
  readonly message: string;
  /** Set when this reports something sluice does not act on: its sluice_config_unsupported_total label. */
  readonly unsupported?: string;
}

export class Findings {
  readonly list: Finding[] = [];
  error(path: FieldPath, message: string, code: Code = 'SLUICE_CONFIG_INVALID'): void {
    this.list.push({ level: 'error', code, path, message });
  }
  warn(path: FieldPath, message: string, code: Code = 'SLUICE_CONFIG_INVALID'): void {
    this.list.push({ level: 'warning', code, path, message });
  }
  info(path: FieldPath, message: string, code: Code): void {
    this.list.push({ level: 'info', code, path, message });
  }
}

export const SPEC = 'spec';

export function validatePort(n: number | undefined, path: FieldPath, f: Findings, what = 'port'): void {
  if (n === undefined) return;
  if (n < 1 || n > 65535) f.error(path, `${what} must be between 1-65535, got ${n}`);
}

export function validateSelectorLabels(
  labels: Readonly<Record<string, string>> | undefined,
  path: FieldPath,
  f: Findings,
): void {
  if (!labels) return;
  for (const [k, v] of Object.entries(labels)) {
    const bad = checkLabel(k, v);
    if (bad) f.error([...path, k], bad);
  }
}

export function validatePercentage(p: Percent | undefined, path: FieldPath, f: Findings): void {
  const v = p?.value;
  if (v === undefined) return;
  if (v < 0 || v > 100 || (v > 0 && v < 0.0001))
    f.error([...path, 'value'], `percentage must be 0 or in 0.0001..100, got ${v}`);
}

export function validateIntPercent(v: number | undefined, path: FieldPath, f: Findings): void {
  if (v !== undefined && (v < 0 || v > 100)) f.error(path, `percentage must be in 0..100, got ${v}`);
}

/** Durations at least 1 ms with ms precision (ValidateDuration). */
export function validateDurationValue(
  s: string | undefined,
  path: FieldPath,
  f: Findings,
  allowZero = false,
): void {
  if (s === undefined) return;
  const d = parseDuration(s, { bareSeconds: false });
  if (!d.ok) return; // the schema already reported it
  if (allowZero && d.ms === 0) return;
  if (d.ms < 1) f.error(path, `duration must be at least 1ms, got "${s}"`);
  else if (!Number.isInteger(d.ms)) f.error(path, `only durations to ms precision are supported, got "${s}"`);
}

export function validateExportTo(
  namespace: string,
  exportTo: readonly string[] | undefined,
  path: FieldPath,
  f: Findings,
): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  exportTo.forEach((e, i) => {
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      f.error(
        [...path, i],
        key !== e
          ? `duplicate entries in exportTo: . and current namespace ${namespace}`
          : `duplicate entries in exportTo for entry ${e}`,
      );
    }
    seen.add(key);
    if (e !== '.' && e !== '*' && e !== '~' && !isDns1123Label(e))
      f.error([...path, i], `invalid exportTo value "${e}": use ".", "*", "~" or a namespace name`);
  });
  if (seen.has('*') && exportTo.length > 1)
    f.error(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) f.error(path, 'cannot export to no one (~) and someone');
}

const HEADER_NAME = /^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isHeaderName(s: string): boolean {
  return HEADER_NAME.test(s);
}

export function validateRegex(source: string, path: FieldPath, f: Findings, ignoreCase = false): void {
  if (source === '') {
    f.error(path, 'regex must not be empty', 'SLUICE_REGEX_INVALID');
    return;
  }
  const c = compileRe2(source, { ignoreCase });
  if (!c.ok) f.error(path, c.error, 'SLUICE_REGEX_INVALID');
}

export const HTTP_FAMILY = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
export const TLS_FAMILY = new Set(['HTTPS', 'TLS']);

/**
 * Runs every file of the Istio corpus (/work/shared/istio-corpus, beside the repository; never
 * copied into it) through config loading and analysis, as `sluice validate --config FILE` does,
 * and checks the verdict Istio gives the file and that every resource its findings list is named.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze } from '../../../../src/compile/analysis/index.ts';
import { loadResources } from '../../../../src/config/index.ts';
import type { Diagnostic, DiagnosticSubject } from '../../../../src/errors/diagnostic.ts';
import { formatDiagnostic } from '../../../../src/errors/diagnostic.ts';
import { IDENTITY } from './fixtures.ts';

interface Finding {
  readonly code: string;
  readonly level: 'Error' | 'Warning' | 'Info';
  readonly resource: string;
  readonly note?: string;
}

interface Expectation {
  readonly file: string;
  readonly verdict: 'valid' | 'warn' | 'error';
  readonly resources: readonly string[];
  readonly findings?: readonly Finding[];
}

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CORPUS = resolve(REPO_ROOT, '../shared/istio-corpus');
const present = existsSync(resolve(CORPUS, 'expectations.json'));
const entries: Expectation[] = present
  ? (JSON.parse(readFileSync(resolve(CORPUS, 'expectations.json'), 'utf8')) as Expectation[])
  : [];

function diagnose(entry: Expectation): Diagnostic[] {
  const text = readFileSync(resolve(CORPUS, entry.file), 'utf8');
  const loaded = loadResources([{ file: entry.file, text }], { defaultNamespace: 'default' });
  return [...loaded.diagnostics, ...analyze(loaded.resources, IDENTITY, { nowMs: Date.now() })];
}

function subjectNames(s: DiagnosticSubject | undefined, kind: string, ref: string): boolean {
  if (!s || s.kind !== kind) return false;
  if (ref.includes('/')) return `${s.namespace ?? ''}/${s.name}` === ref;
  return s.name === ref;
}

/** `Kind ns/name` or `ns/name` printed, or (for `Kind name`) that resource in any namespace. */
function isNamed(ds: readonly Diagnostic[], resource: string): boolean {
  const space = resource.indexOf(' ');
  const kind = resource.slice(0, space);
  const ref = resource.slice(space + 1);
  return ds.some((d) => {
    if (subjectNames(d.subject, kind, ref) || subjectNames(d.related, kind, ref)) return true;
    const text = `${formatDiagnostic(d)} ${d.message}`;
    if (ref.includes('/')) return text.includes(`${kind} ${ref}`) || text.includes(ref);
    return (
      text.includes(`${kind} ${ref}`) ||
      new RegExp(`${kind} [^\\s/]+/${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-])`).test(text)
    );
  });
}

function verdictProblem(entry: Expectation, ds: readonly Diagnostic[]): string | undefined {
  const errors = ds.filter((d) => d.level === 'error');
  switch (entry.verdict) {
    case 'valid':
      return errors.length === 0 ? undefined : `valid file, but ${errors.length} error(s)`;
    case 'error':
      return errors.length > 0 ? undefined : 'error file, but no error-level diagnostic';
    case 'warn': {
      const infoOnly =
        (entry.findings ?? []).length > 0 && (entry.findings ?? []).every((f) => f.level === 'Info');
      const ok = ds.some(
        (d) => d.level === 'error' || d.level === 'warning' || (infoOnly && d.level === 'info'),
      );
      return ok ? undefined : `warn file, but no ${infoOnly ? 'diagnostic' : 'warning or error'}`;
    }
  }
}

const mismatches: string[] = [];

describe('Istio corpus: sluice validate agrees with istioctl', () => {
  if (!present) {
    if (process.env.CI) {
      it('has the corpus', () => {
        throw new Error(`Istio corpus not found at ${CORPUS}; CI must provide it`);
      });
    } else {
      it.skip(`Istio corpus not found at ${CORPUS}: skipped (set it up beside the repository to run)`, () => {});
    }
    return;
  }

  afterAll(() => {
    const failed = new Set(mismatches.map((m) => m.split(':')[0]));
    console.log(
      `corpus: ${entries.length - failed.size}/${entries.length} files pass` +
        (mismatches.length > 0 ? `\n${mismatches.map((m) => `  ${m}`).join('\n')}` : ''),
    );
  });

  it.each(entries.map((e) => [e.file, e] as const))('%s', (_file, entry) => {
    const ds = diagnose(entry);
    const problems: string[] = [];
    const v = verdictProblem(entry, ds);
    if (v) problems.push(v);
    for (const r of entry.resources) {
      if (!isNamed(ds, r)) {
        const codes = (entry.findings ?? []).filter((f) => f.resource === r).map((f) => f.code);
        problems.push(`${r} not named (expected ${[...new Set(codes)].join(', ') || 'a finding'})`);
      }
    }
    for (const p of problems) mismatches.push(`${entry.file}: ${p}`);
    expect(problems, `${entry.file}\n${ds.map(formatDiagnostic).join('\n')}`).toEqual([]);
  });
});

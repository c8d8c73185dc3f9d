import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic, type Diagnostic } from '../../../src/errors/diagnostic.ts';
import { readingDifferences } from '../../support/same-reading.ts';

/**
 * Istio's own configuration (shared corpus, never copied into the project): what Istio's
 * validation accepts must load without errors, what it rejects must produce an error naming the
 * resource. Cross-resource analyzer findings are checked elsewhere; for analyzers/ only the
 * IST0106 (schema validation) findings are per-document, so only those are checked here.
 */
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const corpus = path.resolve(repoRoot, '../shared/istio-corpus');
const present = existsSync(path.join(corpus, 'expectations.json'));

interface Expectation {
  readonly file: string;
  readonly verdict: 'valid' | 'warn' | 'error';
  readonly resources: readonly string[];
  readonly findings?: readonly { readonly code: string; readonly resource: string }[];
}

function load(file: string) {
  const text = readFileSync(path.join(corpus, file), 'utf8');
  return loadResources([{ file, text }], { defaultNamespace: 'default' });
}

/** "Kind ns/name" or "Kind name" (namespace-less documents: any namespace). */
function names(d: Diagnostic, resource: string): boolean {
  const [kind, ref] = resource.split(' ') as [string, string];
  const [ns, name] = ref.includes('/') ? (ref.split('/') as [string, string]) : [undefined, ref];
  const s = d.subject;
  return !!s && s.kind === kind && s.name === name && (ns === undefined || s.namespace === ns);
}

const errorsOf = (ds: readonly Diagnostic[]) => ds.filter((d) => d.level === 'error');

if (!present && process.env.CI) {
  throw new Error(`Istio corpus not found at ${corpus}; CI must provide it`);
}
if (!present)
  console.warn(`Istio corpus not found at ${corpus}: its checks did not run (under CI this fails)`);

describe.skipIf(!present)('istio corpus (per-document validation)', () => {
  const expectations: Expectation[] = present
    ? JSON.parse(readFileSync(path.join(corpus, 'expectations.json'), 'utf8'))
    : [];
  const valid = expectations.filter((e) => /^(samples|istio\.io|validation)\//.test(e.file));
  const invalid = expectations.filter((e) => e.file.startsWith('invalid/'));
  const analyzers = expectations.filter(
    (e) => e.file.startsWith('analyzers/') && e.findings?.some((f) => f.code === 'IST0106'),
  );

  it('has the expected folders', () => {
    expect(valid.length).toBeGreaterThan(100);
    expect(invalid.length).toBeGreaterThan(20);
  });

  it.each(valid.map((e) => [e.file]))('accepts %s', (file) => {
    const { diagnostics } = load(file);
    expect(errorsOf(diagnostics).map(formatDiagnostic)).toEqual([]);
  });

  it.each(expectations.map((e) => [e.file]))('the fast YAML reader reads %s as `yaml` does', (file) => {
    const diffs = readingDifferences(file, readFileSync(path.join(corpus, file), 'utf8'));
    if (diffs !== 'declined') expect(diffs).toEqual([]);
  });

  it.each(invalid.map((e) => [e.file, e]))('rejects %s', (file, e) => {
    const errors = errorsOf(load(file).diagnostics);
    expect(errors.length, `no error for ${file}`).toBeGreaterThan(0);
    for (const r of e.resources) {
      expect(
        errors.some((d) => names(d, r)),
        `${r} not named in:\n${errors.map(formatDiagnostic).join('\n')}`,
      ).toBe(true);
    }
  });

  it.each(analyzers.map((e) => [e.file, e]))('reports IST0106 resources of %s', (file, e) => {
    const errors = errorsOf(load(file).diagnostics);
    for (const f of e.findings!.filter((x) => x.code === 'IST0106')) {
      expect(
        errors.some((d) => names(d, f.resource)),
        `${f.resource} not named in:\n${errors.map(formatDiagnostic).join('\n')}`,
      ).toBe(true);
    }
  });
});

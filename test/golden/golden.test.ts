/**
 * Golden tests: each cases/<feature>-<case>.in.yaml compiles to cases/<...>.out.yaml (the
 * snapshot dump) and cases/<...>.diag.txt (diagnostics). The input opens with a comment saying
 * what it proves; `# namespace: X` and `# labels: k=v,k2=v2` lines set the gateway identity.
 * Update with `npx vitest run test/golden -u` and review the diff like code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatDiagnostic, sortDiagnostics } from '../../src/errors/diagnostic.ts';
import { dumpSnapshot } from '../../src/snapshot/dump.ts';
import { compileYaml } from '../simulate/compile-yaml.ts';

const CASES_DIR = fileURLToPath(new URL('./cases/', import.meta.url));
const inputs = readdirSync(CASES_DIR)
  .filter((f) => f.endsWith('.in.yaml'))
  .sort();

function identityOf(text: string): { namespace?: string; labels?: Record<string, string> } {
  const out: { namespace?: string; labels?: Record<string, string> } = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    const ns = /^#\s*namespace:\s*(\S+)/.exec(line);
    if (ns?.[1]) out.namespace = ns[1];
    const labels = /^#\s*labels:\s*(\S+)/.exec(line);
    if (labels?.[1])
      out.labels = Object.fromEntries(labels[1].split(',').map((kv) => kv.split('=') as [string, string]));
  }
  return out;
}

describe('golden', () => {
  it('has cases', () => {
    expect(inputs.length).toBeGreaterThan(0);
  });

  it.each(inputs)('%s', async (file) => {
    const text = readFileSync(CASES_DIR + file, 'utf8');
    expect(text.startsWith('#'), `${file} must open with a comment saying what it proves`).toBe(true);
    const base = file.slice(0, -'.in.yaml'.length);
    const { snapshot, diagnostics } = compileYaml(text, identityOf(text), file);
    await expect(stringify(dumpSnapshot(snapshot), { lineWidth: 0 })).toMatchFileSnapshot(
      `cases/${base}.out.yaml`,
    );
    const diag = sortDiagnostics(diagnostics).map(formatDiagnostic).join('\n');
    await expect(diag === '' ? '(none)\n' : `${diag}\n`).toMatchFileSnapshot(`cases/${base}.diag.txt`);
  });
});

/**
 * README's "What is supported" table and the warnings are made from the same facts: every **no**
 * row names entries of model/unsupported.ts, and every entry is in a **no** row of its kind.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UNSUPPORTED, unsupportedLabels } from '../../../src/model/unsupported.ts';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

function supportSection(): string {
  const start = README.indexOf('## What is supported');
  const end = README.indexOf('\n## ', start + 1);
  expect(start).toBeGreaterThanOrEqual(0);
  return README.slice(start, end < 0 ? undefined : end);
}

/** `Kind field` for each **no** row's kinds × backticked fields (`every field` is `*`). */
function readmeNoRows(): string[] {
  const out: string[] = [];
  for (const line of supportSection().split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !cells[3]!.startsWith('**no**')) continue;
    const kinds = cells[1]!
      .replace(/\(.*?\)/g, '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
    const fields =
      cells[2] === 'every field' ? ['*'] : [...cells[2]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    expect(fields.length, `no fields in README row: ${line}`).toBeGreaterThan(0);
    for (const k of kinds) for (const f of fields) out.push(`${k} ${f}`);
  }
  return out;
}

describe('README "What is supported" and model/unsupported.ts say the same', () => {
  const readme = readmeNoRows();
  const table = UNSUPPORTED.flatMap((e) => unsupportedLabels(e).map((l) => `${e.kind} ${l}`));

  it('has **no** rows', () => {
    expect(readme.length).toBeGreaterThan(20);
  });

  it('every unsupported entry appears in a **no** row of its kind', () => {
    expect(table.filter((t) => !readme.includes(t))).toEqual([]);
  });

  it('every field of a **no** row is an unsupported entry', () => {
    expect(readme.filter((r) => !table.includes(r))).toEqual([]);
  });
});

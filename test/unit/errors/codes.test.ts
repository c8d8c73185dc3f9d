import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CODES, RETIRED_CODES } from '../../../src/errors/codes.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');
const CODES_FILE = join(SRC, 'errors', 'codes.ts');

const codes = Object.keys(CODES);
const docs = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');

function listTsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTsFiles(path);
    return entry.isFile() && entry.name.endsWith('.ts') ? [path] : [];
  });
}

// Everything in src/ but the registry itself: a code counts as used when it appears as a string
// literal ('SLUICE_X') or a property (CODES.SLUICE_X), not merely in a comment.
const sourceOutsideRegistry = listTsFiles(SRC)
  .filter((path) => path !== CODES_FILE)
  .map((path) => readFileSync(path, 'utf8'))
  .join('\n');

function mentions(text: string, code: string, before = ''): boolean {
  return new RegExp(`${before}\\b${code}\\b`).test(text);
}

describe('error codes (DESIGN §5: unique, used, documented)', () => {
  it('has codes, each named SLUICE_<UPPER_SNAKE> with a description', () => {
    expect(codes.length).toBeGreaterThan(0);
    for (const [code, description] of Object.entries(CODES)) {
      expect(code).toMatch(/^SLUICE_[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/);
      expect(description.trim(), code).not.toBe('');
    }
  });

  it('declares each code once in codes.ts (a repeated object key would silently win)', () => {
    const declared = [...readFileSync(CODES_FILE, 'utf8').matchAll(/^\s*(SLUICE_[A-Z0-9_]+)\s*:/gm)].map(
      (m) => m[1],
    );
    const repeated = declared.filter((code, i) => declared.indexOf(code) !== i);
    expect(repeated).toEqual([]);
    expect([...declared].sort()).toEqual([...codes].sort());
  });

  it('never reuses a retired code, and lists each retired code once', () => {
    expect(codes.filter((code) => RETIRED_CODES.includes(code))).toEqual([]);
    expect(RETIRED_CODES.filter((code, i) => RETIRED_CODES.indexOf(code) !== i)).toEqual([]);
  });

  it.each(codes)('%s is documented in docs/errors.md', (code) => {
    expect(mentions(docs, code), `add ${code} to docs/errors.md`).toBe(true);
  });

  it('documents no code that is neither current nor retired', () => {
    const known = new Set<string>([...codes, ...RETIRED_CODES]);
    const documented = [...docs.matchAll(/\bSLUICE_[A-Z0-9_]+\b/g)].map((m) => m[0]);
    expect(documented.filter((code) => !known.has(code))).toEqual([]);
  });

  it.each(codes)('%s is used in src/ outside codes.ts', (code) => {
    expect(
      mentions(sourceOutsideRegistry, code, `['"\`.]`),
      `${code} is never used; use it or move it to RETIRED_CODES`,
    ).toBe(true);
  });
});

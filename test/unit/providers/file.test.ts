import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Provider, ProviderUpdate } from '../../../src/providers/provider.ts';
import { createFileProvider, readConfigPaths } from '../../../src/providers/file.ts';
import { until } from '../../support/until.ts';

const svc = (name: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: {ports: [{port: 80}]}\n`;

let dir: string;
let provider: Provider | undefined;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sluice-file-'));
});

afterEach(async () => {
  await provider?.stop();
  provider = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function names(u: ProviderUpdate | undefined): string[] {
  return u ? u.resources.resources.map((r) => r.name) : [];
}

describe('readConfigPaths', () => {
  it('walks directories recursively in sorted order, skipping hidden files, backups and other extensions', async () => {
    mkdirSync(path.join(dir, 'b/nested'), { recursive: true });
    mkdirSync(path.join(dir, '.hidden'));
    writeFileSync(path.join(dir, 'b/nested/z.yml'), svc('z'));
    writeFileSync(
      path.join(dir, 'b/a.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } }),
    );
    writeFileSync(path.join(dir, 'a.yaml'), svc('a'));
    writeFileSync(path.join(dir, 'a.yaml~'), svc('backup'));
    writeFileSync(path.join(dir, '.a.yaml.swp'), 'x');
    writeFileSync(path.join(dir, 'c.yaml.swp'), 'x');
    writeFileSync(path.join(dir, '.dot.yaml'), svc('dot'));
    writeFileSync(path.join(dir, '.hidden/h.yaml'), svc('h'));
    writeFileSync(path.join(dir, 'notes.txt'), 'hello');
    const { inputs, diagnostics } = await readConfigPaths([dir]);
    expect(diagnostics).toEqual([]);
    expect(inputs.map((i) => path.relative(dir, i.file))).toEqual(['a.yaml', 'b/a.json', 'b/nested/z.yml']);
    expect(inputs[0]!.text).toBe(svc('a'));
  });

  it('reads a named file whatever its extension, and reports unreadable paths', async () => {
    writeFileSync(path.join(dir, 'config.txt'), svc('t'));
    const missing = path.join(dir, 'missing.yaml');
    const { inputs, diagnostics } = await readConfigPaths([path.join(dir, 'config.txt'), missing]);
    expect(inputs.map((i) => path.basename(i.file))).toEqual(['config.txt']);
    expect(diagnostics).toEqual([
      {
        level: 'error',
        code: 'SLUICE_CONFIG_READ',
        message: `cannot read config path ${missing}: no such file or directory`,
      },
    ]);
  });
});

describe('createFileProvider', () => {
  it('delivers the first update before start() resolves, then re-reads on a change', async () => {
    writeFileSync(path.join(dir, 'a.yaml'), svc('one'));
    const updates: ProviderUpdate[] = [];
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    await provider.start((u) => updates.push(u));
    expect(updates.map(names)).toEqual([['one']]);
    writeFileSync(path.join(dir, 'a.yaml'), svc('two'));
    await until(() => names(updates.at(-1)).includes('two'), { what: 'update after write' });
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub/b.yaml'), svc('three'));
    await until(() => names(updates.at(-1)).join() === 'two,three', {
      what: 'update after a new file in a new directory',
    });
  });

  it('sees a rename-save (write a temp file, rename it over) of a named file', async () => {
    const file = path.join(dir, 'gw.yaml');
    writeFileSync(file, svc('before'));
    const updates: ProviderUpdate[] = [];
    provider = createFileProvider({ paths: [file], defaultNamespace: 'default' });
    await provider.start((u) => updates.push(u));
    expect(names(updates[0])).toEqual(['before']);
    for (const n of ['after', 'again']) {
      writeFileSync(path.join(dir, '.gw.yaml.tmp'), svc(n));
      renameSync(path.join(dir, '.gw.yaml.tmp'), file);
      await until(() => names(updates.at(-1)).includes(n), { what: `update after rename-save (${n})` });
    }
  });

  it('sees a ConfigMap-style ..data symlink swap', async () => {
    mkdirSync(path.join(dir, '..v1'));
    writeFileSync(path.join(dir, '..v1/config.yaml'), svc('v1'));
    symlinkSync('..v1', path.join(dir, '..data'));
    symlinkSync('..data/config.yaml', path.join(dir, 'config.yaml'));
    const updates: ProviderUpdate[] = [];
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    await provider.start((u) => updates.push(u));
    expect(names(updates[0])).toEqual(['v1']);
    mkdirSync(path.join(dir, '..v2'));
    writeFileSync(path.join(dir, '..v2/config.yaml'), svc('v2'));
    symlinkSync('..v2', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await until(() => names(updates.at(-1)).includes('v2'), { what: 'update after ..data swap' });
  });

  it('reports errors in an update instead of throwing, and recovers', async () => {
    writeFileSync(path.join(dir, 'a.yaml'), 'kind: [\n');
    const updates: ProviderUpdate[] = [];
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    await provider.start((u) => updates.push(u));
    expect(updates[0]!.diagnostics.map((d) => d.code)).toContain('SLUICE_CONFIG_PARSE');
    writeFileSync(path.join(dir, 'a.yaml'), svc('fixed'));
    await until(() => names(updates.at(-1)).includes('fixed') && updates.at(-1)!.diagnostics.length === 0, {
      what: 'recovered update',
    });
  });

  it('coalesces a burst of writes and stops calling after stop()', async () => {
    const updates: ProviderUpdate[] = [];
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    await provider.start((u) => updates.push(u));
    for (let i = 0; i < 20; i++) writeFileSync(path.join(dir, `f${i}.yaml`), svc(`s${i}`));
    await until(() => names(updates.at(-1)).length === 20, { what: 'all 20 files seen' });
    expect(updates.length).toBeLessThan(10);
    await provider.stop();
    const count = updates.length;
    writeFileSync(path.join(dir, 'late.yaml'), svc('late'));
    await new Promise((r) => setTimeout(r, 150));
    expect(updates.length).toBe(count);
  });
});

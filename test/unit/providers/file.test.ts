import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Provider, ProviderUpdate } from '../../../src/providers/provider.ts';
import { createFileProvider, readConfigPaths } from '../../../src/providers/file.ts';
import { createConfigSources } from '../../../src/providers/certs-dir.ts';
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

/** A provider driven as the loop drives it, minus the debounce: every "changed" is a read. */
async function follow(p: Provider): Promise<{ updates: ProviderUpdate[]; changes: () => number }> {
  const updates: ProviderUpdate[] = [];
  let changes = 0;
  await p.start(() => {
    changes++;
    void p.read().then((u) => updates.push(u));
  });
  updates.push(await p.read());
  return { updates, changes: () => changes };
}

describe('createFileProvider', () => {
  it('reads everything, and says "changed" when a file or a new directory changes', async () => {
    writeFileSync(path.join(dir, 'a.yaml'), svc('one'));
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    const { updates } = await follow(provider);
    expect(updates.map(names)).toEqual([['one']]);
    expect(updates[0]!.files).toBe(1);
    writeFileSync(path.join(dir, 'a.yaml'), svc('two'));
    await until(() => names(updates.at(-1)).includes('two'), { what: 'update after write' });
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub/b.yaml'), svc('three'));
    await until(() => names(updates.at(-1)).join() === 'two,three', {
      what: 'update after a new file in a new directory',
    });
    writeFileSync(path.join(dir, 'sub/b.yaml'), svc('four'));
    await until(() => names(updates.at(-1)).join() === 'two,four', {
      what: 'update inside the new directory',
    });
  });

  it('sees a rename-save (write a temp file, rename it over) of a named file', async () => {
    const file = path.join(dir, 'gw.yaml');
    writeFileSync(file, svc('before'));
    provider = createFileProvider({ paths: [file], defaultNamespace: 'default' });
    const { updates } = await follow(provider);
    expect(names(updates[0])).toEqual(['before']);
    for (const n of ['after', 'again']) {
      writeFileSync(path.join(dir, '.gw.yaml.tmp'), svc(n));
      renameSync(path.join(dir, '.gw.yaml.tmp'), file);
      await until(() => names(updates.at(-1)).includes(n), { what: `update after rename-save (${n})` });
    }
  });

  it('sees a named file deleted and written again', async () => {
    const file = path.join(dir, 'gw.yaml');
    writeFileSync(file, svc('before'));
    provider = createFileProvider({ paths: [file], defaultNamespace: 'default' });
    const { updates } = await follow(provider);
    rmSync(file);
    await until(() => updates.at(-1)!.diagnostics.some((d) => d.code === 'SLUICE_CONFIG_READ'), {
      what: 'the deletion read',
    });
    writeFileSync(file, svc('back'));
    await until(() => names(updates.at(-1)).includes('back'), { what: 'the file back' });
  });

  it('sees a ConfigMap-style ..data symlink swap, of a directory and of a file named in it', async () => {
    mkdirSync(path.join(dir, '..v1'));
    writeFileSync(path.join(dir, '..v1/config.yaml'), svc('v1'));
    symlinkSync('..v1', path.join(dir, '..data'));
    symlinkSync('..data/config.yaml', path.join(dir, 'config.yaml'));
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    const byDir = await follow(provider);
    const byFile = createFileProvider({
      paths: [path.join(dir, 'config.yaml')],
      defaultNamespace: 'default',
    });
    const named = await follow(byFile);
    expect(names(byDir.updates[0])).toEqual(['v1']);
    expect(names(named.updates[0])).toEqual(['v1']);
    mkdirSync(path.join(dir, '..v2'));
    writeFileSync(path.join(dir, '..v2/config.yaml'), svc('v2'));
    symlinkSync('..v2', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await until(() => names(byDir.updates.at(-1)).includes('v2'), { what: 'update after ..data swap' });
    await until(() => names(named.updates.at(-1)).includes('v2'), { what: 'named file after ..data swap' });
    await byFile.stop();
  });

  it('reports errors in an update instead of throwing, and recovers', async () => {
    writeFileSync(path.join(dir, 'a.yaml'), 'kind: [\n');
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    const { updates } = await follow(provider);
    expect(updates[0]!.diagnostics.map((d) => d.code)).toContain('SLUICE_CONFIG_PARSE');
    writeFileSync(path.join(dir, 'a.yaml'), svc('fixed'));
    await until(() => names(updates.at(-1)).includes('fixed') && updates.at(-1)!.diagnostics.length === 0, {
      what: 'recovered update',
    });
  });

  it('stops saying "changed" after stop()', async () => {
    provider = createFileProvider({ paths: [dir], defaultNamespace: 'default' });
    const { changes } = await follow(provider);
    writeFileSync(path.join(dir, 'first.yaml'), svc('first'));
    await until(() => changes() > 0, { what: 'a change seen' });
    await provider.stop();
    const count = changes();
    writeFileSync(path.join(dir, 'late.yaml'), svc('late'));
    renameSync(path.join(dir, 'late.yaml'), path.join(dir, 'later.yaml'));
    // The event would arrive within a poll; a sentinel cannot be watched once stopped.
    await new Promise((r) => setTimeout(r, 100));
    expect(changes()).toBe(count);
  });
});

describe('createConfigSources wakes only for the config paths and what they point to', () => {
  it('ignores a log written beside the config folder, and files in it that are not config', async () => {
    const config = path.join(dir, 'config');
    const certs = path.join(dir, 'certs');
    mkdirSync(config);
    mkdirSync(path.join(certs, 'shop'), { recursive: true });
    writeFileSync(path.join(config, 'a.yaml'), svc('a'));
    provider = createConfigSources({
      paths: [config],
      defaultNamespace: 'default',
      certsDir: certs,
      gatewayNamespace: 'istio-system',
    });
    const { updates, changes } = await follow(provider);
    expect(names(updates[0])).toEqual(['a']);
    // A benchmark's log beside the config folder, notes and swap files inside it.
    for (let i = 0; i < 500; i++) {
      appendFileSync(path.join(dir, 'bench.log'), `line ${i}\n`);
      appendFileSync(path.join(config, 'notes.txt'), `line ${i}\n`);
      appendFileSync(path.join(config, '.a.yaml.swp'), `line ${i}\n`);
      appendFileSync(path.join(certs, 'shop', 'notes.txt'), `line ${i}\n`);
    }
    // One rename-save of a config file after the noise: events arrive in order, so once it is
    // seen, the noise has been delivered too.
    writeFileSync(path.join(config, '.a.yaml.tmp'), svc('b'));
    renameSync(path.join(config, '.a.yaml.tmp'), path.join(config, 'a.yaml'));
    await until(() => changes() > 0, { what: 'the rename-save seen' });
    expect(changes()).toBe(1);
    // A certificate written into --certs-dir is a change.
    writeFileSync(path.join(certs, 'shop', 'tls.crt'), 'CERT');
    await until(() => changes() > 1, { what: 'the certificate seen' });
    await until(() => updates.at(-1)!.resources.resources.some((r) => r.kind === 'Secret'), {
      what: 'the certificate read',
    });
  });
});

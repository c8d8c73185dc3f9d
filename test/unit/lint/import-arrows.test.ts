import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CONFIG_FILE = join(ROOT, 'eslint.config.js');
const RULE = 'no-restricted-imports';

const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: CONFIG_FILE });

// A variable specifier keeps TypeScript from resolving (and type-checking) the plain JS config.
const configModule: string = CONFIG_FILE;
const { IMPORT_ARROWS } = (await import(configModule)) as {
  IMPORT_ARROWS: Record<string, readonly string[] | 'any'>;
};

/** Lints `code` as if it were the file at `file` (relative to the repo root; need not exist). */
async function lint(file: string, code: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  if (result === undefined) throw new Error(`no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  if (fatal.length > 0) throw new Error(`${file} did not parse: ${fatal.map((m) => m.message).join('; ')}`);
  return result.messages.filter((m) => m.ruleId === RULE);
}

describe('import arrows (DESIGN §2)', () => {
  it('reports compile/ importing dataplane/', async () => {
    const messages = await lint(
      'src/compile/routes.ts',
      "import { handleRequest } from '../dataplane/handle-request.ts';\nexport const h = handleRequest;\n",
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]?.message).toContain('compile/ may import only');
  });

  it('reports dataplane/ importing compile/, from the folder and from a nested folder, types too', async () => {
    expect(
      await lint('src/dataplane/handle-request.ts', "import { compile } from '../compile/index.ts';\n"),
    ).toHaveLength(1);
    expect(
      await lint(
        'src/dataplane/filters/authz.ts',
        "import type { AuthzRule } from '../../compile/authz.ts';\n",
      ),
    ).toHaveLength(1);
    expect(
      await lint('src/dataplane/filters/authz.ts', "export { compile } from '../../compile/index.ts';\n"),
    ).toHaveLength(1);
  });

  it('allows dataplane/ importing snapshot/', async () => {
    expect(
      await lint(
        'src/dataplane/handle-request.ts',
        "import type { Snapshot } from '../snapshot/types.ts';\n",
      ),
    ).toEqual([]);
    expect(
      await lint(
        'src/dataplane/filters/cors.ts',
        "import { lookupRoute } from '../../snapshot/lookup.ts';\n",
      ),
    ).toEqual([]);
  });

  it('reports model/ importing config/', async () => {
    expect(
      await lint('src/model/networking.ts', "import { validate } from '../config/validate.ts';\n"),
    ).toHaveLength(1);
  });

  it('reports node:fs in compile/ and snapshot/, not in providers/', async () => {
    expect(await lint('src/compile/index.ts', "import { readFileSync } from 'node:fs';\n")).toHaveLength(1);
    expect(await lint('src/snapshot/dump.ts', "import { readFile } from 'node:fs/promises';\n")).toHaveLength(
      1,
    );
    expect(await lint('src/providers/file.ts', "import { readFile } from 'node:fs/promises';\n")).toEqual([]);
  });

  it('limits src/main.ts to cli/, errors/ and util/', async () => {
    expect(await lint('src/main.ts', "import { compile } from './compile/index.ts';\n")).toHaveLength(1);
    expect(await lint('src/main.ts', "import { runCli } from './cli/run.ts';\n")).toEqual([]);
  });

  it('leaves package subpaths that share a folder name alone', async () => {
    expect(await lint('src/util/hash.ts', "import { x } from 'some-package/compile/index.js';\n")).toEqual(
      [],
    );
  });

  // Every (from, to) pair of the table, at two depths, so the generated blocks match the table.
  const folders = Object.keys(IMPORT_ARROWS).filter((from) => from !== 'main.ts');
  it.each(Object.entries(IMPORT_ARROWS))('enforces the table for %s', async (from, allowed) => {
    const mayImport = (to: string) => allowed === 'any' || to === from || allowed.includes(to);
    const cases =
      from === 'main.ts'
        ? [{ file: 'src/main.ts', prefix: './' }]
        : [
            { file: `src/${from}/a.ts`, prefix: '../' },
            { file: `src/${from}/nested/a.ts`, prefix: '../../' },
          ];
    for (const { file, prefix } of cases) {
      const code = folders.map((to) => `import '${prefix}${to}/x.ts';`).join('\n');
      const reportedLines = (await lint(file, code)).map((m) => m.line);
      const expectedLines = folders.flatMap((to, i) => (mayImport(to) ? [] : [i + 1]));
      expect(reportedLines, `${file}: reported import lines`).toEqual(expectedLines);
    }
  });
});

import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * DESIGN §2 import arrows: which src/ folders each folder may import from. A folder may always
 * import itself. This table is the rule; the blocks below are generated from it.
 */
export const IMPORT_ARROWS = {
  'main.ts': ['cli', 'errors', 'util'],
  cli: 'any',
  errors: ['util'],
  model: ['errors', 'util'],
  config: ['model', 'errors', 'util'],
  providers: ['config', 'model', 'tls', 'errors', 'util', 'observability'],
  compile: ['model', 'snapshot', 'errors', 'util'],
  snapshot: ['model', 'errors', 'util'],
  control: [
    'errors',
    'model',
    'config',
    'providers',
    'compile',
    'snapshot',
    'dataplane',
    'upstream',
    'ratelimit',
    'tls',
    'observability',
    'util',
  ],
  dataplane: ['snapshot', 'upstream', 'ratelimit', 'tls', 'observability', 'errors', 'util'],
  upstream: ['snapshot', 'tls', 'observability', 'errors', 'util'],
  ratelimit: ['errors', 'util', 'observability'],
  tls: ['errors', 'util'],
  observability: ['util'],
  // DESIGN §2 lists control, snapshot, upstream, observability; errors, model and util are leaf
  // folders every other area may use, and admin renders models (config_dump) and returns errors.
  admin: ['control', 'snapshot', 'upstream', 'observability', 'model', 'errors', 'util'],
  util: [],
};

/** Folders that must stay pure: compile() is sync and deterministic, so no file system. */
const NO_FS_FOLDERS = ['compile', 'snapshot'];
const FS_MODULES = ['node:fs', 'node:fs/promises', 'fs', 'fs/promises'];

const SRC_FOLDERS = Object.keys(IMPORT_ARROWS).filter((from) => from !== 'main.ts');

function importArrowBlock(from, allowed) {
  if (allowed === 'any') return [];
  const isMain = from === 'main.ts';
  const forbidden = SRC_FOLDERS.filter((f) => f !== from && !allowed.includes(f));
  const paths = NO_FS_FOLDERS.includes(from)
    ? FS_MODULES.map((name) => ({ name, message: `${from}/ is pure: no file system access (DESIGN §2).` }))
    : [];
  if (forbidden.length === 0 && paths.length === 0) return [];
  // From src/main.ts a folder is './compile/...'; from inside a folder, at any depth, it is one or
  // more '../' then the folder ('../compile/x.ts', '../../compile/x.ts'). Anchoring on '..' keeps
  // package subpaths and same-named nested folders from matching.
  const group = forbidden.map((f) => (isMain ? `./${f}/**` : `**/../${f}/**`));
  const may = allowed.length === 0 ? 'nothing in src/' : allowed.map((f) => `${f}/`).join(', ');
  return [
    {
      name: `sluice/import-arrows/${from}`,
      files: [isMain ? 'src/main.ts' : `src/${from}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            paths,
            patterns:
              group.length === 0
                ? []
                : [{ group, message: `${isMain ? from : `${from}/`} may import only ${may} (DESIGN §2).` }],
          },
        ],
      },
    },
  ];
}

// The few Node globals plain .js files (bin/) use; TypeScript checks globals in .ts files.
const NODE_GLOBALS = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'clearImmediate',
    'queueMicrotask',
    'structuredClone',
  ].map((name) => [name, 'readonly']),
);

const UNUSED = {
  args: 'after-used',
  argsIgnorePattern: '^_',
  varsIgnorePattern: '^_',
  caughtErrorsIgnorePattern: '^_',
  destructuredArrayIgnorePattern: '^_',
};

export default defineConfig(
  globalIgnores(['node_modules/', 'dist/', 'coverage/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    name: 'sluice/base',
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': ['error', UNUSED],
    },
  },
  {
    name: 'sluice/node-js',
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: NODE_GLOBALS },
  },
  Object.entries(IMPORT_ARROWS).flatMap(([from, allowed]) => importArrowBlock(from, allowed)),
);

/**
 * What a user starts from: a clone of the repository's committed HEAD (so a file the project
 * needs but never committed is missing here too), and the package packed from it and installed
 * as users install it, into a prefix of its own.
 */
import { readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { REPO, runCommand, type ChildOptions, type Finished } from './child-process.ts';

/**
 * A user's shell: no npm_* or GIT_* variables of the `npm test` (or git hook) that runs the
 * tests, no project's node_modules/.bin on the PATH; this Node (26) first on it, after
 * `extraPath`.
 */
export function userEnv(extraPath: readonly string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(npm_|GIT_)/i.test(k) && k !== 'INIT_CWD' && k !== 'PATH') env[k] = v;
  const inherited = (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .filter((p) => p !== '' && !p.endsWith(`node_modules${path.sep}.bin`));
  env['PATH'] = [...extraPath, path.dirname(process.execPath), ...inherited].join(path.delimiter);
  return env;
}

/** Runs a command and fails with its output unless it exits 0. */
export async function mustRun(
  command: string,
  args: readonly string[],
  opts: ChildOptions & { timeoutMs?: number },
): Promise<Finished> {
  const r = await runCommand(command, args, opts);
  if (r.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * Clones HEAD into `dir`. Dependencies are this checkout's node_modules, linked: the same
 * lockfile's packages, without a second install.
 */
export async function cloneHead(dir: string): Promise<void> {
  const env = userEnv();
  const head = (
    await mustRun('git', ['rev-parse', 'HEAD'], { cwd: REPO, env, replaceEnv: true })
  ).stdout.trim();
  await mustRun('git', ['clone', '--quiet', '--no-checkout', REPO, dir], { env, replaceEnv: true });
  await mustRun('git', ['checkout', '--quiet', '--detach', head], { cwd: dir, env, replaceEnv: true });
  await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
}

/**
 * `npm pack` in `clone` (its `prepare` compiles src/ into dist/), then `npm install -g` of the
 * tarball into `prefix`; dependencies come from the registry or npm's cache. Returns the
 * tarball's path and where the package landed.
 */
export async function packAndInstall(
  clone: string,
  into: string,
): Promise<{ tarball: string; prefix: string; installed: string; bin: string }> {
  const env = userEnv();
  // Niced: compiling and installing take a core from whatever test runs in the other worker.
  await mustRun('nice', ['npm', 'pack', '--pack-destination', into], {
    cwd: clone,
    env,
    replaceEnv: true,
    timeoutMs: 180_000,
  });
  const tgz = (await readdir(into)).filter((f) => f.endsWith('.tgz'));
  if (tgz.length !== 1) throw new Error(`npm pack wrote ${tgz.length} tarballs: ${tgz.join(', ')}`);
  const tarball = path.join(into, tgz[0]!);
  const prefix = path.join(into, 'prefix');
  await mustRun(
    'nice',
    [
      'npm',
      'install',
      '--global',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tarball,
    ],
    { cwd: into, env, replaceEnv: true, timeoutMs: 180_000 },
  );
  return {
    tarball,
    prefix,
    installed: path.join(prefix, 'lib', 'node_modules', 'sluice'),
    bin: path.join(prefix, 'bin'),
  };
}

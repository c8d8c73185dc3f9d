/**
 * What a user gets from a fresh clone of the committed tree: the package packed and installed as
 * users install it, running the compiled JavaScript from under node_modules; and every command
 * the README shows, run as shown in that clone while `npm start` serves the quickstart. The
 * README's fixed ports are moved to free ones, in the clone's gateways/ and in the commands alike.
 */
import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, spawnCommand, type Spawned } from '../support/child-process.ts';
import { cloneHead, packAndInstall, userEnv } from '../support/fresh-clone.ts';
import { request } from '../support/ops-config.ts';
import {
  controlPortFlags,
  freePortMap,
  mapPorts,
  mapPortsInDir,
  quickstartPorts,
  unmappedPorts,
  type PortMap,
} from '../support/quickstart-ports.ts';
import { readmeCommands, unrunnable } from '../support/readme-commands.ts';
import { until } from '../support/until.ts';

let root: string;
let clone: string;
let pkg: Awaited<ReturnType<typeof packAndInstall>>;
let procs: Spawned[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sluice-fresh-clone-'));
  clone = path.join(root, 'sluice');
  await cloneHead(clone);
  pkg = await packAndInstall(clone, root);
}, 360_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  procs = [];
  if (root) await rm(root, { recursive: true, force: true });
});

/** The installed `sluice` command, run from the clone as a user would. */
function sluice(args: readonly string[]) {
  return runCommand(path.join(pkg.bin, 'sluice'), args, {
    cwd: clone,
    env: userEnv([pkg.bin]),
    replaceEnv: true,
  });
}

/** A copy of the clone's gateways/ with every fixed port moved to a free one. */
async function gatewaysOnFreePorts(dir: string): Promise<PortMap> {
  await cp(path.join(clone, 'gateways'), dir, { recursive: true });
  const ports = await freePortMap(await quickstartPorts(dir));
  await mapPortsInDir(dir, ports);
  return ports;
}

async function waitReady(proc: Spawned, statusPort: number): Promise<void> {
  await until(async () => (await request(statusPort, '/healthz/ready')).status === 200, {
    timeoutMs: 60_000,
    what: 'readiness',
  }).catch((e: unknown) => {
    throw new Error(`${String(e)}\noutput:\n${proc.output()}`);
  });
}

describe('the installed package', () => {
  it('ships compiled JavaScript, the bin and the examples, and no TypeScript', async () => {
    const version = (
      JSON.parse(await readFile(path.join(clone, 'package.json'), 'utf8')) as { version: string }
    ).version;
    expect(path.basename(pkg.tarball)).toBe(`sluice-${version}.tgz`);
    for (const file of [
      'bin/sluice.js',
      'dist/main.js',
      'dist/cli/serve.js',
      'gateways/20-bookinfo-ingress.yaml',
      // ext_authz over gRPC loads these at run time, relative to dist/.
      'proto/envoy/service/auth/v3/external_auth.proto',
    ])
      expect((await stat(path.join(pkg.installed, file))).isFile(), file).toBe(true);
    const listed = await runCommand('tar', ['-tzf', pkg.tarball]);
    expect(listed.stdout.split('\n').filter((f) => /\.ts$|^package\/(src|test)\//.test(f))).toEqual([]);
  });

  it('sluice --version, validate and routes work as installed', async () => {
    const version = await sluice(['--version']);
    expect(version.stderr).toBe('');
    expect(version.stdout).toMatch(/^sluice \d+\.\d+\.\d+ \(node v26\./);
    expect(version.code).toBe(0);

    const validate = await sluice(['validate', '--config', 'gateways/']);
    expect(validate.stdout).toMatch(/ 0 errors/);
    expect(validate.code).toBe(0);

    const routes = await sluice(['routes', '--config', 'gateways/']);
    expect(routes.stdout).toContain('bookinfo.example.com');
    expect(routes.stdout).toContain('outbound|9080|v2|reviews.bookinfo.svc.cluster.local');
    expect(routes.code).toBe(0);
  });

  it('sluice serve answers a request and stops on SIGTERM', async () => {
    const config = path.join(root, 'serve-config');
    const ports = await gatewaysOnFreePorts(config);
    // Two workers: node:cluster forks the installed bin again, which must work from node_modules.
    const proc = spawnCommand(
      path.join(pkg.bin, 'sluice'),
      [
        'serve',
        '--config',
        config,
        '--certs-dir',
        path.join(root, 'serve-certs'),
        '--workers',
        '2',
        '--drain-delay',
        '0',
        ...controlPortFlags(ports).args,
      ],
      { cwd: root, env: userEnv([pkg.bin]), replaceEnv: true },
    );
    procs.push(proc);
    await waitReady(proc, ports.get(15021)!);
    const reply = await request(ports.get(8080)!, '/healthz', { host: 'bookinfo.example.com' });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('ok\n');
    expect(reply.headers['server']).toBe('istio-envoy');
    expect(await proc.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
  });
});

describe('every command the README shows', () => {
  it('works as shown, in the clone, with `npm start` running', async () => {
    const readme = await readFile(path.join(clone, 'README.md'), 'utf8');
    const commands = readmeCommands(readme);
    // The README shows each kind; an extraction that finds none of one has broken, not passed.
    expect(commands.some((c) => c.text.startsWith('npm run sluice -- '))).toBe(true);
    expect(commands.some((c) => c.text.startsWith('sluice '))).toBe(true);
    expect(commands.some((c) => c.text.startsWith('curl '))).toBe(true);

    const ports = await freePortMap(await quickstartPorts(path.join(clone, 'gateways')));
    await mapPortsInDir(path.join(clone, 'gateways'), ports);
    const env = userEnv([pkg.bin]);
    const quickstart = spawnCommand('npm', ['start'], {
      cwd: clone,
      env: { ...env, ...controlPortFlags(ports).env },
      replaceEnv: true,
      group: true,
    });
    procs.push(quickstart);
    await waitReady(quickstart, ports.get(15021)!);

    for (const c of commands) {
      const where = `README.md:${c.line}: ${c.text}`;
      const why = unrunnable(c);
      const unmapped = unmappedPorts(c.text, ports);
      if (why !== null || unmapped.length > 0) {
        expect.soft(why ?? `port ${unmapped.join(', ')} is not one the quickstart serves`, where).toBeNull();
        continue;
      }
      const r = await runCommand('sh', ['-c', mapPorts(c.text, ports)], {
        cwd: clone,
        env,
        replaceEnv: true,
        timeoutMs: 60_000,
      });
      expect.soft(r.code, `${where}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(c.expectedCode);
    }

    // Ctrl-C's signal, to npm and the quickstart alike: it drains and exits; npm, once its
    // script has exited, re-raises the signal it got.
    const stopped = await quickstart.stop('SIGTERM', 20_000);
    expect([0, 'SIGTERM']).toContain(stopped.code ?? stopped.signal);
    expect(quickstart.output()).toContain('"msg":"drained"');
  }, 240_000);
});

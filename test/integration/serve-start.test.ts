/**
 * `sluice serve` faults at start (README: exit 3, a process fault, one line naming the cause): a
 * Gateway port that cannot be bound, a --config path that cannot be read, and a status, metrics or
 * admin port in use, which names the flag that moves it. The real binary as a child process, single-process and with --workers.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runSluice } from '../support/child-process.ts';
import { serveChildArgs } from '../support/serve-child.ts';
import { freePort, gatewayYaml, makeConfigDir, routeYaml, upstreamsYaml } from '../support/ops-config.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

async function hold(port: number): Promise<void> {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
}

async function config(ports: readonly number[]): Promise<string> {
  const dir = await makeConfigDir({
    'gateway.yaml': gatewayYaml(ports),
    'upstreams.yaml': upstreamsYaml({ a: 1 }),
    'route.yaml': routeYaml(1, 'a'),
  });
  cleanups.push(() => dir.remove());
  return dir.dir;
}

const serveArgs = (dir: string, extra: readonly string[]): string[] =>
  serveChildArgs(dir, ['--drain-delay', '0', ...extra]);

describe('serve at start', () => {
  for (const workers of ['1', '2']) {
    it(`exits 3 naming a Gateway port that cannot be bound (--workers ${workers})`, async () => {
      const free = await freePort();
      const taken = await freePort();
      await hold(taken);
      const r = await runSluice(serveArgs(await config([free, taken]), ['--workers', workers]), {
        timeoutMs: 30_000,
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        new RegExp(
          `^sluice: cannot listen on 127\\.0\\.0\\.1:${taken}: EADDRINUSE \\(Gateway port of istio-system/gw\\)`,
          'm',
        ),
      );
      // One line of its own on stderr, not a stack.
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }, 40_000);
  }

  it('exits 3 when a --config path cannot be read', async () => {
    const dir = await config([await freePort()]);
    const missing = `${dir}/missing.yaml`;
    const r = await runSluice(serveArgs(dir, ['--workers', '1', '--config', missing]), { timeoutMs: 30_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`sluice: cannot read config path ${missing}: no such file or directory`);
  }, 40_000);

  for (const flag of ['--status-port', '--metrics-port', '--admin-port']) {
    it(`exits 3 naming ${flag} when that port is in use`, async () => {
      const taken = await freePort();
      await hold(taken);
      const dir = await config([await freePort()]);
      const r = await runSluice([...serveArgs(dir, ['--workers', '1']), flag, String(taken)], {
        timeoutMs: 30_000,
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`:${taken} .*EADDRINUSE.*${flag} moves it`));
    }, 40_000);
  }
});

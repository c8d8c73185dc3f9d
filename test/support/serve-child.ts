/**
 * `sluice serve` as a child process for signal, drain and worker tests: every port 0 except the
 * Gateway's own, and the ports it chose read from its "sluice started" log line.
 */
import http from 'node:http';
import { spawnSluice, type ChildOptions, type Spawned } from './child-process.ts';
import { until } from './until.ts';

export interface ServeChild {
  readonly proc: Spawned;
  readonly statusPort: number;
  readonly adminPort: number;
  readonly metricsPort: number;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  readiness(): Promise<number>;
  admin<T>(pathName: string, method?: string): Promise<T>;
  metrics(): Promise<string>;
  /** Waits for the process to exit on its own (SIGKILL after timeoutMs); sends no signal. */
  exited(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function get(
  port: number,
  pathName: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `serve` on `config`, every port 0 but the Gateway's, no repository ./certs; later `extraArgs` win. */
export function serveChildArgs(config: string, extraArgs: readonly string[] = []): string[] {
  return [
    'serve',
    '--config',
    config,
    '--bind',
    '127.0.0.1',
    '--status-port',
    '0',
    '--metrics-port',
    '0',
    '--admin-port',
    '0',
    // Never the repository's ./certs: the quickstart writes a credential there.
    '--certs-dir',
    `${config}/.no-certs`,
    ...extraArgs,
  ];
}

export async function startServeChild(
  config: string,
  extraArgs: readonly string[] = [],
  opts: ChildOptions = {},
): Promise<ServeChild> {
  const proc = spawnSluice(serveChildArgs(config, extraArgs), opts);
  const logs = (): Record<string, unknown>[] =>
    proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const started = (await until(() => logs().find((l) => l['msg'] === 'sluice started'), {
    timeoutMs: 20_000,
    what: 'the "sluice started" line',
  }).catch((e: unknown) => {
    void proc.stop('SIGKILL');
    throw new Error(`${String(e)}\noutput:\n${proc.output()}`);
  })) as Record<string, unknown>;
  const statusPort = started['statusPort'] as number;
  const adminPort = started['adminPort'] as number;
  const metricsPort = started['metricsPort'] as number;
  return {
    proc,
    statusPort,
    adminPort,
    metricsPort,
    logs,
    readiness: async () => (await get(statusPort, '/healthz/ready')).status,
    admin: async <T>(pathName: string, method = 'GET') =>
      JSON.parse((await get(adminPort, pathName, method)).body) as T,
    metrics: async () => (await get(metricsPort, '/stats/prometheus')).body,
    exited: async (timeoutMs = 15_000) => {
      const c = proc.child;
      if (c.exitCode !== null || c.signalCode !== null) return { code: c.exitCode, signal: c.signalCode };
      const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
      const r = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        c.once('exit', (code, signal) => resolve({ code, signal })),
      );
      clearTimeout(timer);
      return r;
    },
  };
}

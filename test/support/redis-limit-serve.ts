/**
 * A real `sluice serve` (one worker) whose every request counts against one Global rate limit,
 * 3 a day with failureMode Closed, in the MeshConfig `redis` a test writes: for the tests of the
 * Redis connection itself (password, TLS). Closed answers 500 until Redis counts, so the first
 * 200 is a count in Redis.
 */
import { startEcho } from './upstreams.ts';
import { until } from './until.ts';
import {
  freePort,
  gatewayYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
  type ConfigDir,
} from './ops-config.ts';
import { startServeChild, type ServeChild } from './serve-child.ts';

const POLICY = `apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: limits, namespace: test }
spec:
  targetRefs: [{ kind: VirtualService, name: shop }]
  storage: Global
  failureMode: Closed
  rules:
  - name: total
    algorithm: FixedWindow
    limit: { requests: 3, unit: Day }
`;

/** The MeshConfig document with `redis` as given (a YAML flow mapping). */
export const redisMeshYaml = (redis: string): string => `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: ${redis}
`;

export interface LimitedServe {
  readonly child: ServeChild;
  /** The Gateway's port. */
  readonly port: number;
  /** Its config directory: write `mesh.yaml` (redisMeshYaml) to change `redis`. */
  readonly config: ConfigDir;
  close(): Promise<void>;
}

export async function serveGlobalLimit(
  redis: string,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<LimitedServe> {
  const closers: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const up = await startEcho({ name: 'a' });
    closers.push(() => up.close());
    const port = await freePort();
    const config = await makeConfigDir({
      'upstreams.yaml': upstreamsYaml({ a: up.port }),
      'route.yaml': routeYaml(1, 'a'),
      'policy.yaml': POLICY,
      'gateway.yaml': gatewayYaml([port]),
      'mesh.yaml': redisMeshYaml(redis),
    });
    closers.push(() => config.remove());
    const child = await startServeChild(config.dir, ['--workers', '1'], { env: opts.env ?? {} });
    closers.push(() => child.proc.stop('SIGKILL'));
    await until(async () => (await child.readiness()) === 200, { timeoutMs: 30_000, what: 'ready' });
    return { child, port, config, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The statuses of `n` requests in turn. */
export async function statuses(port: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await request(port, '/')).status);
  return out;
}

/** Until a request is admitted: with failureMode Closed, until Redis counts. */
export async function counting(port: number, timeoutMs = 20_000): Promise<void> {
  await until(async () => (await request(port, '/')).status === 200, {
    timeoutMs,
    intervalMs: 100,
    what: 'counting in Redis',
  });
}

/**
 * Load shaped like fortio's (the tool Istio's circuit-breaking task uses): N clients, each on its
 * own keep-alive connection, each sending its requests one after another as fast as answers come.
 */
import http from 'node:http';

export interface LoadResult {
  readonly total: number;
  /** Answers by status. */
  readonly statuses: ReadonlyMap<number, number>;
  /** 503 answers that carried x-envoy-overloaded: true. */
  readonly overloaded: number;
  /** Failed requests (connection errors), by message. */
  readonly errors: readonly string[];
  readonly elapsedMs: number;
}

export function count(r: LoadResult, status: number): number {
  return r.statuses.get(status) ?? 0;
}

export async function runClients(
  port: number,
  clients: number,
  perClient: number,
  opts: {
    host?: string;
    path?: string;
    headers?: (client: number, i: number) => Record<string, string>;
  } = {},
): Promise<LoadResult> {
  const statuses = new Map<number, number>();
  const errors: string[] = [];
  let overloaded = 0;
  const started = performance.now();
  const one = (agent: http.Agent, client: number, i: number): Promise<void> =>
    new Promise((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: opts.path ?? '/',
          agent,
          headers: { host: opts.host ?? 'example.com', ...opts.headers?.(client, i) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const s = res.statusCode ?? 0;
            statuses.set(s, (statuses.get(s) ?? 0) + 1);
            if (s === 503 && res.headers['x-envoy-overloaded'] === 'true') overloaded += 1;
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        errors.push(err.message);
        resolve();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; i < perClient; i++) await one(agent, client, i);
      } finally {
        agent.destroy();
      }
    }),
  );
  return { total: clients * perClient, statuses, overloaded, errors, elapsedMs: performance.now() - started };
}

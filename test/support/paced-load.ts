/**
 * A paced HTTP load for "not one request fails" tests: issues requests at a steady rate (not as
 * fast as possible, so the machine keeps time for reloads and signals), and counts every response.
 * A request fails if it errors, times out, or `check` returns a reason.
 */
import http from 'node:http';

export interface LoadResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface PacedLoadOptions {
  /** Port to send to; read per request. */
  readonly port: number | (() => number);
  readonly path?: string;
  readonly host?: string;
  readonly ratePerSec: number;
  readonly headers?: Record<string, string>;
  /** Keep-alive agent (default: one without a socket cap, so no request waits in the client) or `false` for a fresh connection per request. */
  readonly agent?: http.Agent | false;
  /** Returns why a response is wrong, or null when it is right. Default: status 200. */
  readonly check?: (res: LoadResponse) => string | null;
  readonly timeoutMs?: number;
}

export interface Failure {
  readonly atMs: number;
  readonly reason: string;
}

export interface LoadResult {
  readonly sent: number;
  readonly ok: number;
  readonly failures: readonly Failure[];
  readonly durationMs: number;
}

export interface PacedLoad {
  inFlight(): number;
  /** Completed so far (ok + failed). */
  done(): number;
  /** Stops issuing, waits for what is in flight (bounded), returns the counts. */
  stop(): Promise<LoadResult>;
}

const defaultCheck = (res: LoadResponse): string | null =>
  res.status === 200 ? null : `status ${res.status}: ${res.body.slice(0, 200)}`;

export function startPacedLoad(opts: PacedLoadOptions): PacedLoad {
  const portOf = typeof opts.port === 'function' ? opts.port : () => opts.port as number;
  const check = opts.check ?? defaultCheck;
  const agent = opts.agent === undefined ? new http.Agent({ keepAlive: true }) : opts.agent;
  const ownAgent = opts.agent === undefined;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const startedAt = Date.now();
  let sent = 0;
  let ok = 0;
  let inFlight = 0;
  const failures: Failure[] = [];
  let idle: (() => void) | null = null;

  const finish = (reason: string | null): void => {
    inFlight--;
    if (reason === null) ok++;
    else failures.push({ atMs: Date.now() - startedAt, reason });
    if (inFlight === 0) idle?.();
  };

  const one = (): void => {
    sent++;
    inFlight++;
    let settled = false;
    const settle = (reason: string | null): void => {
      if (settled) return;
      settled = true;
      finish(reason);
    };
    const req = http.request(
      {
        host: '127.0.0.1',
        port: portOf(),
        path: opts.path ?? '/',
        agent,
        headers: { host: opts.host ?? 'example.com', ...opts.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => settle(check({ status: res.statusCode ?? 0, headers: res.headers, body })));
        res.on('error', (err) => settle(`response error: ${err.message}`));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      settle(`request error: ${err.code ?? ''} ${err.message}`),
    );
    req.end();
  };

  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) * opts.ratePerSec) / 1000) - sent;
    // After a stall (a busy event loop) catch up only a little, so a pause does not become a burst.
    for (let i = 0; i < Math.min(due, Math.ceil(opts.ratePerSec / 20)); i++) one();
    if (due > opts.ratePerSec / 20) sent += due - Math.ceil(opts.ratePerSec / 20);
  }, 5);

  return {
    inFlight: () => inFlight,
    done: () => ok + failures.length,
    async stop() {
      clearInterval(timer);
      // Skipped catch-up slots were never sent: count only what was.
      const issued = ok + failures.length + inFlight;
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, timeoutMs + 1000);
          idle = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      if (ownAgent && agent) agent.destroy();
      return { sent: issued, ok, failures, durationMs: Date.now() - startedAt };
    },
  };
}

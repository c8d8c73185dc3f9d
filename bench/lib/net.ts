/** Loopback helpers: free ports, one checked request, polling until a server answers. */
import { createServer } from 'node:net';
import { request } from 'node:http';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Distinct free ports (closing a probe socket and asking again can hand back the same port). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export interface Probe {
  readonly status: number;
  readonly bodyBytes: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export function probe(
  url: string,
  headers: Readonly<Record<string, string>>,
  timeoutMs = 2000,
): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { ...headers }, agent: false, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bodyBytes: bytes, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls until the URL answers 200 with the expected body size, or the deadline passes; the
 * error names the last answer. `alive` stops early when the server process has exited.
 */
export async function until200(
  url: string,
  headers: Readonly<Record<string, string>>,
  opts: { deadlineMs: number; bodyBytes: number; alive?: () => string | null },
): Promise<Probe> {
  const end = Date.now() + opts.deadlineMs;
  let last = 'no answer yet';
  for (;;) {
    const dead = opts.alive?.();
    if (dead) throw new Error(`process exited (${dead}) before ${url} answered; last: ${last}`);
    try {
      const p = await probe(url, headers);
      if (p.status === 200 && p.bodyBytes === opts.bodyBytes) return p;
      last = `status ${p.status}, ${p.bodyBytes} body bytes`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > end)
      throw new Error(
        `${url} did not answer 200 with ${opts.bodyBytes} bytes in ${opts.deadlineMs} ms; last: ${last}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

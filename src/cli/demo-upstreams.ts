/**
 * Demo upstreams for the quickstart: small HTTP services on loopback standing in for the
 * bookinfo workloads, so `npm start` answers real requests with no other service running.
 * Each answers JSON naming itself and echoing what it received, which makes routing visible.
 * They are a demo: started and stopped by the quickstart command, never by `serve`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoService {
  readonly name: string;
  readonly version: string;
  readonly port: number;
}

/** Ports match the ServiceEntry endpoints in gateways/10-demo-services.yaml. */
export const DEMO_SERVICES: readonly DemoService[] = [
  { name: 'productpage', version: 'v1', port: 19081 },
  { name: 'details', version: 'v1', port: 19082 },
  { name: 'reviews', version: 'v1', port: 19083 },
  { name: 'reviews', version: 'v2', port: 19084 },
  { name: 'reviews', version: 'v3', port: 19085 },
  { name: 'ratings', version: 'v1', port: 19086 },
  { name: 'httpbin', version: 'v1', port: 19087 },
];

const SHOWN_HEADERS = [
  'host',
  'end-user',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-request-id',
  'x-envoy-original-path',
  'user-agent',
];

function answer(svc: DemoService, req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers: Record<string, string> = {};
  for (const h of SHOWN_HEADERS) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const body =
    JSON.stringify({ service: svc.name, version: svc.version, method: req.method, path: req.url, headers }) +
    '\n';
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export interface RunningDemo {
  readonly services: readonly (DemoService & { readonly boundPort: number })[];
  close(): Promise<void>;
}

export async function startDemoUpstreams(
  opts: { host?: string; services?: readonly DemoService[] } = {},
): Promise<RunningDemo> {
  const host = opts.host ?? '127.0.0.1';
  const servers: http.Server[] = [];
  const services: (DemoService & { boundPort: number })[] = [];
  try {
    for (const svc of opts.services ?? DEMO_SERVICES) {
      const server = http.createServer((req, res) => {
        // Drain the request body before answering so keep-alive connections stay usable.
        req.resume();
        req.on('end', () => answer(svc, req, res));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(svc.port, host, () => resolve());
      });
      servers.push(server);
      services.push({ ...svc, boundPort: (server.address() as AddressInfo).port });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    throw err;
  }
  return {
    services,
    close: async () => {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

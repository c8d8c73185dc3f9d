/**
 * Demo upstreams for the quickstart: small HTTP services on loopback standing in for the
 * bookinfo workloads, so `npm start` answers real requests with no other service running.
 * Each answers JSON naming itself and echoing what it received, which makes routing visible.
 * They are a demo: started and stopped by the quickstart command, never by `serve`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource } from '../model/resource.ts';
import type { ServiceEntrySpec } from '../model/networking.ts';

export interface DemoService {
  readonly name: string;
  readonly version: string;
  readonly port: number;
}

/** The address demo upstreams listen on; only endpoints at it get one. */
const DEMO_HOST = '127.0.0.1';

/**
 * One demo service per loopback port that a STATIC ServiceEntry of the config sends traffic to
 * (gateways/10-demo-services.yaml), named by the endpoint's `app` and `version` labels as a pod
 * would be. The config is the one place those ports are written.
 */
export function demoServicesOf(resources: readonly Resource[]): DemoService[] {
  const byPort = new Map<number, DemoService>();
  for (const r of resources) {
    if (r.kind !== 'ServiceEntry') continue;
    const spec = r.spec as ServiceEntrySpec;
    if (spec.resolution !== 'STATIC') continue;
    for (const ep of spec.endpoints ?? []) {
      if (ep.address !== DEMO_HOST) continue;
      for (const port of Object.values(ep.ports ?? {})) {
        if (byPort.has(port)) continue;
        byPort.set(port, {
          name: ep.labels?.['app'] ?? r.name,
          version: ep.labels?.['version'] ?? 'v1',
          port,
        });
      }
    }
  }
  return [...byPort.values()];
}

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

export async function startDemoUpstreams(demoServices: readonly DemoService[]): Promise<RunningDemo> {
  const servers: http.Server[] = [];
  const services: (DemoService & { boundPort: number })[] = [];
  try {
    for (const svc of demoServices) {
      const server = http.createServer((req, res) => {
        // Drain the request body before answering so keep-alive connections stay usable.
        req.resume();
        req.on('end', () => answer(svc, req, res));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(svc.port, DEMO_HOST, () => resolve());
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

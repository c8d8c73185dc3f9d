/**
 * Config directories for the operations tests (reload, drain, workers, admin): a Gateway on real
 * ports, ServiceEntries for loopback upstreams, and a VirtualService whose generation shows in a
 * response header, written into a temp dir the way users and ConfigMaps write them.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

export { freePort } from './free-port.ts';

export function gatewayYaml(ports: readonly number[], name = 'gw'): string {
  const servers = ports
    .map((p) => `    - port: { number: ${p}, name: http-${p}, protocol: HTTP }\n      hosts: ["*/*"]`)
    .join('\n');
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
${servers}
`;
}

/** ServiceEntries `<name>.test.svc.cluster.local` → 127.0.0.1:<port>. */
export function upstreamsYaml(upstreams: Record<string, number>): string {
  return Object.entries(upstreams)
    .map(
      ([name, port]) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: test }
spec:
  hosts: [${name}.test.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
`,
    )
    .join('---\n');
}

/**
 * Routes every request for example.com to `upstream`, setting `x-gen: <gen>` on the response, so a
 * test can check each response came whole from one config (the header and the upstream agree).
 */
export function routeYaml(gen: number, upstream: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: test }
spec:
  hosts: [example.com]
  gateways: [istio-system/gw]
  http:
${extra}    - route:
        - destination: { host: ${upstream}.test.svc.cluster.local, port: { number: 80 } }
      headers:
        response:
          set: { x-gen: "${gen}" }
`;
}

/** A VirtualService the validator refuses (a negative weight). */
export function invalidRouteYaml(): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: test }
spec:
  hosts: [example.com]
  gateways: [istio-system/gw]
  http:
    - route:
        - destination: { host: a.test.svc.cluster.local }
          weight: -5
        - destination: { host: b.test.svc.cluster.local }
          weight: 105
`;
}

export interface ConfigDir {
  readonly dir: string;
  /** Writes the file as editors do: a temp file renamed over the old one. */
  write(name: string, text: string): Promise<void>;
  remove(): Promise<void>;
}

export async function makeConfigDir(files: Record<string, string>): Promise<ConfigDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-ops-'));
  const write = async (name: string, text: string): Promise<void> => {
    const tmp = path.join(dir, `.${name}.tmp-${process.pid}`);
    await writeFile(tmp, text);
    await rename(tmp, path.join(dir, name));
  };
  for (const [name, text] of Object.entries(files)) await write(name, text);
  return { dir, write, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request on a fresh connection (node:http, so the Host header can be set). */
export function request(
  port: number,
  pathName = '/',
  opts: { host?: string; method?: string; headers?: Record<string, string>; agent?: http.Agent | false } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathName,
        method: opts.method ?? 'GET',
        agent: opts.agent ?? false,
        headers: { host: opts.host ?? 'example.com', ...opts.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

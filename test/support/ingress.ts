/**
 * Ingress tests: Services with EndpointSlices pointing at loopback upstreams, and a gateway
 * built from YAML through the same Ingress translation the providers run.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { request } from 'undici';
import { loadResources } from '../../src/config/index.ts';
import { closeAllPools } from '../../src/upstream/pools.ts';
import { startEcho, type EchoBody, type Upstream } from './upstreams.ts';
import { withIngresses, type IngressOptions } from '../../src/config/ingress/index.ts';
import { compile } from '../../src/compile/index.ts';
import { formatDiagnostic, type Diagnostic } from '../../src/errors/diagnostic.ts';
import { startGatewayWithSnapshot, TEST_IDENTITY, type TestGateway } from './gateway.ts';

export const INGRESS_TEST_OPTIONS: IngressOptions = {
  ingressClass: 'sluice',
  httpPort: 80,
  httpsPort: 443,
  gatewayNamespace: TEST_IDENTITY.namespace,
};

/** A Service `name` (port 80 named http, or `port`) whose one endpoint is 127.0.0.1:`upstreamPort`. */
export function serviceYaml(
  name: string,
  upstreamPort: number,
  opts: { namespace?: string; port?: number; portName?: string } = {},
): string {
  const ns = opts.namespace ?? 'default';
  const portName = opts.portName ?? 'http';
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  ports: [{name: ${portName}, port: ${opts.port ?? 80}, targetPort: ${upstreamPort}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
ports: [{name: ${portName}, port: ${upstreamPort}}]
`;
}

/** YAML (Ingresses and the rest) → load → Ingress translation → compile. */
export function compileIngressYaml(yaml: string, opts: Partial<IngressOptions> = {}) {
  const loaded = loadResources([{ file: 'test.yaml', text: yaml }], { defaultNamespace: 'default' });
  const t = withIngresses(loaded.resources, { ...INGRESS_TEST_OPTIONS, ...opts });
  const compiled = compile(t.resources, { ...TEST_IDENTITY, nowMs: Date.now() });
  const diagnostics: Diagnostic[] = [...loaded.diagnostics, ...t.diagnostics, ...compiled.diagnostics];
  return { snapshot: compiled.snapshot, diagnostics, resources: t.resources };
}

export async function startIngressGateway(
  yaml: string,
  opts: Partial<IngressOptions> = {},
): Promise<TestGateway> {
  const { snapshot, diagnostics } = compileIngressYaml(yaml, opts);
  const errors = diagnostics.filter((d) => d.level === 'error');
  if (errors.length > 0) throw new Error('config has errors:\n' + errors.map(formatDiagnostic).join('\n'));
  return startGatewayWithSnapshot(snapshot);
}

export interface IngressDoc {
  readonly name: string;
  readonly namespace?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** ingressClassName; null = none. Default `sluice`. */
  readonly className?: string | null;
  readonly host?: string;
  /** Path lines (see `path`). */
  readonly paths?: readonly string[];
  /** More `spec` fields, indented two spaces (`  tls: …\n`). */
  readonly spec?: string;
}

/** One `paths` entry to Service `service` port `port` (a number or a port name). */
export function path(p: string, type: string, service: string, port: number | string = 80): string {
  const ref = typeof port === 'number' ? `number: ${port}` : `name: ${port}`;
  return `{path: '${p}', pathType: ${type}, backend: {service: {name: ${service}, port: {${ref}}}}}`;
}

export function ingressYaml(d: IngressDoc): string {
  const ann = Object.entries(d.annotations ?? {})
    .map(
      ([k, v]) => `\n    ${k.includes('/') ? k : `nginx.ingress.kubernetes.io/${k}`}: ${JSON.stringify(v)}`,
    )
    .join(',');
  const cls = d.className === null ? '' : `  ingressClassName: ${d.className ?? 'sluice'}\n`;
  const rules =
    d.paths === undefined
      ? ''
      : `  rules:\n  - host: ${d.host ?? 'demo.example.com'}\n    http:\n      paths:\n${d.paths.map((p) => `      - ${p}\n`).join('')}`;
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${d.name}
  namespace: ${d.namespace ?? 'default'}
  annotations: {${ann}}
spec:
${cls}${d.spec ?? ''}${rules}`;
}

export interface IngressAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The echo upstream's account of the request; null when something else answered. */
  readonly echo: EchoBody | null;
  readonly text: string;
}

/** One request to the gateway's Ingress HTTP port (80 unless `port`), Host demo.example.com by default. */
export async function sendIngress(
  gw: TestGateway,
  p: string,
  opts: {
    host?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    port?: number;
  } = {},
): Promise<IngressAnswer> {
  const res = await request(gw.url(p, opts.port ?? 80), {
    method: (opts.method ?? 'GET') as 'GET',
    headers: { host: opts.host ?? 'demo.example.com', ...opts.headers },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.body.text();
  const echo = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as EchoBody) : null;
  return { status: res.statusCode, headers: res.headers, echo, text };
}

/**
 * Echo upstreams named `names`, each behind a Service of that name, for the file's tests; `start`
 * serves Ingress YAML with those Services and closes the gateway after the test.
 */
export function useIngressUpstreams(names: readonly string[]): {
  readonly up: Map<string, Upstream>;
  start(yaml: string, opts?: Partial<IngressOptions>): Promise<TestGateway>;
} {
  const up = new Map<string, Upstream>();
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    for (const n of names) up.set(n, await startEcho({ name: n }));
  });
  afterAll(async () => {
    for (const u of up.values()) await u.close();
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
    await closeAllPools(true);
    for (const u of up.values()) u.seen.length = 0;
  });
  return {
    up,
    async start(yaml, opts = {}) {
      const services = [...up.values()].map((u) => serviceYaml(u.name, u.port));
      const gw = await startIngressGateway([yaml, ...services].join('---\n'), opts);
      cleanups.push(() => gw.close());
      return gw;
    },
  };
}

/**
 * Config-scale benchmark configs (issue 9 item 6):
 *
 * - **scale**: 10,000 HTTP routes over 2,000 hosts in 1,000 VirtualServices, one Gateway, and for
 *   each VirtualService a STATIC ServiceEntry (two endpoints labelled v1 and v2) with a
 *   DestinationRule defining subsets v1 and v2. Each VirtualService has 10 rules mixing exact,
 *   prefix and regex URI matches, header exact/prefix/regex matches, a method match, weighted
 *   routes to subsets, a rewrite and a catch-all. Every endpoint is the bench upstream, so any
 *   route answers 200.
 * - **stress**: 65,000 documents (~20 MB) in one file: a third each ServiceEntries,
 *   DestinationRules and one-host VirtualServices with two rules, all bound to one Gateway.
 *
 * `withProbe(config, n)` is the same config with one host added to the benchmark VirtualService
 * (`probe-<n>.scale.test`: 404 before the change is served, 200 after), so a poller sees exactly
 * when the change to one VirtualService reaches the data plane.
 *
 *   node bench/configs/scale.ts OUTDIR [--gateway-port 18080] [--upstream-port 18081]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { writeConfig, type BenchRequest } from './generate.ts';

export type ScaleShape = 'scale' | 'stress';

export interface ScaleOptions {
  readonly gatewayPort: number;
  readonly upstreamPort: number;
}

export interface ScaleConfig {
  readonly shape: ScaleShape;
  readonly fileName: string;
  /** Documents, rendered one by one (so a variant re-renders only the one it changes). */
  readonly docs: readonly string[];
  /** Index in `docs` of the benchmark VirtualService. */
  readonly benchDoc: number;
  readonly benchVirtualService: Readonly<Record<string, unknown>>;
  readonly request: BenchRequest;
  readonly size: {
    readonly documents: number;
    readonly virtualServices: number;
    readonly httpRoutes: number;
    readonly hosts: number;
    readonly destinationRules: number;
    readonly serviceEntries: number;
  };
}

const NS = 'scale';
const GATEWAY = 'scale-gateway';
const SCALE_VS = 1000;
const HOSTS_PER_VS = 2;
const RULES_PER_VS = 10;
const STRESS_DOCS = 65_000;
/** The benchmark request goes to the VirtualService in the middle of the file. */
const BENCH_VS = 500;

const pad = (i: number, n = 4): string => String(i).padStart(n, '0');
const hostOf = (i: number): string => `h${pad(i, 5)}.scale.test`;
const backendOf = (i: number): string => `be-${pad(i)}.scale.internal`;

function gatewayDoc(port: number): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: GATEWAY, namespace: NS },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: port, name: 'http', protocol: 'HTTP' }, hosts: ['*.scale.test'] }],
    },
  };
}

function serviceEntryDoc(i: number, upstreamPort: number): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: `be-${pad(i)}`, namespace: NS },
    spec: {
      hosts: [backendOf(i)],
      location: 'MESH_EXTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: upstreamPort }],
      endpoints: [
        { address: '127.0.0.1', labels: { version: 'v1' } },
        { address: '127.0.0.2', labels: { version: 'v2' } },
      ],
    },
  };
}

function destinationRuleDoc(i: number): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: `be-${pad(i)}`, namespace: NS },
    spec: {
      host: backendOf(i),
      trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        {
          name: 'v2',
          labels: { version: 'v2' },
          trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
        },
      ],
    },
  };
}

const dest = (i: number, subset: string, weight?: number): Record<string, unknown> => ({
  destination: { host: backendOf(i), subset, port: { number: 80 } },
  ...(weight !== undefined ? { weight } : {}),
});

/**
 * Ten rules of one VirtualService. The benchmark request (`GET /scale/item/42`, `x-tenant: bench`)
 * fails the first nine (several only on their last condition) and matches the catch-all, so
 * each request runs through all of them, regexes included. The catch-all routes to v1 only: the
 * v2 endpoint (127.0.0.2) is reachable on loopback too, but keeping the bench path on one
 * endpoint makes every request alike.
 */
function scaleRules(i: number): Record<string, unknown>[] {
  const p = `/svc-${pad(i)}`;
  return [
    { name: 'exact', match: [{ uri: { exact: `${p}/health` } }], route: [dest(i, 'v1')] },
    {
      name: 'api-split',
      match: [{ uri: { prefix: `${p}/api/` } }],
      route: [dest(i, 'v1', 90), dest(i, 'v2', 10)],
    },
    { name: 'items', match: [{ uri: { regex: `${p}/items/[0-9]+` } }], route: [dest(i, 'v2')] },
    {
      name: 'tenant',
      match: [{ headers: { 'x-tenant': { exact: `tenant-${i}` } } }],
      route: [dest(i, 'v1')],
    },
    {
      name: 'canary',
      match: [{ uri: { prefix: '/scale/' }, headers: { 'x-version': { regex: 'v[0-9]+\\.[0-9]+-canary' } } }],
      route: [dest(i, 'v2')],
    },
    {
      name: 'writes',
      match: [{ uri: { prefix: '/scale/' }, method: { exact: 'POST' } }],
      route: [dest(i, 'v1', 50), dest(i, 'v2', 50)],
    },
    {
      name: 'team',
      match: [{ uri: { regex: '/scale/item/[0-9]+' }, headers: { 'x-tenant': { prefix: 'team-' } } }],
      route: [dest(i, 'v2')],
      headers: { response: { set: { 'x-served-by': `svc-${i}` } } },
    },
    {
      name: 'legacy',
      match: [{ uri: { prefix: `${p}/v1/` } }, { uri: { prefix: `${p}/old/` } }],
      rewrite: { uri: `${p}/v2/` },
      route: [dest(i, 'v1')],
    },
    {
      name: 'orders',
      match: [{ uri: { regex: '/scale/(cart|orders)/[0-9]+' }, ignoreUriCase: true }],
      route: [dest(i, 'v1', 34), dest(i, 'v2', 66)],
      timeout: '5s',
    },
    { name: 'default', match: [{ uri: { prefix: '/' } }], route: [dest(i, 'v1')] },
  ];
}

function virtualServiceDoc(name: string, hosts: string[], http: unknown[]): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: NS },
    spec: { hosts, gateways: [GATEWAY], http },
  };
}

const render = (doc: unknown): string => stringify(doc, { lineWidth: 0 });

export function generateScaleConfig(opts: ScaleOptions): ScaleConfig {
  const docs: string[] = [render(gatewayDoc(opts.gatewayPort))];
  let benchDoc = -1;
  let benchVirtualService: Record<string, unknown> = {};
  for (let i = 0; i < SCALE_VS; i++) {
    const hosts = Array.from({ length: HOSTS_PER_VS }, (_, k) => hostOf(i * HOSTS_PER_VS + k));
    const vs = virtualServiceDoc(`svc-${pad(i)}`, hosts, scaleRules(i));
    if (i === BENCH_VS) {
      benchDoc = docs.length + 2;
      benchVirtualService = vs;
    }
    docs.push(render(serviceEntryDoc(i, opts.upstreamPort)), render(destinationRuleDoc(i)), render(vs));
  }
  return {
    shape: 'scale',
    fileName: 'scale.yaml',
    docs,
    benchDoc,
    benchVirtualService,
    request: {
      host: hostOf(BENCH_VS * HOSTS_PER_VS),
      path: '/scale/item/42',
      headers: { 'x-tenant': 'bench' },
    },
    size: {
      documents: docs.length,
      virtualServices: SCALE_VS,
      httpRoutes: SCALE_VS * RULES_PER_VS,
      hosts: SCALE_VS * HOSTS_PER_VS,
      destinationRules: SCALE_VS,
      serviceEntries: SCALE_VS,
    },
  };
}

/**
 * 65,000 documents (~20 MB, ~310 bytes each, as the file issue 9 measured): (ServiceEntry,
 * DestinationRule, VirtualService) triples after the Gateway, smaller than the scale config's.
 */
export function generateStressConfig(opts: ScaleOptions): ScaleConfig {
  const docs: string[] = [render(gatewayDoc(opts.gatewayPort))];
  const triples = Math.floor((STRESS_DOCS - 1) / 3);
  const bench = Math.floor(triples / 2);
  let benchDoc = -1;
  let benchVirtualService: Record<string, unknown> = {};
  for (let i = 0; i < triples; i++) {
    const host = backendOf(i);
    const se = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: `be-${pad(i, 5)}`, namespace: NS },
      spec: {
        hosts: [host],
        resolution: 'STATIC',
        ports: [{ number: opts.upstreamPort, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', labels: { v: '1' } }],
      },
    };
    const dr = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `be-${pad(i, 5)}`, namespace: NS },
      spec: { host, subsets: [{ name: 'v1', labels: { v: '1' } }] },
    };
    // A fresh object per use: a shared one renders as a YAML anchor and alias.
    const to = (): unknown => ({ host, subset: 'v1' });
    const vs = virtualServiceDoc(
      `svc-${pad(i, 5)}`,
      [hostOf(i)],
      [
        { match: [{ uri: { prefix: `/api-${i}/` } }], route: [{ destination: to() }] },
        { route: [{ destination: to() }] },
      ],
    );
    if (i === bench) {
      benchDoc = docs.length + 2;
      benchVirtualService = vs;
    }
    docs.push(render(se), render(dr), render(vs));
  }
  // Pad to exactly STRESS_DOCS (one more ServiceEntry).
  for (let i = triples; docs.length < STRESS_DOCS; i++)
    docs.push(render(serviceEntryDoc(i, opts.upstreamPort)));
  return {
    shape: 'stress',
    fileName: 'stress.yaml',
    docs,
    benchDoc,
    benchVirtualService,
    request: { host: hostOf(bench), path: '/scale/item/42', headers: { 'x-tenant': 'bench' } },
    size: {
      documents: docs.length,
      virtualServices: triples,
      httpRoutes: triples * 2,
      hosts: triples,
      destinationRules: triples,
      serviceEntries: docs.length - 1 - 2 * triples,
    },
  };
}

export function renderConfig(config: ScaleConfig): string {
  return config.docs.join('---\n');
}

/**
 * The config with host `probeHost(n)` added to the benchmark VirtualService: before the change is
 * served that host matches the Gateway but no VirtualService (404), after it the VirtualService's
 * rules (200).
 */
export function withProbe(config: ScaleConfig, n: number): string {
  const vs = config.benchVirtualService as { spec: { hosts: string[] } };
  const changed = { ...vs, spec: { ...vs.spec, hosts: [...vs.spec.hosts, probeHost(n)] } };
  const docs = [...config.docs];
  docs[config.benchDoc] = render(changed);
  return docs.join('---\n');
}

export const probeHost = (n: number): string => `probe-${n}.scale.test`;

/** Writes the config into DIR/<shape>/<file> and returns the directory to pass to --config. */
export function writeScaleConfig(dir: string, config: ScaleConfig, text = renderConfig(config)): string {
  return writeConfig(dir, { shape: config.shape, fileName: config.fileName, text });
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'gateway-port': { type: 'string', default: '18080' },
      'upstream-port': { type: 'string', default: '18081' },
    },
  });
  const dir = positionals[0];
  if (!dir) {
    process.stderr.write(
      'usage: node bench/configs/scale.ts OUTDIR [--gateway-port N] [--upstream-port N]\n',
    );
    process.exit(2);
  }
  const opts = { gatewayPort: Number(values['gateway-port']), upstreamPort: Number(values['upstream-port']) };
  for (const config of [generateScaleConfig(opts), generateStressConfig(opts)]) {
    const text = renderConfig(config);
    const out = writeScaleConfig(dir, config, text);
    process.stdout.write(
      `${join(out, config.fileName)}: ${(Buffer.byteLength(text) / 1e6).toFixed(1)} MB ${JSON.stringify(config.size)}\n`,
    );
  }
}

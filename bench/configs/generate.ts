/**
 * Benchmark configs for sluice: a one-rule config and a 100-rule config over 50 hosts, both
 * routing the benchmark request to the bench upstream through a STATIC ServiceEntry.
 *
 * In the 100-rule config the benchmark host has 12 rules and the request matches the last one:
 * the 11 before it are header exact/regex, uri prefix/exact/regex, method and combined matches
 * that each fail for the request (several only on their last condition), so every request runs
 * through them, regexes included. Those rules route to a port where nothing listens, so a
 * request that matched the wrong rule fails loudly (503) instead of being counted.
 * The one-rule config has the same host and the same target rule, so the two differ only in
 * the size of the table.
 *
 *   node bench/configs/generate.ts OUTDIR [--gateway-port 18080] [--upstream-port 18081] [--decoy-port 9]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';

export type ConfigShape = 'one-rule' | 'many-rules';

export interface BenchRequest {
  readonly host: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface GeneratedConfig {
  readonly shape: ConfigShape;
  readonly fileName: string;
  readonly text: string;
  readonly request: BenchRequest;
  readonly size: {
    readonly bytes: number;
    readonly resources: number;
    readonly virtualServices: number;
    readonly httpRules: number;
    readonly hosts: number;
    /** Position (1-based) of the matching rule among its host's rules. */
    readonly matchedRule: number;
    readonly rulesOnHost: number;
  };
}

export interface GenerateOptions {
  readonly gatewayPort: number;
  readonly upstreamPort: number;
  /** A loopback port nothing listens on; the decoy rules route there. */
  readonly decoyPort: number;
}

const NS = 'bench';
const GATEWAY = 'bench-gateway';
const UPSTREAM_HOST = 'upstream.bench.internal';
const DECOY_HOST = 'decoy.bench.internal';
const HOSTS = 50;
const TOTAL_RULES = 100;
const BENCH_HOST_INDEX = 37;
const BENCH_HOST_RULES = 12;

export const BENCH_REQUEST: BenchRequest = {
  host: hostName(BENCH_HOST_INDEX),
  path: '/bench/item/42',
  headers: { 'x-tenant': 'bench' },
};

function hostName(i: number): string {
  return `svc-${String(i).padStart(2, '0')}.bench.test`;
}

function to(host: string, port: number): unknown[] {
  return [{ destination: { host, port: { number: port } } }];
}

/** The rule the benchmark request matches, identical in both configs. */
function targetRule(opts: GenerateOptions): unknown {
  return {
    name: 'bench-target',
    match: [{ uri: { prefix: '/bench/' } }],
    route: to(UPSTREAM_HOST, opts.upstreamPort),
  };
}

/** Rules that never match the benchmark request (GET /bench/item/42, x-tenant: bench). */
function decoyMatch(k: number): unknown[] {
  switch (k % 8) {
    case 0:
      return [{ headers: { 'x-tenant': { exact: `tenant-${k}` } } }];
    case 1:
      return [{ uri: { prefix: `/v1/orders-${k}/` } }];
    case 2:
      return [{ uri: { regex: `/api/v[0-9]+/items-${k}/[a-z0-9-]+` } }];
    case 3:
      return [{ uri: { prefix: '/bench/' }, headers: { 'x-tenant': { regex: `tenant-(${k}|${k + 1})` } } }];
    case 4:
      return [{ uri: { prefix: '/bench/' }, headers: { 'x-canary': { exact: 'true' } } }];
    case 5:
      return [{ uri: { prefix: '/bench/' }, method: { exact: 'POST' } }];
    case 6:
      return [
        { uri: { exact: `/bench/item/${1000 + k}` } },
        { uri: { regex: `/bench/(cart|orders)/[0-9]+` } },
      ];
    default:
      return [{ uri: { regex: `/bench/item/[0-9]+` }, headers: { 'x-tenant': { prefix: 'team-' } } }];
  }
}

function gatewayDoc(opts: GenerateOptions, hosts: string[]): unknown {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: GATEWAY, namespace: NS },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: opts.gatewayPort, name: 'http', protocol: 'HTTP' }, hosts }],
    },
  };
}

export function serviceEntryDoc(name: string, host: string, port: number): unknown {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: NS },
    spec: {
      hosts: [host],
      location: 'MESH_EXTERNAL',
      resolution: 'STATIC',
      ports: [{ number: port, name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address: '127.0.0.1' }],
    },
  };
}

function virtualServiceDoc(hostIndex: number, http: unknown[]): unknown {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: `svc-${String(hostIndex).padStart(2, '0')}`, namespace: NS },
    spec: { hosts: [hostName(hostIndex)], gateways: [GATEWAY], http },
  };
}

/** How many rules each of the 50 hosts gets: the bench host 12, the rest share 88 (1 or 2 each). */
function rulesPerHost(): number[] {
  const counts = new Array<number>(HOSTS).fill(1);
  counts[BENCH_HOST_INDEX] = BENCH_HOST_RULES;
  let left = TOTAL_RULES - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % HOSTS) {
    if (i === BENCH_HOST_INDEX || (counts[i] as number) >= 2) continue;
    counts[i] = 2;
    left--;
  }
  return counts;
}

function otherHostRule(hostIndex: number, j: number, opts: GenerateOptions): unknown {
  const kinds = [
    { uri: { prefix: `/app-${hostIndex}/` } },
    { uri: { regex: `/v[12]/svc-${hostIndex}/.*` } },
    { headers: { 'x-version': { exact: `v${j + 1}` } } },
  ];
  const match = kinds[(hostIndex + j) % kinds.length];
  return { name: `r${j}`, match: [match], route: to(UPSTREAM_HOST, opts.upstreamPort) };
}

export function render(docs: unknown[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

export function generateConfig(shape: ConfigShape, opts: GenerateOptions): GeneratedConfig {
  const fileName = `bench-${shape}.yaml`;
  const upstream = serviceEntryDoc('bench-upstream', UPSTREAM_HOST, opts.upstreamPort);
  if (shape === 'one-rule') {
    const docs = [
      gatewayDoc(opts, [BENCH_REQUEST.host]),
      upstream,
      virtualServiceDoc(BENCH_HOST_INDEX, [targetRule(opts)]),
    ];
    const text = render(docs);
    return {
      shape,
      fileName,
      text,
      request: BENCH_REQUEST,
      size: {
        bytes: Buffer.byteLength(text),
        resources: docs.length,
        virtualServices: 1,
        httpRules: 1,
        hosts: 1,
        matchedRule: 1,
        rulesOnHost: 1,
      },
    };
  }
  const counts = rulesPerHost();
  const services: unknown[] = [];
  for (let h = 0; h < HOSTS; h++) {
    const n = counts[h] as number;
    const http: unknown[] = [];
    if (h === BENCH_HOST_INDEX) {
      for (let k = 0; k < n - 1; k++) {
        http.push({ name: `decoy-${k}`, match: decoyMatch(k), route: to(DECOY_HOST, opts.decoyPort) });
      }
      http.push(targetRule(opts));
    } else {
      for (let j = 0; j < n; j++) http.push(otherHostRule(h, j, opts));
    }
    services.push(virtualServiceDoc(h, http));
  }
  const docs = [
    gatewayDoc(opts, ['*.bench.test']),
    upstream,
    serviceEntryDoc('bench-decoy', DECOY_HOST, opts.decoyPort),
    ...services,
  ];
  const text = render(docs);
  return {
    shape,
    fileName,
    text,
    request: BENCH_REQUEST,
    size: {
      bytes: Buffer.byteLength(text),
      resources: docs.length,
      virtualServices: HOSTS,
      httpRules: counts.reduce((a, b) => a + b, 0),
      hosts: HOSTS,
      matchedRule: BENCH_HOST_RULES,
      rulesOnHost: BENCH_HOST_RULES,
    },
  };
}

/** Writes the config into DIR/<shape>/ and returns the directory to pass to --config. */
export function writeConfig(
  dir: string,
  config: Pick<GeneratedConfig, 'fileName' | 'text'> & { readonly shape: string },
): string {
  const out = join(dir, config.shape);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, config.fileName), config.text);
  return out;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'gateway-port': { type: 'string', default: '18080' },
      'upstream-port': { type: 'string', default: '18081' },
      'decoy-port': { type: 'string', default: '9' },
    },
  });
  const dir = positionals[0];
  if (!dir) {
    process.stderr.write(
      'usage: node bench/configs/generate.ts OUTDIR [--gateway-port N] [--upstream-port N] [--decoy-port N]\n',
    );
    process.exit(2);
  }
  const opts = {
    gatewayPort: Number(values['gateway-port']),
    upstreamPort: Number(values['upstream-port']),
    decoyPort: Number(values['decoy-port']),
  };
  for (const shape of ['one-rule', 'many-rules'] as const) {
    const config = generateConfig(shape, opts);
    const out = writeConfig(dir, config);
    process.stdout.write(`${join(out, config.fileName)}: ${JSON.stringify(config.size)}\n`);
  }
}

/**
 * `convert ingress --verify`: the behavioural diff. The Ingresses served natively and the
 * converted Istio YAML served as Istio resources run side by side on loopback, every backend
 * Service an echo upstream that reports what it received; a request set generated from every
 * host, path and canary header/cookie goes to both, and every answer that differs (status,
 * upstream, upstream path and Host, Location, x-forwarded-prefix) is reported.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttp2Server, createSecureServer as createSecureHttp2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as NetServer } from 'node:net';
import { makeCa, makeServerCert, type PemPair } from '../tls/self-signed.ts';
import { request } from 'undici';
import { loadResources } from '../config/index.ts';
import { GENERATED_FROM, MTLS_CLIENT_CA, MTLS_CREDENTIAL } from '../config/ingress/index.ts';
import { compile } from '../compile/index.ts';
import { createGateway, type Gateway } from '../control/reconcile.ts';
import { formatDiagnostic } from '../errors/diagnostic.ts';
import type { IngressSpec, ServiceSpec } from '../model/kube.ts';
import { readAnnotations } from '../config/ingress/annotations.ts';
import type { DestinationRuleSpec, HTTPMatchRequest, VirtualServiceSpec } from '../model/networking.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import { silentLogger } from '../observability/logger.ts';
import { closeAllPools } from '../upstream/pools.ts';
import type { Options } from './flags.ts';
import { identityOf, type CommandIO } from './io.ts';

export interface Probe {
  readonly host: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface Answer {
  readonly status: number;
  readonly upstream: string | null;
  readonly upstreamPath: string | null;
  readonly upstreamHost: string | null;
  readonly location: string | null;
  readonly forwardedPrefix: string | null;
  /** Set-Cookie without its value (session affinity cookies carry a per-endpoint hash). */
  readonly cookie: string | null;
  /** X-Auth-User the upstream got (auth-response-headers from the stand-in auth service). */
  readonly authUser: string | null;
  /** WWW-Authenticate the client got. */
  readonly challenge: string | null;
}

/** The literal start of an ingress-nginx regex path (up to its first regex metacharacter). */
function literalPrefix(regex: string): string {
  const m = /^[^\\^$.|?*+()[\]{}]*/.exec(regex);
  return m?.[0] ?? '/';
}

/** Path variants worth asking about for one match: as written, case, trailing slash, deeper. */
function pathsOf(m: HTTPMatchRequest): string[] {
  const u = m.uri;
  if (u === undefined) return ['/'];
  let base: string;
  if ('exact' in u) base = u.exact;
  else if ('prefix' in u) base = u.prefix;
  else base = literalPrefix(u.regex.replace(/^\(\?i\)\(\?:/, '').replace(/\)\.\*$/, ''));
  const trimmed = base.endsWith('/') ? base.slice(0, -1) : base;
  return [
    base,
    trimmed === '' ? '/' : trimmed,
    `${trimmed}/`,
    `${trimmed}/a/b?q=1`,
    `${trimmed}x`,
    trimmed.toUpperCase(),
    `${trimmed.toUpperCase()}/7`,
  ].filter((p) => p.startsWith('/'));
}

/** Header values canary and other header matches react to, plus none at all. */
function headerSets(m: HTTPMatchRequest): Record<string, string>[] {
  const out: Record<string, string>[] = [{}];
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    if (name === 'cookie' && 'regex' in sm) {
      const cookie = /\)\?(.+?)=(\w+)/.exec(sm.regex);
      if (cookie !== null)
        for (const v of ['always', 'never']) out.push({ cookie: `${cookie[1]!.replaceAll('\\', '')}=${v}` });
    } else if ('exact' in sm) out.push({ [name]: sm.exact }, { [name]: 'always' }, { [name]: 'never' });
  }
  return out;
}

/**
 * Backends a weighted route splits between (a canary-weight): which of them answers is a roll of
 * the dice on each side, so a different one is not a difference.
 */
export function weightedGroupsOf(documents: readonly Record<string, unknown>[]): string[][] {
  const out: string[][] = [];
  for (const d of documents) {
    if (d['kind'] !== 'VirtualService') continue;
    for (const rule of (d['spec'] as VirtualServiceSpec).http ?? [])
      if ((rule.route?.length ?? 0) > 1) out.push(rule.route!.map((r) => r.destination.host));
  }
  return out;
}

/** Every host × path variant × header set the converted VirtualServices mention. */
export function probesOf(documents: readonly Record<string, unknown>[]): Probe[] {
  const seen = new Set<string>();
  const out: Probe[] = [];
  const add = (p: Probe): void => {
    const key = JSON.stringify(p);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(p);
  };
  for (const d of documents) {
    if (d['kind'] !== 'VirtualService') continue;
    const spec = d['spec'] as VirtualServiceSpec;
    for (const host of spec.hosts) {
      const h = host === '*' ? 'unknown-host.example' : host.replace(/^\*\./, 'any.');
      add({ host: h, path: '/', headers: {} });
      add({ host: h, path: '/no-such-path-zz', headers: {} });
      for (const rule of spec.http ?? [])
        for (const m of rule.match ?? [{}])
          for (const p of pathsOf(m)) for (const headers of headerSets(m)) add({ host: h, path: p, headers });
    }
  }
  // Behind an auth-url every probe is asked three times: allowed, forbidden, and without credentials.
  if (authServicesOf(documents).size === 0) return out;
  return out.flatMap((p) => [
    p,
    { ...p, headers: { ...p.headers, [VERIFY_AUTH_HEADER]: 'allow' } },
    { ...p, headers: { ...p.headers, [VERIFY_AUTH_HEADER]: 'forbid' } },
  ]);
}

interface Bench {
  readonly gateway: Gateway;
  readonly port: number;
}

async function startGateway(set: ResourceSet, opts: Options, httpPort: number): Promise<Bench | string> {
  const { snapshot, diagnostics } = compile(set, { ...identityOf(opts), nowMs: Date.now() });
  const errors = diagnostics.filter((d) => d.level === 'error');
  if (errors.length > 0) return errors.map(formatDiagnostic).join('\n');
  const gateway = createGateway({ bind: '127.0.0.1', logger: silentLogger(), bindPortFor: () => 0 });
  await gateway.apply(snapshot);
  const port = gateway.boundPorts().get(httpPort);
  if (port === undefined) {
    await gateway.close();
    return `no listener on port ${httpPort}`;
  }
  return { gateway, port };
}

async function ask(port: number, p: Probe): Promise<Answer> {
  const res = await request(`http://127.0.0.1:${port}${p.path}`, {
    headers: { host: p.host, ...p.headers },
  });
  const text = await res.body.text();
  let echo: Record<string, string | null> | null = null;
  if (res.headers['x-sluice-verify-echo'] === '1') echo = JSON.parse(text) as Record<string, string | null>;
  const location = res.headers['location'];
  const setCookie = res.headers['set-cookie'];
  const cookie = setCookie === undefined ? null : String(setCookie).replace(/=[^;]*/, '=…');
  return {
    status: res.statusCode,
    upstream: echo?.['name'] ?? null,
    upstreamPath: echo?.['url'] ?? null,
    upstreamHost: echo?.['host'] ?? null,
    location: typeof location === 'string' ? location : null,
    forwardedPrefix: echo?.['xfp'] ?? null,
    cookie,
    authUser: echo?.['user'] ?? null,
    challenge: typeof res.headers['www-authenticate'] === 'string' ? res.headers['www-authenticate'] : null,
  };
}

/** The header a probe sets to steer the stand-in auth service: allow, forbid, else 401. */
export const VERIFY_AUTH_HEADER = 'x-sluice-verify-auth';
/** The status a probe asks the echo upstreams for (custom-http-errors); X-Code wins, as an error page backend answers it. */
export const VERIFY_STATUS_HEADER = 'x-sluice-verify-status';

/**
 * custom-http-errors: for each path of an Ingress that lists codes, a probe whose upstream
 * answers the first of them. Natively the default backend answers; converted, the upstream does.
 */
export function errorPageProbesOf(set: ResourceSet): Probe[] {
  const out: Probe[] = [];
  for (const ing of set.resources) {
    if (ing.kind !== 'Ingress') continue;
    const code = readAnnotations(ing.annotations, ing.namespace).value.errorPages?.codes[0];
    if (code === undefined) continue;
    for (const rule of (ing.spec as IngressSpec).rules ?? [])
      for (const p of rule.http?.paths ?? [])
        out.push({
          host: rule.host ?? 'unknown-host.example',
          path: literalPrefix(p.path ?? '/') || '/',
          headers: { [VERIFY_STATUS_HEADER]: String(code) },
        });
  }
  return out;
}

/** The default-backend Services of the Ingresses, as `host` → their first port (what ingress-nginx uses). */
function defaultBackendsOf(set: ResourceSet): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const ing of set.resources) {
    if (ing.kind !== 'Ingress') continue;
    const name = readAnnotations(ing.annotations, ing.namespace).value.errorPages?.defaultBackend;
    const svc = set.resources.find(
      (r) => r.kind === 'Service' && r.name === name && r.namespace === ing.namespace,
    );
    const port = (svc?.spec as ServiceSpec | undefined)?.ports[0]?.port;
    if (name != null && port !== undefined)
      out.set(`${name}.${ing.namespace}.svc.cluster.local`, new Set([port]));
  }
  return out;
}

/** The ext_authz providers' services of the converted YAML (auth-url), as `host` → ports. */
function authServicesOf(documents: readonly Record<string, unknown>[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const d of documents) {
    if (d['kind'] !== 'MeshConfig') continue;
    const providers =
      (d['spec'] as { extensionProviders?: Record<string, unknown>[] }).extensionProviders ?? [];
    for (const p of providers) {
      const http = p['envoyExtAuthzHttp'] as { service: string; port: number } | undefined;
      if (http === undefined) continue;
      const s = out.get(http.service) ?? new Set<number>();
      s.add(http.port);
      out.set(http.service, s);
    }
  }
  return out;
}

/** Allows, forbids or asks for credentials as the probe's VERIFY_AUTH_HEADER says. */
function authAnswer(req: Req, res: Res): void {
  const v = req.headers[VERIFY_AUTH_HEADER];
  if (v === 'allow') res.writeHead(200, { 'x-auth-user': 'verify' });
  else if (v === 'forbid') res.writeHead(403);
  else res.writeHead(401, { 'www-authenticate': 'Basic realm="verify"' });
  res.end('');
}

/** A Service `host` (`name.ns.…`) with `numbers` as ports, its one endpoint 127.0.0.1:`port`. */
function serviceAt(set: ResourceSet, host: string, numbers: ReadonlySet<number>, port: number): Resource[] {
  const origin = { kind: 'builtin', what: 'convert --verify' } as const;
  const [name, ns] = host.split('.') as [string, string];
  const existing = set.resources.find((r) => r.kind === 'Service' && r.name === name && r.namespace === ns);
  const svcPorts = existing
    ? (existing.spec as ServiceSpec).ports
    : [...numbers].map((n) => ({ name: `http-${n}`, port: n }));
  const named = svcPorts.map((p, i) => ({ ...p, name: p.name ?? `p${i}` }));
  const meta = { namespace: ns, labels: {}, annotations: {}, origin, apiVersion: 'v1' };
  return [
    { ...meta, kind: 'Service', name, spec: { ports: named } },
    {
      ...meta,
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
      name: `${name}-verify`,
      labels: { 'kubernetes.io/service-name': name },
      spec: {
        serviceName: name,
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
        ports: named.map((p) => ({ name: p.name, port })),
      },
    },
  ];
}

/** What the stand-ins read and write: the part HTTP/1.1 and HTTP/2 compatibility requests share. */
interface Req {
  readonly headers: IncomingHttpHeaders;
  readonly url?: string;
  resume(): unknown;
  on(event: 'end', fn: () => void): unknown;
}
interface Res {
  writeHead(status: number, headers?: Record<string, string>): unknown;
  end(body: string): unknown;
}
type Handler = (req: Req, res: Res) => void;

interface Closable {
  close(): void;
}

/** How a backend is spoken to in the converted YAML: TLS and/or HTTP/2 from its DestinationRule. */
function backendProtocolOf(
  documents: readonly Record<string, unknown>[],
  host: string,
): { tls: boolean; h2: boolean } {
  const out = { tls: false, h2: false };
  for (const d of documents) {
    if (d['kind'] !== 'DestinationRule') continue;
    const spec = d['spec'] as DestinationRuleSpec;
    if (spec.host !== host) continue;
    for (const p of [spec.trafficPolicy ?? {}, ...(spec.trafficPolicy?.portLevelSettings ?? [])]) {
      if (p.tls?.mode === 'SIMPLE' || p.tls?.mode === 'MUTUAL') out.tls = true;
      if (p.connectionPool?.http?.h2UpgradePolicy === 'UPGRADE') out.h2 = true;
    }
  }
  return out;
}

let verifyCert: PemPair | null = null;

/** A loopback server speaking what the backend speaks (HTTP/1.1 or h2c, plain or TLS with a throwaway certificate). */
async function listen(
  handler: Handler,
  protocol: { tls: boolean; h2: boolean } = { tls: false, h2: false },
): Promise<{ server: Closable; port: number }> {
  let server: NetServer & Closable;
  if (protocol.tls) {
    verifyCert ??= makeServerCert(makeCa({ commonName: 'sluice convert --verify' }), ['verify.invalid']);
    const creds = { cert: verifyCert.certPem, key: verifyCert.keyPem };
    server = protocol.h2
      ? createSecureHttp2Server({ ...creds, allowHTTP1: true }, handler)
      : createHttpsServer(creds, handler);
  } else server = protocol.h2 ? createHttp2Server(handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Echo upstreams for every backend host and a stand-in for every in-cluster auth service;
 * Services and EndpointSlices pointing at them.
 */
async function startEchoes(
  set: ResourceSet,
  documents: readonly Record<string, unknown>[],
): Promise<{ servers: Closable[]; resources: Resource[] }> {
  const ports = new Map<string, Set<number>>();
  for (const d of documents) {
    if (d['kind'] !== 'VirtualService') continue;
    for (const rule of (d['spec'] as VirtualServiceSpec).http ?? [])
      for (const r of rule.route ?? []) {
        const s = ports.get(r.destination.host) ?? new Set<number>();
        if (r.destination.port?.number !== undefined) s.add(r.destination.port.number);
        ports.set(r.destination.host, s);
      }
  }
  for (const [host, numbers] of defaultBackendsOf(set)) if (!ports.has(host)) ports.set(host, numbers);
  const servers: Closable[] = [];
  const resources: Resource[] = [];
  for (const [host, numbers] of ports) {
    const { server, port } = await listen(
      (req, res) => {
        req.resume();
        req.on('end', () => {
          const body = JSON.stringify({
            name: host,
            url: req.url ?? null,
            host: req.headers.host ?? null,
            xfp: req.headers['x-forwarded-prefix'] ?? null,
            user: req.headers['x-auth-user'] ?? null,
          });
          const status = req.headers['x-code'] ?? req.headers[VERIFY_STATUS_HEADER];
          res.writeHead(typeof status === 'string' ? Number(status) : 200, {
            'content-type': 'application/json',
            'x-sluice-verify-echo': '1',
          });
          res.end(body);
        });
      },
      backendProtocolOf(documents, host),
    );
    servers.push(server);
    resources.push(...serviceAt(set, host, numbers, port));
  }
  for (const [host, numbers] of authServicesOf(documents)) {
    // Only in-cluster names can be pointed at a stand-in; others are asked as they are, on both sides.
    if (!host.endsWith('.svc.cluster.local') || ports.has(host)) continue;
    const { server, port } = await listen(authAnswer);
    servers.push(server);
    resources.push(...serviceAt(set, host, numbers, port));
  }
  return { servers, resources };
}

/**
 * Runs the diff and prints it; returns how many requests got different answers (a setup
 * failure counts as one).
 */
export async function verifyConversion(
  set: ResourceSet,
  documents: readonly Record<string, unknown>[],
  opts: Options,
  io: CommandIO,
): Promise<number> {
  const { servers, resources: echoes } = await startEchoes(set, documents);
  const keep = set.resources.filter(
    (r) => r.kind !== 'EndpointSlice' && r.kind !== 'Service' && r.kind !== 'Ingress',
  );
  const native: ResourceSet = { resources: [...keep, ...echoes] };
  const converted = loadResources(
    [{ file: 'converted.yaml', text: documents.map((d) => JSON.stringify(d)).join('\n---\n') }],
    { defaultNamespace: opts.configNamespace },
  );
  // The user's Secrets copied to the gateway's namespace, and each auth-tls CA as the server
  // credential's `-cacert`, as the converted YAML's comments ask.
  const userSecrets = keep.filter((r) => r.kind === 'Secret' && r.annotations[GENERATED_FROM] === undefined);
  const secrets = userSecrets.map((r) => ({ ...r, namespace: opts.namespace }));
  for (const joined of keep.filter(
    (r) => r.kind === 'Secret' && r.annotations[MTLS_CLIENT_CA] !== undefined,
  )) {
    const ca = userSecrets.find((r) => `${r.namespace}/${r.name}` === joined.annotations[MTLS_CLIENT_CA]);
    const server = (joined.annotations[MTLS_CREDENTIAL] ?? '').split('/')[1];
    if (ca !== undefined && server !== undefined)
      secrets.push({ ...ca, namespace: opts.namespace, name: `${server}-cacert` });
  }
  const istio: ResourceSet = {
    resources: [
      ...keep.filter((r) => r.annotations[GENERATED_FROM] === undefined),
      ...secrets,
      ...converted.resources.resources,
      ...echoes,
    ],
  };
  const a = await startGateway(native, opts, opts.ingressHttpPort);
  const b = await startGateway(istio, opts, opts.ingressHttpPort);
  let differences = 0;
  let rateLimited = 0;
  let errorPages = 0;
  let reached = 0;
  try {
    if (typeof a === 'string' || typeof b === 'string') {
      io.out(
        `verify: could not serve ${typeof a === 'string' ? `the Ingresses: ${a}` : `the converted YAML: ${String(b)}`}\n`,
      );
      return 1;
    }
    const probes = [...probesOf(documents), ...errorPageProbesOf(set)];
    const groups = weightedGroupsOf(documents);
    const split = (u: string | null, v: string | null): boolean =>
      u !== null && v !== null && groups.some((g) => g.includes(u) && g.includes(v));
    for (const p of probes) {
      const [x, y] = await Promise.all([ask(a.port, p), ask(b.port, p)]);
      if (x.upstream !== null && y.upstream !== null) reached++;
      const fields = (Object.keys(x) as (keyof Answer)[]).filter(
        (k) => x[k] !== y[k] && !(k === 'upstream' && split(x.upstream, y.upstream)),
      );
      if (fields.length === 0) continue;
      // A limit-* refusal: ingress-nginx's 503, the RateLimitPolicy's 429 (a documented difference).
      if (fields.length === 1 && x.status === 503 && y.status === 429) {
        rateLimited++;
        continue;
      }
      // custom-http-errors: the default backend's page (or the built-in 404) natively, the upstream's own answer converted (documented).
      if (p.headers[VERIFY_STATUS_HEADER] !== undefined) {
        errorPages++;
        continue;
      }
      differences++;
      const hdrs = Object.entries(p.headers)
        .map(([k, v]) => ` ${k}: ${v}`)
        .join(';');
      io.out(
        `differs: ${p.host}${p.path}${hdrs === '' ? '' : ` [${hdrs.trim()}]`}: ${fields.map((f) => `${f} ingress=${String(x[f])} istio=${String(y[f])}`).join(', ')}\n`,
      );
    }
    io.out(
      `verify: ${probes.length} requests, ${differences} answered differently, ${reached} reached a backend on both sides${rateLimited > 0 ? ` (and ${rateLimited} rate limited: 503 natively, 429 converted, as documented)` : ''}${errorPages > 0 ? ` (and ${errorPages} upstream error answer(s) replaced by the default backend natively, passed as they are converted: custom-http-errors, as documented)` : ''}\n`,
    );
    return differences;
  } finally {
    if (typeof a !== 'string') await a.gateway.close();
    if (typeof b !== 'string') await b.gateway.close();
    await closeAllPools(true);
    for (const s of servers) s.close();
  }
}

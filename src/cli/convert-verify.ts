/**
 * `convert ingress --verify`: the behavioural diff. The Ingresses served natively and the
 * converted Istio YAML served as Istio resources run side by side on loopback, every backend
 * Service an echo upstream that reports what it received; a request set generated from every
 * host, path and canary header/cookie goes to both, and every answer that differs (status,
 * upstream, upstream path and Host, Location, x-forwarded-prefix) is reported.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttp2Server, createSecureServer as createSecureHttp2Server } from 'node:http2';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { Duplex, Readable } from 'node:stream';
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
import type { MeshConfigSpec } from '../model/sluice.ts';
import { silentLogger } from '../observability/logger.ts';
import { closeAllPools } from '../upstream/pools.ts';
import { CONVERTED_FROM } from './convert-yaml.ts';
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

/**
 * The SNI names of the converted YAML's tls routes (ssl-passthrough): each is asked over TLS on
 * the HTTPS port of both sides, to see which backend the still-encrypted bytes reach.
 */
export function sniProbesOf(documents: readonly Record<string, unknown>[]): string[] {
  const out = new Set<string>();
  for (const d of documents) {
    if (d['kind'] !== 'VirtualService') continue;
    for (const route of (d['spec'] as VirtualServiceSpec).tls ?? [])
      for (const m of route.match) for (const sni of m.sniHosts ?? []) out.add(sni.replace(/^\*\./, 'any.'));
  }
  return [...out];
}

interface Bench {
  readonly gateway: Gateway;
  readonly port: number;
  /** The HTTPS port's bound port (ssl-passthrough probes); null when nothing listens there. */
  readonly tlsPort: number | null;
}

async function startGateway(set: ResourceSet, opts: Options): Promise<Bench | string> {
  const httpPort = opts.ingressHttpPort;
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
  return { gateway, port, tlsPort: gateway.boundPorts().get(opts.ingressHttpsPort) ?? null };
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

const NO_ANSWER: Answer = {
  status: 0,
  upstream: null,
  upstreamPath: null,
  upstreamHost: null,
  location: null,
  forwardedPrefix: null,
  cookie: null,
  authUser: null,
  challenge: null,
};

/**
 * An HTTPS request with SNI `sni` to a passthrough port: the backend's stand-in terminates the
 * TLS and names itself; status 0 when the gateway closed the connection instead.
 */
function askTls(port: number | null, sni: string): Promise<Answer> {
  if (port === null) return Promise.resolve(NO_ANSWER);
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        servername: sni,
        path: '/',
        headers: { host: sni },
        agent: false,
        // The stand-in's throwaway certificate: what is checked is where the bytes went.
        rejectUnauthorized: false,
        timeout: 5000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const echo =
            res.headers['x-sluice-verify-echo'] === '1' ? (JSON.parse(text) as Record<string, string>) : null;
          resolve({ ...NO_ANSWER, status: res.statusCode ?? 0, upstream: echo?.['name'] ?? null });
        });
        res.on('error', () => resolve(NO_ANSWER));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(NO_ANSWER));
    req.end();
  });
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
 * A stand-in for an ssl-passthrough backend: the TLS the gateway passes through is terminated
 * (with the throwaway certificate), plain HTTP on the same port is answered as it is, as the
 * Ingress's plain-HTTP paths still reach it.
 */
async function listenEitherWay(handler: Handler): Promise<{ server: Closable; port: number }> {
  const tls = (await listen(handler, { tls: true, h2: false })).server as NetServer;
  const plain = (await listen(handler)).server as NetServer;
  const server = createNetServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      // Nothing may flow past while the stream below is made (it reads on demand).
      socket.pause();
      // The first bytes read are handed on with the rest in a stream of their own: a TLS server
      // would read a bare socket's handle and miss it. 0x16: a TLS handshake record.
      async function* bytes(): AsyncGenerator<Buffer> {
        yield first;
        for await (const chunk of socket) yield chunk as Buffer;
      }
      const joined = Duplex.from({
        readable: Readable.from(bytes(), { objectMode: false }),
        writable: socket,
      });
      joined.on('error', () => socket.destroy());
      (first[0] === 0x16 ? tls : plain).emit('connection', joined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = (): void => {
    server.close();
    tls.close();
    plain.close();
  };
  return { server: { close }, port: (server.address() as { port: number }).port };
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
  // Backends of tls routes get the TLS the client started: their stand-ins terminate it. The
  // Ingresses' own translation is read too, so a backend only one side passes TLS to speaks it.
  const passthrough = new Set<string>();
  const generated = set.resources.filter((r) => r.annotations[GENERATED_FROM] !== undefined);
  for (const d of [...documents, ...generated] as readonly { kind?: unknown; spec?: unknown }[]) {
    if (d.kind !== 'VirtualService') continue;
    const spec = d.spec as VirtualServiceSpec;
    const routes = [
      ...(spec.http ?? []).map((rule) => ({ rule, tls: false })),
      ...(spec.tls ?? []).map((rule) => ({ rule, tls: true })),
    ];
    for (const { rule, tls } of routes)
      for (const r of rule.route ?? []) {
        const s = ports.get(r.destination.host) ?? new Set<number>();
        if (r.destination.port?.number !== undefined) s.add(r.destination.port.number);
        ports.set(r.destination.host, s);
        if (tls) passthrough.add(r.destination.host);
      }
  }
  for (const [host, numbers] of defaultBackendsOf(set)) if (!ports.has(host)) ports.set(host, numbers);
  const servers: Closable[] = [];
  const resources: Resource[] = [];
  for (const [host, numbers] of ports) {
    const echo: Handler = (req, res) => {
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
    };
    const { server, port } = passthrough.has(host)
      ? await listenEitherWay(echo)
      : await listen(echo, backendProtocolOf(documents, host));
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
 * Limits counted in Redis (sluice.dev/limit-storage: Global) are verified in the Redis of a
 * MeshConfig given with the Ingresses, as both sides would count in production; without one
 * neither side can count them, which is said rather than served some other way.
 */
function globalLimitsWithoutRedis(
  set: ResourceSet,
  documents: readonly Record<string, unknown>[],
): string | null {
  const global = documents.find(
    (d) => d['kind'] === 'RateLimitPolicy' && (d['spec'] as { storage?: string }).storage === 'Global',
  );
  if (global === undefined) return null;
  const redis = set.resources.some(
    (r) => r.kind === 'MeshConfig' && (r.spec as MeshConfigSpec | null)?.redis !== undefined,
  );
  if (redis) return null;
  const from = (global['metadata'] as { annotations?: Record<string, string> }).annotations?.[CONVERTED_FROM];
  return `Ingress ${from ?? '?'} counts its limits in Redis (sluice.dev/limit-storage: Global); give a MeshConfig with redis in -f (both sides count in it) to verify it`;
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
  const unverifiable = globalLimitsWithoutRedis(set, documents);
  if (unverifiable !== null) {
    io.out(`verify: not run: ${unverifiable}\n`);
    return 1;
  }
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
  const a = await startGateway(native, opts);
  const b = await startGateway(istio, opts);
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
    const differ = (x: Answer, y: Answer, what: string, errorPage = false): void => {
      const fields = (Object.keys(x) as (keyof Answer)[]).filter(
        (k) => x[k] !== y[k] && !(k === 'upstream' && split(x.upstream, y.upstream)),
      );
      if (fields.length === 0) return;
      // A limit-* refusal: ingress-nginx's 503, the RateLimitPolicy's 429 (a documented difference).
      if (fields.length === 1 && x.status === 503 && y.status === 429) {
        rateLimited++;
        return;
      }
      // custom-http-errors: the default backend's page (or the built-in 404) natively, the upstream's own answer converted (documented).
      if (errorPage) {
        errorPages++;
        return;
      }
      differences++;
      io.out(
        `differs: ${what}: ${fields.map((f) => `${f} ingress=${String(x[f])} istio=${String(y[f])}`).join(', ')}\n`,
      );
    };
    for (const p of probes) {
      const [x, y] = await Promise.all([ask(a.port, p), ask(b.port, p)]);
      if (x.upstream !== null && y.upstream !== null) reached++;
      const hdrs = Object.entries(p.headers)
        .map(([k, v]) => ` ${k}: ${v}`)
        .join(';');
      differ(
        x,
        y,
        `${p.host}${p.path}${hdrs === '' ? '' : ` [${hdrs.trim()}]`}`,
        p.headers[VERIFY_STATUS_HEADER] !== undefined,
      );
    }
    const snis = sniProbesOf(documents);
    let passedThrough = 0;
    for (const sni of snis) {
      const [x, y] = await Promise.all([askTls(a.tlsPort, sni), askTls(b.tlsPort, sni)]);
      if (x.upstream !== null && y.upstream !== null) passedThrough++;
      differ(x, y, `TLS with SNI ${sni} (ssl-passthrough)`);
    }
    const tls =
      snis.length === 0
        ? ''
        : `; ${snis.length} TLS connection(s) by SNI (ssl-passthrough), ${passedThrough} passed through to a backend on both sides`;
    io.out(
      `verify: ${probes.length} requests, ${differences} answered differently, ${reached} reached a backend on both sides${rateLimited > 0 ? ` (and ${rateLimited} rate limited: 503 natively, 429 converted, as documented)` : ''}${errorPages > 0 ? ` (and ${errorPages} upstream error answer(s) replaced by the default backend natively, passed as they are converted: custom-http-errors, as documented)` : ''}${tls}\n`,
    );
    return differences;
  } finally {
    if (typeof a !== 'string') await a.gateway.close();
    if (typeof b !== 'string') await b.gateway.close();
    await closeAllPools(true);
    for (const s of servers) s.close();
  }
}

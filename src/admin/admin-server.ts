/**
 * The admin port (Envoy's 15000), loopback only: what is loaded, what it compiled to, and how the
 * processes are doing. Secrets are never rendered: dumps go through snapshot/dump.ts, and the
 * replacer below turns any model PrivateBytes into a fingerprint.
 */
import Fastify from 'fastify';
import { isPrivateBytes, renderPrivate } from '../model/private-bytes.ts';
import type { Resource } from '../model/resource.ts';
import { dumpSnapshot, routeRows } from '../snapshot/dump.ts';
import type { Snapshot } from '../snapshot/types.ts';
import { redactRedisUrl } from '../util/redis-url.ts';
import { parseJwks } from '../util/jwks.ts';
import { suggestServiceEntries, type BlockedDestination } from '../observability/egress-ledger.ts';

export interface AdminState {
  snapshot(): Snapshot | null;
  resources(): readonly Resource[];
  /** Per-cluster endpoint and pool state from upstream/ (with --workers: per worker). */
  clusters(): unknown;
  /** Credentials served (control/reconcile.ts certificatesOf; with --workers: merged); no key material. */
  certs(): unknown;
  /** What the egress proxy refused, by destination (with --workers: merged). */
  egressBlocked(): BlockedDestination[] | Promise<BlockedDestination[]>;
  /** ACME targets (control/acme-runner.ts status()): issuer, credential, hosts, back-off; [] when ACME is off. */
  acme(): unknown;
  version(): number;
  /** Metrics as JSON (Envoy's /stats?format=json shape). */
  stats(): Promise<unknown>;
  /** Per-process state: pid, snapshot version and hash each serves, restarts. */
  workers(): unknown;
  logLevel(): string;
  /** Sets the log level everywhere (every worker too); false when the level is unknown. */
  setLogLevel(level: string): boolean;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** JSON.stringify replacer that turns key material into fingerprints. */
function redact(key: string, value: unknown): unknown {
  // MeshConfig redis.url may carry a password.
  if (key === 'url' && typeof value === 'string' && value.startsWith('redis')) return redactRedisUrl(value);
  // Static headers for an external authorizer are often its credentials (an API key).
  if (key === 'includeAdditionalHeadersInCheck' && value !== null && typeof value === 'object')
    return Object.fromEntries(Object.keys(value).map((k) => [k, '[redacted]']));
  // Inline JWKS: an `oct` key is the HMAC secret itself.
  if (key === 'jwks' && typeof value === 'string') return redactSymmetricKeys(value);
  return isPrivateBytes(value) ? renderPrivate(value) : value;
}

function redactSymmetricKeys(jwks: string): string {
  const keys = parseJwks(jwks);
  if (keys === null) return '[not a JWKS]';
  return JSON.stringify({ keys: keys.map((k) => (k['kty'] === 'oct' ? { ...k, k: '[redacted]' } : k)) });
}

export function renderJson(value: unknown): string {
  return JSON.stringify(value, redact, 2) + '\n';
}

export async function startAdminServer(opts: { port: number; state: AdminState }): Promise<AdminServer> {
  const app = Fastify({ logger: false });
  const state = opts.state;
  app.get('/config_dump', async (_req, reply) => {
    const snapshot = state.snapshot();
    return reply.type('application/json').send(
      renderJson({
        version: state.version(),
        resources: state.resources().map((r) => ({
          kind: r.kind,
          apiVersion: r.apiVersion,
          namespace: r.namespace,
          name: r.name,
          spec: r.spec,
        })),
        snapshot: snapshot ? dumpSnapshot(snapshot) : null,
      }),
    );
  });
  app.get('/egress/blocked', async (_req, reply) =>
    reply.type('application/json').send(renderJson(await state.egressBlocked())),
  );
  // Learning mode (MeshConfig egressProxy.learn): what `sluice egress suggest` prints.
  app.get('/egress/suggest', async (_req, reply) =>
    reply.type('text/yaml').send(suggestServiceEntries(await state.egressBlocked())),
  );
  app.get('/routes', async (_req, reply) => {
    const snapshot = state.snapshot();
    return reply.type('application/json').send(renderJson(snapshot ? routeRows(snapshot) : []));
  });
  app.get('/clusters', async (_req, reply) =>
    reply.type('application/json').send(renderJson(await state.clusters())),
  );
  app.get('/certs', async (_req, reply) =>
    reply.type('application/json').send(renderJson(await state.certs())),
  );
  app.get('/acme', async (_req, reply) => reply.type('application/json').send(renderJson(state.acme())));
  app.get('/stats', async (_req, reply) =>
    reply.type('application/json').send(renderJson(await state.stats())),
  );
  app.get('/workers', async (_req, reply) =>
    reply.type('application/json').send(renderJson(await state.workers())),
  );
  // Envoy's /logging: GET shows the level, POST /logging?level=L sets it.
  app.get<{ Querystring: { level?: string } }>('/logging', async (req, reply) => {
    if (req.query.level !== undefined)
      return reply
        .code(405)
        .header('allow', 'POST')
        .type('text/plain')
        .send('use POST to change the log level\n');
    return reply.type('text/plain').send(`level: ${state.logLevel()}\n`);
  });
  app.post<{ Querystring: { level?: string } }>('/logging', async (req, reply) => {
    const level = req.query.level;
    if (level === undefined) return reply.code(400).type('text/plain').send('missing ?level=\n');
    if (!state.setLogLevel(level)) return reply.code(400).type('text/plain').send(`unknown level ${level}\n`);
    return reply.type('text/plain').send(`level: ${state.logLevel()}\n`);
  });
  // Loopback only: the admin port exposes configuration and must not be reachable from outside.
  await app.listen({ host: '127.0.0.1', port: opts.port });
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () => app.close(),
  };
}

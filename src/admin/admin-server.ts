/**
 * The admin port (Envoy's 15000), loopback only: what is loaded and what it compiled to.
 * Secrets are never rendered: dumps go through snapshot/dump.ts and model PrivateBytes fingerprints.
 */
import Fastify from 'fastify';
import { isPrivateBytes, renderPrivate } from '../model/private-bytes.ts';
import type { Resource } from '../model/resource.ts';
import { dumpSnapshot, routeRows } from '../snapshot/dump.ts';
import type { Snapshot } from '../snapshot/types.ts';
import type { Logger } from '../observability/logger.ts';

export interface AdminState {
  snapshot(): Snapshot | null;
  resources(): readonly Resource[];
  /** Per-cluster endpoint and pool state from upstream/. */
  clusters(): unknown;
  version(): number;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** JSON.stringify replacer that turns key material into fingerprints. */
function redact(_key: string, value: unknown): unknown {
  return isPrivateBytes(value) ? renderPrivate(value) : value;
}

export async function startAdminServer(opts: { port: number; state: AdminState; logger: Logger }): Promise<AdminServer> {
  const app = Fastify({ logger: false });
  const json = (value: unknown): string => JSON.stringify(value, redact, 2) + '\n';
  app.get('/config_dump', async (_req, reply) => {
    const snapshot = opts.state.snapshot();
    return reply.type('application/json').send(
      json({
        version: opts.state.version(),
        resources: opts.state.resources().map((r) => ({ kind: r.kind, apiVersion: r.apiVersion, namespace: r.namespace, name: r.name, spec: r.spec })),
        snapshot: snapshot ? dumpSnapshot(snapshot) : null,
      }),
    );
  });
  app.get('/routes', async (_req, reply) => {
    const snapshot = opts.state.snapshot();
    return reply.type('application/json').send(json(snapshot ? routeRows(snapshot) : []));
  });
  app.get('/clusters', async (_req, reply) => reply.type('application/json').send(json(opts.state.clusters())));
  app.get<{ Querystring: { level?: string } }>('/logging', async (req, reply) => {
    const level = req.query.level;
    if (level !== undefined) {
      if (!opts.logger.levels.values[level] && level !== 'silent') return reply.code(400).send(`unknown level ${level}\n`);
      opts.logger.level = level;
    }
    return reply.type('text/plain').send(`level: ${opts.logger.level}\n`);
  });
  // Loopback only: the admin port exposes configuration and must not be reachable from outside.
  await app.listen({ host: '127.0.0.1', port: opts.port });
  const address = app.server.address();
  return { port: typeof address === 'object' && address ? address.port : opts.port, close: () => app.close() };
}

/** The metrics port (Envoy's 15090): Prometheus text at Istio's path, /stats/prometheus. */
import Fastify from 'fastify';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(opts: { host: string; port: number; registry: Registry }): Promise<MetricsServer> {
  const app = Fastify({ logger: false });
  app.get('/stats/prometheus', async (_req, reply) =>
    reply.type(opts.registry.contentType).send(await opts.registry.metrics()),
  );
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  return { port: typeof address === 'object' && address ? address.port : opts.port, close: () => app.close() };
}

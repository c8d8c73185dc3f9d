/**
 * The metrics port (Envoy's 15090): Prometheus text at Istio's path, /stats/prometheus.
 * `render` is the process's registry, or with --workers the primary's and every worker's merged.
 */
import Fastify from 'fastify';

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(opts: {
  host: string;
  port: number;
  contentType: string;
  render: () => Promise<string>;
}): Promise<MetricsServer> {
  const app = Fastify({ logger: false });
  app.get('/stats/prometheus', async (_req, reply) => reply.type(opts.contentType).send(await opts.render()));
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () => app.close(),
  };
}

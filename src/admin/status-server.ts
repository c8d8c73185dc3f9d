/**
 * The status port (Istio's 15021): readiness for load balancers and kubelet, liveness.
 * fastify serves it: it is off the data plane, so its per-request cost does not matter (DESIGN §3).
 */
import Fastify, { type FastifyInstance } from 'fastify';

export interface StatusServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startStatusServer(opts: {
  host: string;
  port: number;
  /** 200 when true, 503 otherwise (not yet loaded, or draining). */
  isReady: () => boolean;
}): Promise<StatusServer> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/healthz/ready', async (_req, reply) => {
    const ready = opts.isReady();
    return reply
      .code(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ready\n' : 'not ready\n');
  });
  app.get('/healthz/live', async (_req, reply) => reply.type('text/plain').send('live\n'));
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () => app.close(),
  };
}

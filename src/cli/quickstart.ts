/**
 * `npm start`: the demo upstreams on loopback plus `serve --config gateways/`, one command,
 * stopped together by Ctrl-C.
 */
import { fileURLToPath } from 'node:url';
import type { Options } from './flags.ts';
import { startDemoUpstreams } from './demo-upstreams.ts';
import { startServe } from './serve.ts';
import { waitForSignals } from './serve-process.ts';

export async function runQuickstart(opts: Options): Promise<number> {
  const demo = await startDemoUpstreams();
  const config = opts.config.length > 0 ? opts.config : [fileURLToPath(new URL('../../gateways/', import.meta.url))];
  // A quickstart is for seeing it work: short drain so Ctrl-C returns promptly.
  const running = await startServe({ ...opts, config, workers: 1, drainDelayMs: Math.min(opts.drainDelayMs, 200) }).catch(async (err: unknown) => {
    await demo.close();
    throw err;
  });
  await running.firstApplied;
  const ports = [...running.gateway.boundPorts().values()].join(', ');
  running.logger.info(
    { demoUpstreams: demo.services.map((s) => `${s.name}-${s.version}@127.0.0.1:${s.boundPort}`), listeners: ports },
    `quickstart ready: try  curl -s -H 'Host: bookinfo.example.com' http://127.0.0.1:8080/productpage`,
  );
  return waitForSignals(running, () => demo.close());
}

/**
 * `npm start`: the demo upstreams on loopback plus `serve --config gateways/`, one command,
 * stopped together by Ctrl-C.
 */
import { fileURLToPath } from 'node:url';
import type { Options } from './flags.ts';
import { demoServicesOf, startDemoUpstreams } from './demo-upstreams.ts';
import { readConfigPaths } from '../providers/file.ts';
import { loadResources } from '../config/index.ts';
import { startServe } from './serve.ts';
import { waitForSignals } from './serve-process.ts';
import { ensureDevCredential } from '../tls/dev-credential.ts';

/** The credential gateways/20-bookinfo-ingress.yaml's HTTPS server names. */
const QUICKSTART_CREDENTIAL = 'bookinfo-credential';
const QUICKSTART_HOSTS = ['bookinfo.example.com', 'reviews.example.com', 'localhost', '127.0.0.1'];

export async function runQuickstart(opts: Options): Promise<number> {
  // HTTPS on 8443 with a development certificate made on first start (kept afterwards).
  const credential = await ensureDevCredential(opts.certsDir, QUICKSTART_CREDENTIAL, QUICKSTART_HOSTS);
  const config =
    opts.config.length > 0 ? opts.config : [fileURLToPath(new URL('../../gateways/', import.meta.url))];
  // serve reports any problem in the config; here only its valid ServiceEntries matter.
  const { inputs } = await readConfigPaths(config);
  const { resources } = loadResources(inputs, { defaultNamespace: opts.configNamespace });
  const demo = await startDemoUpstreams(demoServicesOf(resources.resources));
  // A quickstart is for seeing it work: short drain so Ctrl-C returns promptly.
  const running = await startServe({
    ...opts,
    config,
    workers: 1,
    drainDelayMs: Math.min(opts.drainDelayMs, 200),
  }).catch(async (err: unknown) => {
    await demo.close();
    throw err;
  });
  await running.firstApplied;
  const ports = [...running.gateway.boundPorts().values()].join(', ');
  running.logger.info(
    {
      demoUpstreams: demo.services.map((s) => `${s.name}-${s.version}@127.0.0.1:${s.boundPort}`),
      listeners: ports,
    },
    `quickstart ready: try  curl -s -H 'Host: bookinfo.example.com' http://127.0.0.1:8080/productpage` +
      `  or  curl -s --cacert ${credential.dir}/ca.crt --resolve bookinfo.example.com:8443:127.0.0.1 https://bookinfo.example.com:8443/productpage`,
  );
  return waitForSignals(running, () => demo.close());
}

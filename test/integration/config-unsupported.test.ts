/**
 * Nothing is accepted silently (issue 9 item 4), through the real `serve`: what the config sets
 * that sluice does not act on is logged as a warning at every load and counted in
 * sluice_config_unsupported_total{kind,field}, for accepted and rejected loads alike, while the
 * gateway serves exactly what it says it serves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, type RunningGateway } from '../../src/cli/serve.ts';
import { createLogger } from '../../src/observability/logger.ts';
import {
  freePort,
  gatewayYaml,
  invalidRouteYaml,
  makeConfigDir,
  request,
  routeYaml,
  upstreamsYaml,
} from '../support/ops-config.ts';
import { startEcho } from '../support/upstreams.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const LOCALITIES = `    - match: [{ uri: { prefix: /slow } }]
      route: [{ destination: { host: a.test.svc.cluster.local, port: { number: 80 } } }]
      retries: { attempts: 2, retryRemoteLocalities: true }
`;

const ENVOY_FILTER = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: web, namespace: istio-system }
spec: { configPatches: [] }
`;

async function scrape(r: RunningGateway): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${r.metricsServer.port}/stats/prometheus`);
  return res.text();
}

const counted = (metrics: string, kind: string, field: string): number => {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`sluice_config_unsupported_total{kind="${kind}",field="${field}"} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('serve: unsupported config is warned at every load and counted', () => {
  it('logs and counts a retry setting and an EnvoyFilter it does not act on, and says so while serving', async () => {
    const a = await startEcho({ name: 'a' });
    cleanups.push(() => a.close());
    const port = await freePort();
    const dir = await makeConfigDir({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: a.port }),
      'route.yaml': routeYaml(1, 'a', LOCALITIES),
      'envoyfilter.yaml': ENVOY_FILTER,
    });
    cleanups.push(() => dir.remove());
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const opts = parseOptions(
      'serve',
      [
        ...['--config', dir.dir, '--bind', '127.0.0.1', '--status-port', '0', '--metrics-port', '0'],
        ...['--admin-port', '0', '--workers', '1', '--drain-delay', '0'],
      ],
      {},
    );
    const running = await startServe(opts, { logger });
    cleanups.push(() => running.close());
    await until(() => running.isReady(), { what: 'first config applied' });

    const logged = lines.join('');
    expect(logged).toMatch(
      /route\.yaml#1:\d+ VirtualService test\/shop: spec\.http\[0\]\.retries\.retryRemoteLocalities: retryRemoteLocalities is not implemented by sluice; it has no effect/,
    );
    expect(logged).toMatch(/envoyfilter\.yaml#1\S* EnvoyFilter istio-system\/web: .*it is ignored/);
    // What the warnings say is what happens: the route serves as if the field were absent.
    for (let i = 0; i < 3; i++)
      expect((await request(port, '/slow', { host: 'example.com' })).status).toBe(200);

    let metrics = await scrape(running);
    expect(counted(metrics, 'VirtualService', 'http[].retries.retryRemoteLocalities')).toBe(1);
    expect(counted(metrics, 'EnvoyFilter', '*')).toBe(1);

    // A rejected load is counted too (the EnvoyFilter is still in it); the route with the field is gone from it.
    await dir.write('route.yaml', invalidRouteYaml());
    await until(() => running.loop.stats.rejected === 1, { what: 'the invalid set rejected' });
    metrics = await scrape(running);
    expect(counted(metrics, 'EnvoyFilter', '*')).toBe(2);
    expect(counted(metrics, 'VirtualService', 'http[].retries.retryRemoteLocalities')).toBe(1);

    // And so is the next accepted one.
    await dir.write('route.yaml', routeYaml(2, 'a', LOCALITIES));
    await until(() => running.loop.stats.accepted === 2, { what: 'the fixed set applied' });
    metrics = await scrape(running);
    expect(counted(metrics, 'VirtualService', 'http[].retries.retryRemoteLocalities')).toBe(2);
    expect(counted(metrics, 'EnvoyFilter', '*')).toBe(3);
  });
});

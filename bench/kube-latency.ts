/**
 * Change-to-traffic latency under `serve --kubernetes` (issue 14 item 2), not a test: sluice in
 * this process watches a loopback API server (test/support/fake-kube-api.ts: the same list +
 * watch protocol the tests drive, over HTTPS); each round changes the VirtualService through the
 * API and times how long until a request through the gateway is answered by the new version
 * (polling every --poll ms, so figures carry up to that much extra). One change at a time.
 * Target: p99 < 1 s (printed PASS/MISS). The reload loop waits ~100 ms of quiet before reading,
 * which is most of the figure by design.
 *
 *   npm run bench:kube [-- --rounds N] [-- --poll MS] [-- --json]
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { parseOptions } from '../src/cli/flags.ts';
import { startServe } from '../src/cli/serve.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { startFakeKubeApi } from '../test/support/fake-kube-api.ts';
import { kubeServeArgs, objectOf, objectsOf, tempDir } from '../test/support/kube-config.ts';
import { freePort, gatewayYaml, request, routeYaml, upstreamsYaml } from '../test/support/ops-config.ts';
import { startEcho } from '../test/support/upstreams.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '200' },
    poll: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const pollMs = Number(values.poll);

const api = await startFakeKubeApi();
const upstream = await startEcho({ name: 'a' });
const dir = await tempDir();
const port = await freePort();
for (const o of objectsOf(gatewayYaml([port]))) api.apply(o);
for (const o of objectsOf(upstreamsYaml({ a: upstream.port }))) api.apply(o);
api.apply(objectOf(routeYaml(0, 'a')));
const running = await startServe(parseOptions('serve', kubeServeArgs(api.kubeconfig(dir.dir)), {}), {
  logger: silentLogger(),
});

const genOf = async (): Promise<string | undefined> => {
  const r = await request(port).catch(() => null);
  return r?.status === 200 ? (r.headers['x-gen'] as string | undefined) : undefined;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const deadline = Date.now() + 30_000;
while ((await genOf()) !== '0') {
  if (Date.now() > deadline) throw new Error('sluice did not serve the first config within 30 s');
  await sleep(20);
}

const latencies: number[] = [];
for (let i = 1; i <= rounds; i++) {
  const start = performance.now();
  api.apply(objectOf(routeYaml(i, 'a')));
  while ((await genOf()) !== String(i)) {
    if (performance.now() - start > 10_000) throw new Error(`change ${i} not served within 10 s`);
    await sleep(pollMs);
  }
  latencies.push(performance.now() - start);
}

const sorted = [...latencies].sort((a, b) => a - b);
const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
const result = {
  node: process.version,
  cores: availableParallelism(),
  rounds,
  pollMs,
  p50Ms: Math.round(at(0.5)),
  p90Ms: Math.round(at(0.9)),
  p99Ms: Math.round(at(0.99)),
  maxMs: Math.round(sorted.at(-1)!),
  reloads: running.loop.stats.accepted,
};
if (values.json) console.log(JSON.stringify(result));
else
  console.log(
    `change-to-traffic through the Kubernetes API (${rounds} changes, Node ${result.node}, ${result.cores} cores): ` +
      `p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms ` +
      `[target p99 < 1000 ms: ${result.p99Ms < 1000 ? 'PASS' : 'MISS'}]`,
  );

await running.close();
await upstream.close();
await api.close();
await dir.remove();

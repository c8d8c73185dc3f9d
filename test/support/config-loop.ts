/**
 * A gateway fed by the real config sources (files, --certs-dir) through the real reload loop, with
 * a short debounce: what a file or certificate change does to a running gateway, without the rest
 * of `serve`. The first set is applied before it returns.
 */
import { buildFromResources } from '../../src/control/build.ts';
import { createReloadLoop, type ReloadLoop } from '../../src/control/loop.ts';
import type { Gateway } from '../../src/control/reconcile.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { createConfigSources } from '../../src/providers/certs-dir.ts';
import { TEST_IDENTITY } from './gateway.ts';

export async function followConfigSources(
  gateway: Gateway,
  paths: { config: string; certsDir: string },
): Promise<{ loop: ReloadLoop; stop(): Promise<void> }> {
  const sources = createConfigSources({
    paths: [paths.config],
    defaultNamespace: 'default',
    certsDir: paths.certsDir,
    gatewayNamespace: 'istio-system',
  });
  const loop = createReloadLoop({
    logger: silentLogger(),
    quietMs: 20,
    maxWaitMs: 200,
    read: () => sources.read(),
    build: (u) => buildFromResources(u.resources, u.diagnostics, { ...TEST_IDENTITY, nowMs: Date.now() }),
    apply: (b) => gateway.apply(b.snapshot),
  });
  await sources.start(loop.changed);
  await loop.reload();
  return {
    loop,
    stop: async () => {
      loop.stop();
      await sources.stop();
    },
  };
}

/**
 * The config thread (control/config-thread.ts starts it): the provider (reading and watching
 * the config files and certificates), parse, schema, validation and the judging compile with its
 * analysis all run here, off the event loop that serves requests or hands connections to workers.
 * What it read goes back as a set delta (control/set-delta.ts); what it judged as diagnostics.
 */
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { hashResources } from '../compile/index.ts';
import { createLoadCache } from '../config/index.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import {
  createConfigSources,
  withIngressTranslation,
  type ConfigSourcesOptions,
} from '../providers/certs-dir.ts';
import { combineProviders } from '../providers/combine.ts';
import { createKubernetesProvider, type KubernetesProviderOptions } from '../providers/kubernetes/index.ts';
import type { Provider, ProviderUpdate } from '../providers/provider.ts';
import { buildFromResources } from './build.ts';
import type { ToConfigThread, FromConfigThread } from './config-thread.ts';
import { createDeltaSender } from './set-delta.ts';

const { sources, identity, kubernetes } = workerData as {
  sources: ConfigSourcesOptions;
  identity: GatewayIdentity;
  kubernetes: KubernetesProviderOptions | null;
};
const port = parentPort;
if (port === null) throw new Error('config-thread-entry.ts runs as a worker thread');

/**
 * Linux gives each thread its own nice value (setpriority on the calling thread): config work
 * then yields the CPU to the threads that serve when both want it, and takes what is idle.
 * Relative to the process's own, so a process started with `nice` keeps the same order.
 */
const CONFIG_THREAD_NICER_BY = 5;
if (process.platform === 'linux') {
  try {
    setPriority(Math.min(19, getPriority() + CONFIG_THREAD_NICER_BY));
  } catch {
    // not permitted here: the thread runs at the process's priority
  }
}

// Documents that did not change are not parsed, validated or hashed again (config/index.ts).
const provider: Provider =
  kubernetes === null
    ? createConfigSources({ ...sources, cache: createLoadCache() })
    : withIngressTranslation(
        combineProviders(
          createConfigSources({ ...sources, cache: createLoadCache(), translateIngresses: false }),
          createKubernetesProvider(kubernetes),
        ),
        sources,
      );
const sender = createDeltaSender();
/** The last set read, which `judge` compiles. */
let last: ProviderUpdate | null = null;

const post = (m: FromConfigThread): void => port.postMessage(m);

async function answer(m: ToConfigThread): Promise<unknown> {
  switch (m.type) {
    case 'start':
      provider.onHealth?.((health) => post({ type: 'health', health }));
      await provider.start(() => post({ type: 'changed' }));
      return null;
    case 'read': {
      const update = await provider.read();
      last = update;
      return {
        delta: sender.encode(update.resources),
        diagnostics: update.diagnostics,
        ...(update.files !== undefined ? { files: update.files } : {}),
        ...(update.incomplete !== undefined ? { incomplete: update.incomplete } : {}),
        ...(update.authoritative !== undefined ? { authoritative: update.authoritative } : {}),
      };
    }
    case 'judge': {
      if (last === null) throw new Error('nothing has been read to judge');
      const build = buildFromResources(last.resources, last.diagnostics, { ...identity, nowMs: m.nowMs });
      // Events and status (--write-status) follow each judged set, off the reload's path.
      void provider.report?.(build.diagnostics);
      return { hash: hashResources(last.resources), diagnostics: build.diagnostics };
    }
    case 'stop':
      await provider.stop();
      return null;
  }
}

port.on('message', (m: ToConfigThread) => {
  answer(m).then(
    (value) => post({ type: 'reply', id: m.id, value }),
    (err: unknown) =>
      post(
        err instanceof SluiceError
          ? { type: 'reply', id: m.id, error: err.message, code: err.code }
          : {
              type: 'reply',
              id: m.id,
              error: err instanceof Error ? (err.stack ?? err.message) : String(err),
            },
      ),
  );
});

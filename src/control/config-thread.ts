/**
 * Config work off the event loop. `serve` reads, parses, validates and judges each change in a
 * worker thread (config-thread-entry.ts), so no request waits while a large config is parsed
 * (a 10,000-route file: ~1 s of CPU), and with --workers the primary keeps handing new
 * connections to its workers meanwhile. The thread's provider is this side's provider (its
 * watches say "changed" through the thread); a read comes back as a set delta, so an unchanged
 * resource keeps its object here and a change to one document costs one resource to receive.
 * The serving side compiles the snapshot itself (a snapshot holds compiled matchers, which cannot
 * cross threads), reusing what did not change (compile/reuse.ts).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Code } from '../errors/codes.ts';
import type { Diagnostic } from '../errors/diagnostic.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import type { ConfigSourcesOptions } from '../providers/certs-dir.ts';
import type { KubernetesProviderOptions } from '../providers/kubernetes/index.ts';
import type { Provider, ProviderHealth, ProviderUpdate } from '../providers/provider.ts';
import { createDeltaReceiver, type SetDelta } from './set-delta.ts';

/** this side → thread */
export type ToConfigThread =
  | { readonly type: 'start'; readonly id: number }
  | { readonly type: 'read'; readonly id: number }
  | { readonly type: 'judge'; readonly id: number; readonly nowMs: number }
  | { readonly type: 'stop'; readonly id: number };

/** thread → this side */
export type FromConfigThread =
  | { readonly type: 'changed' }
  | { readonly type: 'health'; readonly health: ProviderHealth }
  | {
      readonly type: 'reply';
      readonly id: number;
      readonly value?: unknown;
      readonly error?: string;
      /** A SluiceError's code: the fault keeps its one-line reason across the thread. */
      readonly code?: Code;
    };

interface ReadReply {
  readonly delta: SetDelta;
  readonly diagnostics: readonly Diagnostic[];
  readonly files?: number;
  readonly incomplete?: string;
  readonly authoritative?: boolean;
}

interface JudgeReply {
  readonly hash: string;
  readonly diagnostics: readonly Diagnostic[];
}

export interface ConfigThread {
  /** Reads and watches in the thread; what the reload loop reads. */
  readonly provider: Provider;
  /**
   * Compiles and analyses, in the thread, the set it read last (whose hash must be `hash`): its
   * load and compile diagnostics, sorted, as buildFromResources gives them.
   */
  judge(hash: string, nowMs: number): Promise<readonly Diagnostic[]>;
}

// The entry beside this file, as .ts from the sources or .js once built.
const ENTRY = new URL(`./config-thread-entry${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export function startConfigThread(opts: {
  readonly sources: ConfigSourcesOptions;
  readonly identity: GatewayIdentity;
  /** --kubernetes: the API server's objects join the files (providers/combine.ts). */
  readonly kubernetes?: KubernetesProviderOptions | null;
}): ConfigThread {
  let worker: Worker | null = null;
  /** A thread has run before: the next one is a restart. */
  let started = false;
  let receiver = createDeltaReceiver();
  let changed: (() => void) | null = null;
  let health: ((h: ProviderHealth) => void) | null = null;
  let nextId = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  const failAll = (why: string): void => {
    for (const p of pending.values()) p.reject(new Error(why));
    pending.clear();
  };

  /** The thread, started again (with a receiver that holds nothing) if it ever died. */
  const thread = (): Worker => {
    if (worker !== null) return worker;
    const w = new Worker(ENTRY, { workerData: { ...opts, kubernetes: opts.kubernetes ?? null } });
    worker = w;
    receiver = createDeltaReceiver();
    w.on('message', (m: FromConfigThread) => {
      if (m.type === 'changed') {
        changed?.();
        return;
      }
      if (m.type === 'health') {
        health?.(m.health);
        return;
      }
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.error !== undefined)
        p.reject(m.code !== undefined ? new SluiceError(m.code, m.error) : new Error(m.error));
      else p.resolve(m.value);
    });
    w.on('error', (err) => failAll(`the config thread failed: ${err.message}`));
    w.on('exit', (code) => {
      if (worker === w) worker = null;
      failAll(`the config thread exited (${code})`);
    });
    // Its watches went with the thread that died: this one watches again, and a read follows to
    // see what changed meanwhile.
    if (started && changed !== null) {
      void ask({ type: 'start' }).catch(() => undefined);
      changed();
    }
    started = true;
    return w;
  };

  const ask = <T>(m: { type: ToConfigThread['type']; nowMs?: number }): Promise<T> => {
    const w = thread();
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ ...m, id });
    });
  };

  const provider: Provider = {
    async start(onChange) {
      changed = onChange;
      await ask({ type: 'start' });
    },
    async read(): Promise<ProviderUpdate> {
      const r = await ask<ReadReply>({ type: 'read' });
      return {
        resources: receiver.decode(r.delta),
        diagnostics: r.diagnostics,
        ...(r.files !== undefined ? { files: r.files } : {}),
        ...(r.incomplete !== undefined ? { incomplete: r.incomplete } : {}),
        ...(r.authoritative !== undefined ? { authoritative: r.authoritative } : {}),
      };
    },
    onHealth(listener) {
      health = listener;
    },
    async stop() {
      changed = null;
      const w = worker;
      if (w === null) return;
      await ask({ type: 'stop' }).catch(() => undefined);
      worker = null;
      await w.terminate();
    },
  };

  return {
    provider,
    async judge(hash, nowMs) {
      const r = await ask<JudgeReply>({ type: 'judge', nowMs });
      if (r.hash !== hash) throw new Error('the config thread judged another set than the one read');
      return r.diagnostics;
    },
  };
}

/**
 * Load + compile, the one path every command takes from documents to a Snapshot, so
 * `validate`, `routes` and `explain` print exactly what `serve` would run.
 */
import {
  compile,
  compileSnapshot,
  createCompileCache,
  hashResources,
  settingsOf,
  type CompileOptions,
} from '../compile/index.ts';
import { sortDiagnostics, type Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import type { ProviderUpdate } from '../providers/provider.ts';
import type { Snapshot } from '../snapshot/types.ts';

export interface BuildResult {
  readonly resources: ResourceSet;
  readonly snapshot: Snapshot;
  /** Sorted and de-duplicated: load diagnostics, then compile diagnostics. */
  readonly diagnostics: readonly Diagnostic[];
  /** The clock it was compiled at (--workers compile the same set at the same instant). */
  readonly nowMs: number;
}

/** `opts` carries the clock (`nowMs`): the caller reads it, so the build itself is deterministic. */
export function buildFromResources(
  resources: ResourceSet,
  loadDiagnostics: readonly Diagnostic[],
  opts: CompileOptions,
): BuildResult {
  const { snapshot, diagnostics } = compile(resources, opts);
  return {
    resources,
    snapshot,
    diagnostics: sortDiagnostics([...loadDiagnostics, ...diagnostics]),
    nowMs: opts.nowMs,
  };
}

/**
 * Whether an error refuses the whole set it is in (DESIGN §5): any error from a file does (the
 * file provider's sets are all or nothing); an error on a resource from the Kubernetes API only
 * drops that resource, as the rest keep serving, except a security policy sluice cannot enforce
 * exactly, which refuses the set so the last good snapshot keeps it in force; the Kubernetes
 * provider hears that verdict (Provider.report) and from its next read stands in for that policy
 * with its last good version, or a deny of its scope (providers/kubernetes/objects.ts).
 */
export function refusesSet(d: Diagnostic): boolean {
  if (d.level !== 'error') return false;
  return d.subject?.origin?.kind !== 'kube' || d.code === 'SLUICE_POLICY_UNENFORCEABLE';
}

/** What a process that serves builds from each change: the snapshot, and the thread's verdict. */
export type SnapshotBuilder = (update: ProviderUpdate) => Promise<BuildResult>;

/**
 * The build `serve` runs on each change. The config thread judges the set (the full compile and
 * analysis: every diagnostic, off this event loop); this side compiles the snapshot it serves,
 * reusing the routes of unchanged VirtualServices (compile/reuse.ts). A set with errors that
 * refuse it (refusesSet) is refused whatever it compiles to, so it gets no snapshot of its own (an empty one stands in).
 */
export function createSnapshotBuilder(
  judge: (hash: string, nowMs: number) => Promise<readonly Diagnostic[]>,
  identity: GatewayIdentity,
): SnapshotBuilder {
  const cache = createCompileCache();
  return async (update) => {
    // The clock is read here, once per build: compile itself is pure.
    const nowMs = Date.now();
    const hash = hashResources(update.resources);
    const diagnostics = await judge(hash, nowMs);
    const snapshot: Snapshot = diagnostics.some(refusesSet)
      ? { hash, listeners: new Map(), clusters: new Map(), settings: settingsOf(null) }
      : compileSnapshot(update.resources, { ...identity, nowMs }, cache);
    return { resources: update.resources, snapshot, diagnostics, nowMs };
  };
}

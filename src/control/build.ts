/**
 * Load + compile, the one path every command takes from documents to a Snapshot, so
 * `validate`, `routes` and `explain` print exactly what `serve` would run.
 */
import { compile, type CompileOptions } from '../compile/index.ts';
import { sortDiagnostics, type Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';
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

/**
 * Load + compile, the one path every command takes from documents to a Snapshot, so
 * `validate`, `routes` and `explain` print exactly what `serve` would run.
 */
import { compile } from '../compile/index.ts';
import { sortDiagnostics, type Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity } from '../model/sluice.ts';
import type { Snapshot } from '../snapshot/types.ts';

export interface BuildResult {
  readonly resources: ResourceSet;
  readonly snapshot: Snapshot;
  /** Sorted and de-duplicated: load diagnostics, then compile diagnostics. */
  readonly diagnostics: readonly Diagnostic[];
}

export function buildFromResources(
  resources: ResourceSet,
  loadDiagnostics: readonly Diagnostic[],
  identity: GatewayIdentity,
): BuildResult {
  const { snapshot, diagnostics } = compile(resources, identity);
  return { resources, snapshot, diagnostics: sortDiagnostics([...loadDiagnostics, ...diagnostics]) };
}

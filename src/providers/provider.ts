import type { Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';

/** A full, fresh picture of the configuration: providers never send deltas. */
export interface ProviderUpdate {
  readonly resources: ResourceSet;
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * A source of configuration. `start` delivers the first update before it resolves (so the
 * caller can serve once it returns), then calls `onChange` whenever the source may have
 * changed; debouncing and "same content" detection are the control loop's job.
 */
export interface Provider {
  start(onChange: (u: ProviderUpdate) => void): Promise<void>;
  stop(): Promise<void>;
}

import type { Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';

/** A full, fresh picture of the configuration: providers never send deltas. */
export interface ProviderUpdate {
  readonly resources: ResourceSet;
  readonly diagnostics: readonly Diagnostic[];
  /** How many config files the set was read from (file provider), for messages. */
  readonly files?: number;
}

/**
 * A source of configuration. The provider knows what to read and what to watch; when to read
 * (debouncing) and whether what it read changed are the reload loop's (control/loop.ts), so a
 * provider's `changed` is cheap and may come in bursts.
 */
export interface Provider {
  /** Starts watching: `changed` is called whenever the source may have changed. */
  start(changed: () => void): Promise<void>;
  /** The whole configuration as it is now. */
  read(): Promise<ProviderUpdate>;
  stop(): Promise<void>;
}

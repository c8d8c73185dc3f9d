import type { Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';

/** A full, fresh picture of the configuration: providers never send deltas. */
export interface ProviderUpdate {
  readonly resources: ResourceSet;
  readonly diagnostics: readonly Diagnostic[];
  /** How many config files the set was read from (file provider), for messages. */
  readonly files?: number;
  /**
   * Not a whole picture yet (a Kubernetes provider before every watch has listed once): the
   * reload loop neither judges nor applies it, and says why while nothing serves.
   */
  readonly incomplete?: string;
  /**
   * The source's synced state is what the user means (the Kubernetes API), so a set without a
   * Gateway server is applied with a warning instead of refused as an accident.
   */
  readonly authoritative?: boolean;
}

/** How a remote source is doing, for metrics and logs. */
export interface ProviderHealth {
  readonly source: string;
  /** Every list and watch works now. */
  readonly connected: boolean;
  /** Every watch has listed once. */
  readonly synced: boolean;
  /** Failures of list, watch or discovery since start. */
  readonly failures: number;
  /** Secret and Pod watches left out because the server refuses them (401/403: missing RBAC). */
  readonly forbidden?: number;
  /** The first current failure, when not connected. */
  readonly error?: string;
  /** Events and status writes that failed (--write-status), and the last failure. */
  readonly statusWriteFailures?: number;
  readonly statusError?: string;
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
  /**
   * Tells the source what the last judged set says about its objects (Kubernetes: Events and
   * status, with --write-status). Best effort; never throws.
   */
  report?(diagnostics: readonly Diagnostic[]): Promise<void>;
  /** Remote sources: hears each change of health (connected, synced). */
  onHealth?(listener: (health: ProviderHealth) => void): void;
}

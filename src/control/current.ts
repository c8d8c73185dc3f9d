/**
 * The one live Snapshot (Traefik's handler switcher). A request calls get() once at its start and
 * keeps that object, so it never sees two configs; swap() replaces the reference whole.
 */
import type { Snapshot } from '../snapshot/types.ts';

export interface Current {
  get(): Snapshot;
  swap(next: Snapshot): void;
  readonly version: number;
}

/** What serves before the first config is applied: no listeners, Istio defaults. */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  hash: '',
  listeners: new Map(),
  clusters: new Map(),
  settings: Object.freeze({
    pathNormalization: 'BASE',
    numTrustedProxies: 0,
    outboundTrafficPolicy: 'ALLOW_ANY',
    serverHeader: 'istio-envoy',
  }),
});

export function createCurrent(initial: Snapshot = EMPTY_SNAPSHOT): Current {
  let snapshot = initial;
  let version = 0;
  return {
    get: () => snapshot,
    swap(next: Snapshot): void {
      snapshot = next;
      version += 1;
    },
    get version() {
      return version;
    },
  };
}

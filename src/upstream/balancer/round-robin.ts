import type { UpstreamHost } from '../pools.ts';

/** `cursor` is the cluster's (cluster-state.ts), so the rotation continues across reloads. */
export function pickRoundRobin(hosts: readonly UpstreamHost[], cursor: { next: number }): UpstreamHost {
  const i = cursor.next % hosts.length;
  cursor.next = (cursor.next + 1) % 0x3fffffff;
  return hosts[i]!;
}

import type { UpstreamHost } from '../pools.ts';

export function pickRandom(hosts: readonly UpstreamHost[]): UpstreamHost {
  return hosts[(Math.random() * hosts.length) | 0]!;
}

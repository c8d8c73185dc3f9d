import type { UpstreamHost } from '../pools.ts';
import type { BalancerState } from './state.ts';

export function pickRoundRobin(hosts: readonly UpstreamHost[], state: BalancerState): UpstreamHost {
  const i = state.next % hosts.length;
  state.next = (state.next + 1) % 0x3fffffff;
  return hosts[i]!;
}

import type { UpstreamHost } from '../pools.ts';

/**
 * Envoy's LEAST_REQUEST with equal weights (Istio's default, DR-4): two random choices, the one
 * with fewer requests in flight wins (ties go to the first).
 */
export function pickLeastRequest(hosts: readonly UpstreamHost[]): UpstreamHost {
  const n = hosts.length;
  if (n === 1) return hosts[0]!;
  const a = (Math.random() * n) | 0;
  let b = (Math.random() * (n - 1)) | 0;
  if (b >= a) b += 1;
  const ha = hosts[a]!;
  const hb = hosts[b]!;
  return hb.active < ha.active ? hb : ha;
}

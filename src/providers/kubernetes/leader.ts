/**
 * One writer among replicas: a coordination.k8s.io/v1 Lease, taken and renewed as client-go's
 * leader election does. The holder renews every `renewMs`; another replica takes the Lease once
 * its `renewTime` is older than `leaseDurationSeconds`. Every write is a PUT carrying the
 * resourceVersion read, so two replicas racing for an expired Lease cannot both win (the loser
 * gets 409 Conflict). Failing to renew before the lease would expire gives leadership up.
 */
import type { KubeClient } from './client.ts';

export interface LeaderTiming {
  readonly leaseDurationMs: number;
  readonly renewMs: number;
}

export const DEFAULT_LEADER_TIMING: LeaderTiming = { leaseDurationMs: 15_000, renewMs: 5_000 };

export interface LeaderElection {
  isLeader(): boolean;
  stop(): Promise<void>;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** RFC 3339 with microseconds, as Lease times are written. */
const microTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

export function startLeaderElection(
  client: KubeClient,
  opts: {
    readonly namespace: string;
    readonly name: string;
    readonly identity: string;
    readonly timing?: LeaderTiming;
    readonly onChange?: (leader: boolean) => void;
  },
): LeaderElection {
  const timing = opts.timing ?? DEFAULT_LEADER_TIMING;
  const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(opts.namespace)}/leases`;
  let leader = false;
  let lastRenewedMs = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  /** Holding a lease renewed recently enough that no other replica can have taken it. */
  const valid = (): boolean => leader && Date.now() - lastRenewedMs < timing.leaseDurationMs;

  const become = (v: boolean): void => {
    if (v === leader) return;
    leader = v;
    opts.onChange?.(v);
  };

  /**
   * A write of the Lease sent at `sentMs` succeeded. Said as a change whenever this replica was
   * not a valid leader before and is now, including a renewal that comes late (a slow API server).
   */
  const wrote = (sentMs: number): void => {
    const before = valid();
    lastRenewedMs = sentMs;
    if (!leader) become(true);
    else if (!before && valid()) opts.onChange?.(true);
  };

  const spec = (now: number, held: Lease['spec'] | undefined, transition: boolean): Lease['spec'] => ({
    holderIdentity: opts.identity,
    leaseDurationSeconds: Math.max(1, Math.round(timing.leaseDurationMs / 1000)),
    acquireTime: transition || held?.acquireTime === undefined ? microTime(now) : held.acquireTime,
    renewTime: microTime(now),
    leaseTransitions: (held?.leaseTransitions ?? 0) + (transition && held?.holderIdentity ? 1 : 0),
  });

  const attempt = async (): Promise<void> => {
    const now = Date.now();
    let lease: Lease | null;
    try {
      lease = await client.request<Lease>('GET', `${path}/${encodeURIComponent(opts.name)}`);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      lease = null;
    }
    if (lease === null) {
      await client.request('POST', path, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: opts.name, namespace: opts.namespace },
        spec: spec(now, undefined, true),
      });
      wrote(now);
      return;
    }
    const held = lease.spec;
    const mine = held?.holderIdentity === opts.identity;
    const renewed = held?.renewTime === undefined ? 0 : Date.parse(held.renewTime);
    const durationMs = (held?.leaseDurationSeconds ?? 0) * 1000;
    const expired = !held?.holderIdentity || renewed + durationMs < now;
    if (!mine && !expired) {
      become(false);
      return;
    }
    await client.request('PUT', `${path}/${encodeURIComponent(opts.name)}`, {
      ...lease,
      spec: spec(now, held, !mine),
    });
    wrote(now);
  };

  const loop = (): void => {
    if (stopped) return;
    attempt()
      .catch(() => {
        // A conflict (another replica won) or an unreachable API server: not the leader once the
        // lease this replica holds could have expired.
        if (Date.now() - lastRenewedMs >= timing.leaseDurationMs) become(false);
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, timing.renewMs);
      });
  };
  loop();

  return {
    isLeader: valid,
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      if (!leader) return;
      leader = false;
      // Give the lease up so another replica takes over at once, as client-go's ReleaseOnCancel.
      try {
        const lease = await client.request<Lease>('GET', `${path}/${encodeURIComponent(opts.name)}`);
        if (lease.spec?.holderIdentity === opts.identity)
          await client.request('PUT', `${path}/${encodeURIComponent(opts.name)}`, {
            ...lease,
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 },
          });
      } catch {
        // it expires by itself
      }
    },
  };
}

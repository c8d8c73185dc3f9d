/**
 * What the egress proxy refused, by destination: `sluice_egress_blocked_total{host,port,reason}`
 * and, in learning mode (MeshConfig `egressProxy.learn`), the record `sluice egress suggest`
 * turns into ServiceEntry YAML. Destinations come from clients, so the number kept is bounded:
 * past `MAX_DESTINATIONS` new ones are counted under host `other` and not learnt.
 */
import { Counter, type Registry } from 'prom-client';

export const MAX_DESTINATIONS = 1000;

export interface BlockedDestination {
  readonly host: string;
  readonly port: number;
  readonly reason: string;
  count: number;
  /** Counted in learning mode (only those are suggested). */
  learnt: number;
}

export interface EgressLedger {
  blocked(host: string, port: number, reason: string, learn: boolean): void;
  /** Every destination kept, sorted by host then port. */
  entries(): BlockedDestination[];
}

export function createEgressLedger(registry: Registry | null): EgressLedger {
  const byKey = new Map<string, BlockedDestination>();
  let overflow: BlockedDestination | null = null;
  const all: BlockedDestination[] = [];
  if (registry !== null)
    new Counter({
      name: 'sluice_egress_blocked_total',
      help: 'Requests and tunnels the egress proxy refused, by destination host, port and reason.',
      labelNames: ['host', 'port', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const d of all) this.inc({ host: d.host, port: String(d.port), reason: d.reason }, d.count);
      },
    });
  return {
    blocked(host, port, reason, learn) {
      const key = `${host}|${port}|${reason}`;
      let d = byKey.get(key);
      if (d === undefined) {
        if (byKey.size >= MAX_DESTINATIONS) {
          if (overflow === null) {
            overflow = { host: 'other', port: 0, reason: 'other', count: 0, learnt: 0 };
            all.push(overflow);
          }
          overflow.count += 1;
          return;
        }
        d = { host, port, reason, count: 0, learnt: 0 };
        byKey.set(key, d);
        all.push(d);
      }
      d.count += 1;
      if (learn) d.learnt += 1;
    },
    entries() {
      return [...all].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
    },
  };
}

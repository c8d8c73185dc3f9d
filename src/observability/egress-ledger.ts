/**
 * What the egress proxy refused, by destination: `sluice_egress_blocked_total{host,port,reason}`
 * and, in learning mode (MeshConfig `egressProxy.learn`), the record `sluice egress suggest`
 * turns into ServiceEntry YAML. Destinations come from clients, so the number kept is bounded:
 * past `MAX_DESTINATIONS` new ones are counted under host `other` and not learnt.
 */
import { Counter, type Registry } from 'prom-client';

export const MAX_DESTINATIONS = 1000;

/** How the client asked: an absolute-form HTTP request, or a CONNECT tunnel. */
export type EgressVia = 'http' | 'connect';

export interface BlockedDestination {
  readonly host: string;
  readonly port: number;
  readonly reason: string;
  readonly via: EgressVia;
  count: number;
  /** Counted in learning mode (only those are suggested). */
  learnt: number;
}

export interface EgressLedger {
  blocked(host: string, port: number, reason: string, via: EgressVia, learn: boolean): void;
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
    blocked(host, port, reason, via, learn) {
      const key = `${host}|${port}|${reason}|${via}`;
      let d = byKey.get(key);
      if (d === undefined) {
        if (byKey.size >= MAX_DESTINATIONS) {
          if (overflow === null) {
            overflow = { host: 'other', port: 0, reason: 'other', via, count: 0, learnt: 0 };
            all.push(overflow);
          }
          overflow.count += 1;
          return;
        }
        d = { host, port, reason, via, count: 0, learnt: 0 };
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

/** Several processes' lists (--workers) as one: counts of the same destination added. */
export function mergeBlocked(lists: readonly (readonly BlockedDestination[])[]): BlockedDestination[] {
  const byKey = new Map<string, BlockedDestination>();
  for (const list of lists)
    for (const d of list) {
      const key = `${d.host}|${d.port}|${d.reason}|${d.via}`;
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, { ...d });
      else {
        seen.count += d.count;
        seen.learnt += d.learnt;
      }
    }
  return [...byKey.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
}

/**
 * Refusals a ServiceEntry would have allowed: a name no entry named, or a port its entry does not
 * list (a tunnel's SNI counts as the name). Addresses, userinfo, disagreeing Hosts, internal
 * destinations and DNS failures are refused whatever the registry says, so never suggested.
 */
const LEARNABLE = new Set(['not_in_registry', 'port_not_allowed', 'sni_not_allowed']);

interface SuggestedPort {
  readonly number: number;
  readonly protocol: 'HTTP' | 'TLS' | 'TCP';
  count: number;
}

/**
 * `sluice egress suggest`: the ServiceEntry YAML that would allow what learning mode recorded,
 * one entry per host, its ports with the number of refusals each, hosts in order.
 */
export function suggestServiceEntries(entries: readonly BlockedDestination[]): string {
  const hosts = new Map<string, { ports: Map<number, SuggestedPort>; known: boolean }>();
  for (const d of entries) {
    if (d.learnt === 0 || !LEARNABLE.has(d.reason) || d.host === 'other') continue;
    let h = hosts.get(d.host);
    if (h === undefined) hosts.set(d.host, (h = { ports: new Map(), known: false }));
    if (d.reason === 'port_not_allowed') h.known = true;
    const protocol =
      d.via === 'http' ? 'HTTP' : d.port === 443 || d.reason === 'sni_not_allowed' ? 'TLS' : 'TCP';
    const p = h.ports.get(d.port);
    if (p === undefined) h.ports.set(d.port, { number: d.port, protocol, count: d.learnt });
    else p.count += d.learnt;
  }
  if (hosts.size === 0)
    return '# sluice egress suggest: learning mode has recorded no refusal a ServiceEntry would allow\n';
  const docs: string[] = [];
  for (const host of [...hosts.keys()].sort()) {
    const h = hosts.get(host)!;
    const ports = [...h.ports.values()].sort((a, b) => a.number - b.number);
    const total = ports.reduce((n, p) => n + p.count, 0);
    const lines = [
      `# ${host}: ${total} refused (${ports.map((p) => `${p.number}/${p.protocol.toLowerCase()} ${p.count}`).join(', ')})`,
    ];
    if (h.known)
      lines.push(
        '# a ServiceEntry names this host already: add these ports to it rather than a second entry',
      );
    lines.push(
      'apiVersion: networking.istio.io/v1',
      'kind: ServiceEntry',
      'metadata:',
      `  name: ${entryName(host)}`,
      'spec:',
      `  hosts: [${host}]`,
      '  location: MESH_EXTERNAL',
      '  resolution: DNS',
      '  ports:',
      ...ports.map(
        (p) =>
          `    - { number: ${p.number}, name: ${p.protocol.toLowerCase()}-${p.number}, protocol: ${p.protocol} }`,
      ),
    );
    docs.push(lines.join('\n'));
  }
  return docs.join('\n---\n') + '\n';
}

/** A DNS-1123 name for the entry: the host with dots as dashes, at most 63 characters. */
function entryName(host: string): string {
  return (
    host
      .replace(/[^a-z0-9-]/g, '-')
      .slice(0, 63)
      .replace(/-+$/, '') || 'egress'
  );
}

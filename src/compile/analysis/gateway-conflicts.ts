import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { GatewayServer } from '../../model/networking.ts';
import type { AnalysisContext } from './context.ts';
import { finding, formatSelector, nameOf } from './context.ts';
import { splitServerHost } from '../hosts.ts';
import { hostsOverlap } from './hosts.ts';

type GatewayResource = AnalysisContext['gateways'][number];

const PLAINTEXT_HTTP = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

function dnsNames(server: GatewayServer, gatewayNamespace: string): string[] {
  return server.hosts.map((h) => splitServerHost(h, gatewayNamespace).host);
}

/**
 * IST0145 ConflictingGateways (Istio's gateway.ConflictingGatewayAnalyzer): two Gateways with the
 * same selector declare servers on the same port with overlapping hosts. When either server is
 * not plaintext HTTP (TLS, TCP, or the protocols differ) Istio keeps one server and silently drops
 * the other (GW-19, pain points 2 and 14): an error. Two plaintext HTTP-family servers merge into
 * one route table (GW-19), so that case (bookinfo and httpbin Gateways both on `*:80`) is only a
 * warning. Hosts are compared without their `ns/` prefix.
 */
export function analyzeGatewayConflicts(ctx: AnalysisContext): Diagnostic[] {
  // `selector~port` → gateway → its (last) server on that port, as Istio indexes it
  const index = new Map<string, Map<GatewayResource, GatewayServer>>();
  for (const gw of ctx.gateways) {
    const sel = formatSelector(gw.spec.selector);
    for (const server of gw.spec.servers) {
      if (server.port?.number === undefined) continue;
      const key = `${sel}~${server.port.number}`;
      const byGw = index.get(key) ?? new Map<GatewayResource, GatewayServer>();
      byGw.set(gw, server);
      index.set(key, byGw);
    }
  }
  const out: Diagnostic[] = [];
  for (const gw of ctx.gateways) {
    const sel = formatSelector(gw.spec.selector);
    gw.spec.servers.forEach((server, i) => {
      if (server.port?.number === undefined) return;
      const mine = dnsNames(server, gw.namespace);
      const others: { gw: GatewayResource; server: GatewayServer }[] = [];
      for (const [other, otherServer] of index.get(`${sel}~${server.port.number}`) ?? []) {
        if (other === gw || (other.namespace === gw.namespace && other.name === gw.name)) continue;
        const theirs = dnsNames(otherServer, other.namespace);
        if (mine.some((h) => theirs.some((t) => hostsOverlap(h, t))))
          others.push({ gw: other, server: otherServer });
      }
      if (others.length === 0) return;
      const protocolClash = others.some((o) => o.server.port.protocol !== server.port.protocol);
      const merged = !protocolClash && PLAINTEXT_HTTP.has(server.port.protocol);
      const described = others
        .map((o) => `${nameOf(o.gw)} (${o.server.port.protocol} [${o.server.hosts.join(', ')}])`)
        .join(', ');
      const first = others[0]!.gw;
      out.push(
        finding({
          level: merged ? 'warning' : 'error',
          code: protocolClash ? 'SLUICE_PORT_CONFLICT' : 'SLUICE_HOST_CONFLICT',
          istioCode: 'IST0145',
          resource: gw,
          path: `spec.servers[${i}]`,
          message: `port ${server.port.number} ${server.port.protocol} hosts [${server.hosts.join(', ')}] (selector ${sel || '<all>'}) conflicts with ${described}; ${merged ? 'the plaintext servers are merged, so which VirtualService answers a shared host depends on VirtualService order' : 'only one of the conflicting servers is served'}`,
          related: first,
        }),
      );
    });
  }
  return out;
}

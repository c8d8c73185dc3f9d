/**
 * Gateway servers → per-port plans (GW-5, GW-14, GW-19): which servers share a port, what kind of
 * listener the port is, and which servers are skipped because they conflict with an earlier one.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { GatewayServer } from '../model/networking.ts';
import { formatOrigin } from '../model/resource.ts';
import type { ListenerProtocol, ServerRef } from '../snapshot/types.ts';
import { serverDnsNames } from './hosts.ts';
import type { GatewayResource, Indexes } from './indexes.ts';
import { subjectOf } from './indexes.ts';

export interface ServerEntry {
  readonly gateway: GatewayResource;
  readonly server: GatewayServer;
  readonly index: number;
  readonly ref: ServerRef;
  /** How this server is served. */
  readonly serving: ListenerProtocol;
}

export interface PortPlan {
  readonly port: number;
  readonly bind: string | null;
  readonly protocol: ListenerProtocol;
  /** Plaintext HTTP-family servers: one shared table `http.<port>`. */
  readonly plaintext: readonly ServerEntry[];
  /** Terminated HTTPS servers: one table each. */
  readonly terminated: readonly ServerEntry[];
  /** Every server kept on this port, in merge order. */
  readonly servers: readonly ServerEntry[];
}

type Family = 'http' | 'tls' | 'tcp';

const HTTP_FAMILY = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const TCP_FAMILY = new Set(['TCP', 'MONGO', 'REDIS', 'MYSQL']);

function familyOf(serving: ListenerProtocol): Family {
  return serving === 'HTTP' ? 'http' : serving === 'TCP' ? 'tcp' : 'tls';
}

export function httpsTableName(port: number, portName: string, gateway: GatewayResource): string {
  return `https.${port}.${portName}.${gateway.name}.${gateway.namespace}`;
}

/** The credential a terminated server presents: credentialName, else the file pair. */
export function credentialOf(server: GatewayServer): string | null {
  const tls = server.tls;
  if (!tls) return null;
  if (tls.credentialName) return tls.credentialName;
  if (tls.credentialNames && tls.credentialNames.length > 0) return tls.credentialNames[0] ?? null;
  if (tls.serverCertificate) return `file:${tls.serverCertificate}+${tls.privateKey ?? ''}`;
  const first = tls.tlsCertificates?.[0];
  if (first?.serverCertificate) return `file:${first.serverCertificate}+${first.privateKey ?? ''}`;
  return null;
}

export function planPorts(idx: Indexes, diagnostics: Diagnostic[]): PortPlan[] {
  interface Building {
    port: number;
    bind: string | null;
    family: Family;
    first: ServerEntry;
    servers: ServerEntry[];
    /** dnsName → the TLS-family server that claimed it. */
    tlsHosts: Map<string, ServerEntry>;
  }
  const byPort = new Map<number, Building>();

  for (const gateway of idx.gateways) {
    gateway.spec.servers.forEach((server, index) => {
      const path = `spec.servers[${index}]`;
      const proto = server.port.protocol;
      const mode = server.tls?.mode;
      // Servers sluice does not serve (UDP, unix:// binds, AUTO_PASSTHROUGH) are skipped here; the
      // warning that says so is made at load from model/unsupported.ts.
      if (server.bind?.startsWith('unix://')) return;
      let serving: ListenerProtocol;
      if (HTTP_FAMILY.has(proto)) serving = 'HTTP';
      else if (TCP_FAMILY.has(proto)) serving = 'TCP';
      else if (proto === 'HTTPS' || proto === 'TLS') {
        if (mode === 'AUTO_PASSTHROUGH') return;
        if (proto === 'HTTPS' && mode !== undefined && mode !== 'PASSTHROUGH') serving = 'HTTPS';
        else serving = 'TLS';
        // GW-6: without a mode the server is PASSTHROUGH (config validation warns about a certificate there).
      } else return;

      const ref: ServerRef = {
        gatewayNamespace: gateway.namespace,
        gatewayName: gateway.name,
        serverIndex: index,
        portName: server.port.name,
        hosts: server.hosts,
      };
      const entry: ServerEntry = { gateway, server, index, ref, serving };
      const port = server.port.number;
      const family = familyOf(serving);
      let b = byPort.get(port);
      if (b && b.family !== family) {
        const other = b.first;
        const otherAt = `${formatOrigin(other.gateway.origin)} Gateway ${other.gateway.namespace}/${other.gateway.name}`;
        diagnostics.push({
          level: 'error',
          code: 'SLUICE_PORT_CONFLICT',
          subject: subjectOf(gateway),
          related: subjectOf(other.gateway),
          path: `${path}.port`,
          message: `${port} is ${serving} here, ${other.serving} in ${otherAt}; this server is skipped`,
        });
        return;
      }
      if (family === 'tls' && b) {
        for (const [j, h] of server.hosts.entries()) {
          const name = serverDnsNames([h])[0] ?? h;
          const other = b.tlsHosts.get(name);
          if (!other) continue;
          // GW-19: Istio skips the whole later server silently; sluice says so.
          diagnostics.push({
            level: 'error',
            code: 'SLUICE_HOST_CONFLICT',
            subject: subjectOf(gateway),
            related: subjectOf(other.gateway),
            path: `${path}.hosts[${j}]`,
            message: `${name} is already served on TLS port ${port} by ${formatOrigin(other.gateway.origin)} Gateway ${other.gateway.namespace}/${other.gateway.name} spec.servers[${other.index}]; this server is skipped`,
          });
          return;
        }
      }
      if (!b) {
        b = { port, bind: server.bind ?? null, family, first: entry, servers: [], tlsHosts: new Map() };
        byPort.set(port, b);
      }
      b.servers.push(entry);
      if (family === 'tls') for (const name of serverDnsNames(server.hosts)) b.tlsHosts.set(name, entry);
    });
  }

  return [...byPort.values()]
    .sort((a, b) => a.port - b.port)
    .map((b) => {
      const protocol: ListenerProtocol =
        b.family === 'http'
          ? 'HTTP'
          : b.family === 'tcp'
            ? 'TCP'
            : b.servers.some((s) => s.serving === 'HTTPS')
              ? 'HTTPS'
              : 'TLS';
      return {
        port: b.port,
        bind: b.bind,
        protocol,
        plaintext: b.servers.filter((s) => s.serving === 'HTTP'),
        terminated: b.servers.filter((s) => s.serving === 'HTTPS'),
        servers: b.servers,
      };
    });
}

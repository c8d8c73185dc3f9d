/**
 * compile(): the validated model → one immutable Snapshot. Pure, sync, deterministic; config
 * problems become diagnostics, never exceptions. Fixed pass order: indexes → ports/servers →
 * route tables (which pull in clusters) → cross-resource checks.
 */
import { createHash } from 'node:crypto';
import { sortDiagnostics, type Diagnostic } from '../errors/diagnostic.ts';
import type { ResourceSet } from '../model/resource.ts';
import type { GatewayIdentity, MeshConfigSpec } from '../model/sluice.ts';
import type { GatewaySettings, Listener, Snapshot, TlsServer } from '../snapshot/types.ts';
import { analyze } from './analysis/index.ts';
import { createClusterContext } from './clusters.ts';
import { credentialOf, httpsTableName, planPorts } from './gateways.ts';
import { serverDnsNames } from './hosts.ts';
import { buildIndexes } from './indexes.ts';
import { buildRouteTable, createRouteContext } from './routes.ts';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- fixed contract name (brief)
export interface CompileOptions extends GatewayIdentity {}

export interface CompileResult {
  readonly snapshot: Snapshot;
  readonly diagnostics: Diagnostic[];
}

/** JSON with object keys sorted at every level: the canonical form the content hash is taken over. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      return Object.fromEntries(entries);
    }
    return v;
  });
}

export function hashResources(set: ResourceSet): string {
  return createHash('sha256').update(canonicalJson(set.resources)).digest('hex');
}

export function settingsOf(mesh: MeshConfigSpec | null): GatewaySettings {
  const n = mesh?.pathNormalization?.normalization;
  return {
    pathNormalization: n === undefined || n === 'DEFAULT' ? 'BASE' : n,
    numTrustedProxies: mesh?.gatewayTopology?.numTrustedProxies ?? 0,
    outboundTrafficPolicy: mesh?.outboundTrafficPolicy?.mode ?? 'ALLOW_ANY',
    serverHeader: 'istio-envoy',
  };
}

function compileUnchecked(set: ResourceSet, identity: GatewayIdentity, diagnostics: Diagnostic[]): Snapshot {
  const indexes = buildIndexes(set, identity);
  const clusters = createClusterContext(indexes, diagnostics);
  const routes = createRouteContext(indexes, clusters, diagnostics);
  const listeners = new Map<number, Listener>();

  for (const plan of planPorts(indexes, diagnostics)) {
    const httpTable =
      plan.protocol === 'HTTP' ? buildRouteTable(routes, `http.${plan.port}`, plan.plaintext) : null;
    const tlsServers: TlsServer[] = plan.terminated.map((entry) => ({
      server: entry.ref,
      sniHosts: serverDnsNames(entry.server.hosts),
      table: buildRouteTable(routes, httpsTableName(plan.port, entry.server.port.name, entry.gateway), [
        entry,
      ]),
      credential: credentialOf(entry.server),
    }));
    listeners.set(plan.port, {
      port: plan.port,
      bind: plan.bind,
      protocol: plan.protocol,
      key: `${plan.protocol}|${plan.bind ?? '*'}|${plan.port}`,
      httpTable,
      tlsServers,
      servers: plan.servers.map((s) => s.ref),
    });
  }

  const sortedClusters = new Map(
    [...clusters.clusters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return {
    hash: hashResources(set),
    listeners,
    clusters: sortedClusters,
    settings: settingsOf(indexes.meshConfig),
  };
}

/** Pure and sync; never throws on user input (an unexpected fault becomes SLUICE_INTERNAL and an empty snapshot). */
export function compile(set: ResourceSet, opts: GatewayIdentity): CompileResult {
  const diagnostics: Diagnostic[] = [];
  let snapshot: Snapshot;
  try {
    snapshot = compileUnchecked(set, opts, diagnostics);
  } catch (err) {
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_INTERNAL',
      message: `compile failed unexpectedly: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    });
    snapshot = {
      hash: hashResources(set),
      listeners: new Map(),
      clusters: new Map(),
      settings: settingsOf(null),
    };
  }
  try {
    diagnostics.push(...analyze(set, opts));
  } catch (err) {
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_INTERNAL',
      message: `analysis failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
  return { snapshot, diagnostics: sortDiagnostics(diagnostics) };
}

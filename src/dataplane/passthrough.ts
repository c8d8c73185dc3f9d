/**
 * TLS PASSTHROUGH (GW-5): the ClientHello's SNI (peeked, never terminated) picks a VirtualService
 * `tls` route; the still-encrypted bytes are piped to one of its destinations over TCP, so the
 * client sees the upstream's own certificate. Unknown SNI: connection closed (SE-4: a gateway has
 * no catch-all).
 */
import { connect, type Socket } from 'node:net';
import type { Listener, TlsRoute, TlsServer } from '../snapshot/types.ts';
import { hostSetOf, pickHost, type HostSet } from '../upstream/endpoints.ts';

/** How specifically `pattern` covers `sni`: exact > longest wildcard > `*`; -1 = not at all. */
export function sniScore(pattern: string, sni: string): number {
  if (pattern === sni && sni !== '') return 100_000;
  if (pattern === '*') return 0;
  if (pattern.charCodeAt(0) === 42 && sni.length > pattern.length - 1 && sni.endsWith(pattern.slice(1)))
    return pattern.length;
  return -1;
}

function bestScore(hosts: readonly string[], sni: string): number {
  let best = -1;
  for (const h of hosts) {
    const s = sniScore(h, sni);
    if (s > best) best = s;
  }
  return best;
}

/**
 * The passthrough route for `sni` on this listener, or null when a terminated server answers it
 * at least as specifically (or nothing does). First route wins among equals (GW-19).
 */
export function passthroughRouteFor(listener: Listener, sni: string): TlsRoute | null {
  const routes = listener.tlsRoutes;
  if (routes === undefined || routes.length === 0) return null;
  let route: TlsRoute | null = null;
  let routeScore = -1;
  for (const r of routes) {
    const s = bestScore(r.sniHosts, sni);
    if (s > routeScore) {
      route = r;
      routeScore = s;
    }
  }
  if (route === null || routeScore < 0) return null;
  let terminated = -1;
  for (const t of listener.tlsServers as readonly TlsServer[])
    terminated = Math.max(terminated, bestScore(t.sniHosts, sni));
  return terminated >= routeScore ? null : route;
}

/** Pipes `client` to a destination of `route`; closes it when there is none (UH/NC). */
export function pipePassthrough(client: Socket, route: TlsRoute, onDone?: (ok: boolean) => void): void {
  const dests = route.destinations;
  let dest = dests[0];
  if (dests.length > 1 && route.totalWeight > 0) {
    let r = (Math.random() * route.totalWeight) | 0;
    for (const d of dests) {
      if (r < d.weight) {
        dest = d;
        break;
      }
      r -= d.weight;
    }
  }
  const cluster = dest?.cluster ?? null;
  if (cluster === null) {
    client.destroy();
    onDone?.(false);
    return;
  }
  const withSet = (set: HostSet): void => {
    const host = pickHost(set, null);
    if (host === null || client.destroyed) {
      client.destroy();
      onDone?.(false);
      return;
    }
    const upstream = connect({ host: host.address, port: host.port });
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const timer = setTimeout(() => upstream.destroy(), cluster.connectTimeoutMs);
    const fail = (): void => {
      clearTimeout(timer);
      upstream.destroy();
      client.destroy();
    };
    upstream.once('connect', () => {
      clearTimeout(timer);
      onDone?.(true);
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    });
    upstream.on('error', fail);
    client.on('error', fail);
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
  };
  const set = hostSetOf(cluster);
  if (set instanceof Promise)
    set.then(withSet, () => {
      client.destroy();
      onDone?.(false);
    });
  else withSet(set);
}

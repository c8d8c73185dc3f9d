/**
 * TLS PASSTHROUGH (GW-5): the ClientHello's SNI (peeked, never terminated) picks a VirtualService
 * `tls` route; the still-encrypted bytes are piped to one of its destinations over TCP, so the
 * client sees the upstream's own certificate. Unknown SNI: connection closed (SE-4: a gateway has
 * no catch-all).
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Listener, TlsRoute, TlsServer } from '../snapshot/types.ts';
import { hostSetOf, pickHost, type HostSet } from '../upstream/endpoints.ts';
import type { TcpConnectionObserver } from '../observability/request-metrics.ts';
import { connectOptionsFor } from '../upstream/tls-origination.ts';

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

/**
 * Pipes `client` to a destination of `route`; closes it when there is none. `observer` hears one
 * opened and one closed per connection (istio_tcp_*), with Envoy's tcp_proxy response flags: NC
 * no cluster, UH no healthy upstream, UF connect failed or timed out, `-` otherwise.
 */
export function pipePassthrough(
  client: Socket,
  route: TlsRoute,
  observer: TcpConnectionObserver | null = null,
): void {
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
  const clusterName = cluster?.name ?? null;
  let flags = '-';
  if (observer !== null) {
    observer.tcpOpened(clusterName);
    // Bytes to and from the client, as Envoy's downstream counters see them.
    client.once('close', () => observer.tcpClosed(clusterName, flags, client.bytesWritten, client.bytesRead));
  }
  if (cluster === null) {
    flags = 'NC';
    client.destroy();
    return;
  }
  const withSet = (set: HostSet): void => {
    const host = pickHost(set, null);
    if (host === null || client.destroyed) {
      if (host === null) flags = 'UH';
      client.destroy();
      return;
    }
    // Half-close passes through, as Envoy's tcp_proxy does: a client that sends FIN still hears
    // the rest of the answer (pipe() forwards each side's end to the other).
    const tls = cluster.tls;
    if (tls?.notReady != null) {
      flags = 'UF';
      client.destroy();
      return;
    }
    // DR-8 over TCP: no Host to take an SNI or a name from, so only `sni`/`subjectAltNames` apply.
    const upstream =
      tls === undefined
        ? connect({ host: host.address, port: host.port, allowHalfOpen: true })
        : tlsConnect({
            ...connectOptionsFor(tls, tls.sni, tls.subjectAltNames),
            host: host.address,
            port: host.port,
          });
    client.allowHalfOpen = true;
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(), cluster.connectTimeoutMs);
    const fail = (): void => {
      clearTimeout(timer);
      upstream.destroy();
      client.destroy();
    };
    upstream.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      connected = true;
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    });
    upstream.on('error', () => {
      if (!connected) flags = 'UF';
      fail();
    });
    client.on('error', fail);
    upstream.once('close', () => {
      // Closed before connecting without an error: the connect timeout fired.
      if (!connected && !client.destroyed) flags = 'UF';
      // Connected: pipe() has ended the client after the last byte; destroying would cut it off.
      if (!connected) client.destroy();
    });
    client.once('close', () => upstream.destroy());
  };
  const set = hostSetOf(cluster);
  if (set instanceof Promise)
    set.then(withSet, () => {
      flags = 'UH';
      client.destroy();
    });
  else withSet(set);
}

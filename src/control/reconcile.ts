/**
 * The running gateway: listeners by key, the live snapshot, upstream pools (Caddy's pooled
 * listeners). apply() binds new listeners first (a failed bind rejects the whole apply and the
 * old config keeps serving), keeps listeners whose key is unchanged, swaps the snapshot, then
 * closes removed listeners gracefully and releases pools no cluster uses any more.
 */
import type { SecureContext, SecureContextOptions } from 'node:tls';
import { SluiceError } from '../errors/sluice-error.ts';
import type { Logger } from '../observability/logger.ts';
import type {
  JwtProvider,
  Listener,
  RouteTable,
  Snapshot,
  TlsSettings,
  TlsVersionName,
} from '../snapshot/types.ts';
import { createJwksStore, type JwksStoreOptions } from '../dataplane/filters/jwks-store.ts';
import type { FilterRuntime } from '../dataplane/filters/filter.ts';
import type { Limiter } from '../ratelimit/limits.ts';
import { createRateLimitStores, type RateLimitObserver } from './ratelimit-runtime.ts';
import type { PolicyMetrics } from '../observability/policy-metrics.ts';
import { HttpListener, type Http2Limits, type ListenerTimeouts } from '../dataplane/listeners.ts';
import { TcpListener } from '../dataplane/tcp-listener.ts';
import { EgressProxyListener, type EgressProxyTuning } from '../dataplane/forward-proxy.ts';
import type { BlockedDestination, EgressLedger } from '../observability/egress-ledger.ts';
import type { FinishedRequest } from '../observability/finished-request.ts';
import type { HandshakeFailure, TlsHooks } from '../dataplane/tls-sni.ts';
import { contextOptions, createContextCache, DEFAULT_CIPHERS } from '../tls/secure-context.ts';
import {
  createTlsStats,
  recordHandshake,
  type CertificateInfo,
  type TlsStats,
} from '../observability/tls-stats.ts';
import type { RequestContext } from '../dataplane/request-context.ts';
import type { TcpConnectionObserver } from '../observability/request-metrics.ts';
import { closeUnusedPools, poolStatus, releasePools } from '../upstream/pools.ts';
import { warmEndpoints } from '../upstream/endpoints.ts';
import { releaseDnsNames } from '../upstream/dns.ts';
import { createCurrent, type Current } from './current.ts';

export interface GatewayOptions {
  /** Address listeners bind when the snapshot's listener has none (--bind). */
  readonly bind: string;
  readonly logger: Logger;
  /** Tests: the port to bind for a configured port (return 0 for an ephemeral port). */
  readonly bindPortFor?: (configuredPort: number) => number;
  readonly timeouts?: ListenerTimeouts;
  /** How long removed listeners may finish in-flight work after a reload. Default 30 s. */
  readonly removedListenerGraceMs?: number;
  /** Per finished request (access log, metrics). */
  readonly onRequestDone?: (ctx: RequestContext) => void;
  /** Per proxied TCP connection (passthrough, tcp routes): istio_tcp_* metrics. */
  readonly tcp?: TcpConnectionObserver;
  /** ACME challenges (providers/acme.ts): HTTP-01 tokens on plaintext listeners, TLS-ALPN-01 certificates. */
  readonly acme?: AcmeHooks;
  readonly http2?: Http2Limits;
  /** Where handshake counters go; a fresh one when absent (see `tlsStats`). */
  readonly tlsStats?: TlsStats;
  /** Request pipeline decisions and JWKS fetches (metrics, audit logs); absent = not observed. */
  readonly policy?: PolicyMetrics;
  /** JWKS store timings (tests). */
  readonly jwks?: JwksStoreOptions;
  /** Per proxied request or tunnel of the egress proxy (access log, request metrics). */
  readonly onEgressDone?: (r: FinishedRequest) => void;
  /** What the egress proxy refused, by destination (metric, learning mode). */
  readonly egressLedger?: EgressLedger;
  /** The egress proxy's resolver and timeouts (tests). */
  readonly egress?: EgressProxyTuning;
  /** Rate limits: the --workers primary's Local store, and what reports decisions; absent = own store, not observed. */
  readonly rateLimit?: { readonly local?: Limiter; readonly observer?: RateLimitObserver | null };
}

export interface AcmeHooks {
  /** Key authorisation for `/.well-known/acme-challenge/<token>`, or null to route normally. */
  httpToken(token: string): string | null;
  /**
   * Tokens another process ordered (a shared store: other replicas, or the --workers primary),
   * asked only for challenge paths httpToken does not know; null routes normally.
   */
  lookupHttpToken?(token: string): Promise<string | null>;
  /** A context holding the acmeIdentifier certificate for `servername`, or null. */
  alpnContext(servername: string): SecureContext | null;
  /** As lookupHttpToken, for `acme-tls/1` handshakes alpnContext has nothing for. */
  loadAlpnContext?(servername: string): Promise<SecureContext | null>;
}

export interface Gateway {
  apply(snapshot: Snapshot): Promise<void>;
  /** Immediate stop: listeners and pools closed, connections cut. */
  close(): Promise<void>;
  /**
   * Start of a drain (SIGTERM, before --drain-delay): listeners keep accepting, but every response
   * from now on says `Connection: close` so keep-alive clients move away, as Envoy does.
   */
  startDraining(): void;
  /** Graceful stop: stop accepting, let in-flight requests finish up to `timeoutMs`, then close. */
  drain(timeoutMs: number): Promise<void>;
  readonly current: Current;
  /** Configured port → actually bound port (they differ only when tests bind port 0). */
  boundPorts(): Map<number, number>;
  /** Ports the serving snapshot has a listener on that is not bound (readiness says 503). */
  unboundPorts(): number[];
  /** Per-endpoint pool state for the admin `/clusters` page. */
  clusterStatus(): unknown;
  /** Credentials the live snapshot presents, for the admin `/certs` page and the expiry gauge. */
  certificates(nowMs?: number): CertificateInfo[];
  /** What the egress proxy refused, by destination (admin `/egress/*`, `sluice egress suggest`). */
  egressBlocked(): BlockedDestination[];
  readonly tlsStats: TlsStats;
}

interface Running {
  readonly key: string;
  readonly port: number;
  readonly listener: HttpListener | TcpListener | EgressProxyListener;
  /** HTTPS: the key of the default context options last set (no-SNI clients, version bounds). */
  defaultsKey: string | null;
}

const VERSION_ORDER: readonly TlsVersionName[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * The port's server-level TLS options: the `*` server's certificate for clients without SNI
 * (GW-14; none → those handshakes fail), version bounds spanning every server (each server's own
 * are checked after the handshake), the ciphers of every server.
 */
function tlsDefaultsOf(l: Listener): { key: string; options: SecureContextOptions } {
  const all = l.tlsServers.map((s) => s.tls ?? null).filter((t): t is TlsSettings => t !== null);
  const star = l.tlsServers.find((s) => s.sniHosts.includes('*'))?.tls ?? null;
  let min = 3;
  let max = 0;
  const ciphers = new Set<string>();
  for (const t of all) {
    min = Math.min(min, VERSION_ORDER.indexOf(t.minVersion));
    max = Math.max(max, VERSION_ORDER.indexOf(t.maxVersion));
    for (const c of (t.ciphers ?? DEFAULT_CIPHERS).split(':')) ciphers.add(c);
  }
  if (all.length === 0) {
    min = 2;
    max = 3;
  }
  const minVersion = VERSION_ORDER[min]!;
  const maxVersion = VERSION_ORDER[Math.max(min, max)]!;
  const cipherList = [...ciphers].join(':') || DEFAULT_CIPHERS;
  const base =
    star !== null
      ? contextOptions({ ...star, minVersion, maxVersion, ciphers: cipherList })
      : contextOptions({
          mode: 'SIMPLE',
          credentials: [],
          clientCaPem: null,
          minVersion,
          maxVersion,
          ciphers: cipherList,
          key: '',
        });
  return { key: `${star?.key ?? '-'}|${minVersion}|${maxVersion}|${cipherList}`, options: base };
}

export function createGateway(opts: GatewayOptions): Gateway {
  const log = opts.logger;
  const current = createCurrent();
  const running = new Map<string, Running>();
  let chain: Promise<void> = Promise.resolve();
  let closed = false;
  /** Identity under which this gateway holds upstream pools. */
  const owner = {};
  const serverHeader = (): string => current.get().settings.serverHeader;
  const tlsStats = opts.tlsStats ?? createTlsStats();
  const acme = opts.acme;
  const contexts = createContextCache(() => (tlsStats.contextsBuilt += 1));
  const policy = opts.policy ?? null;
  const jwks = createJwksStore({
    ...opts.jwks,
    onFetch: (uri, result, error) => {
      policy?.jwksFetched(uri, result);
      if (error !== null) log.warn({ uri, error }, 'JWKS fetch failed; the last good key set keeps serving');
    },
  });
  policy?.watchJwks(jwks);
  const rateLimits = createRateLimitStores({
    logger: log,
    ...(opts.rateLimit?.local !== undefined ? { local: opts.rateLimit.local } : {}),
    observer: opts.rateLimit?.observer ?? null,
  });
  const filters: FilterRuntime = { jwks, observer: policy, now: Date.now, rateLimit: rateLimits.runtime };
  /** settings key → context, for the live snapshot (and the one being applied). */
  const live = new Map<string, SecureContext[]>();
  const tlsHooks: TlsHooks = {
    contextFor: (settings, ecdsa) => {
      const list = live.get(settings.key);
      if (list === undefined) return null;
      if (list.length === 1) return list[0]!;
      const creds = settings.credentials;
      const want = ecdsa ? 'EC' : 'RSA';
      const i = creds.findIndex((c) => c.keyType === want);
      return list[i < 0 ? 0 : i] ?? null;
    },
    acmeAlpnContext: acme ? (name) => acme.alpnContext(name) ?? acme.loadAlpnContext?.(name) ?? null : null,
    onHandshake: (ok: boolean, reason: HandshakeFailure | null) => recordHandshake(tlsStats, ok, reason),
  };
  const acmeHttpToken = acme
    ? (token: string) => acme.httpToken(token) ?? acme.lookupHttpToken?.(token) ?? null
    : null;

  /**
   * Contexts for every TLS setting the snapshot uses, built before the swap (cached by content
   * hash, so unchanged certificates are not rebuilt). A context OpenSSL refuses rejects the
   * apply: the previous certificate keeps serving.
   */
  function buildContexts(snapshot: Snapshot): Map<string, SecureContext[]> {
    const next = new Map<string, SecureContext[]>();
    for (const l of snapshot.listeners.values()) {
      for (const s of l.tlsServers) {
        const t = s.tls ?? null;
        if (t === null || next.has(t.key)) continue;
        try {
          // One context per credential: OpenSSL keeps only one certificate of a context switched
          // in by SNI, so RSA and ECDSA are chosen from the peeked ClientHello instead (GW-15).
          next.set(
            t.key,
            t.credentials.length <= 1
              ? [contexts.get(t)]
              : t.credentials.map((c, i) => contexts.get({ ...t, credentials: [c], key: `${t.key}|${i}` })),
          );
        } catch (err) {
          throw new SluiceError(
            'SLUICE_LISTEN_FAILED',
            `port ${l.port}: the certificate of ${s.credential ?? 'server'} cannot be loaded: ${(err as Error).message}`,
            { cause: err },
          );
        }
      }
    }
    return next;
  }

  const bindPortOf = (l: { port: number }): number => (opts.bindPortFor ? opts.bindPortFor(l.port) : l.port);

  /** The egress proxy of `snapshot` as a listener to reconcile (bound on --bind), or null when off. */
  function egressOf(snapshot: Snapshot): { key: string; port: number } | null {
    const e = snapshot.egress;
    return e === undefined ? null : { key: e.key, port: e.port };
  }

  async function openEgress(port: number, key: string): Promise<Running> {
    const listener = new EgressProxyListener({
      ...opts.egress,
      port,
      bindPort: bindPortOf({ port }),
      bind: opts.bind,
      source: current,
      onDone: opts.onEgressDone ?? null,
      tcp: opts.tcp ?? null,
      ledger: opts.egressLedger ?? null,
      onRouted: opts.onRequestDone ?? null,
      filters,
    });
    try {
      await listener.listen();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new SluiceError(
        'SLUICE_LISTEN_FAILED',
        `cannot listen on ${opts.bind}:${port}: ${e.code ?? e.message} (egress proxy port)`,
        { cause: err },
      );
    }
    return { key, port, listener, defaultsKey: null };
  }

  /** A bound listener for `l`, or a SluiceError naming the address, port and Gateways. */
  async function openListener(l: Listener, bindPort: number): Promise<Running> {
    const listener =
      l.protocol === 'TCP'
        ? new TcpListener({
            port: l.port,
            bindPort,
            bind: l.bind ?? opts.bind,
            source: current,
            tcp: opts.tcp ?? null,
            filters,
          })
        : new HttpListener({
            port: l.port,
            bindPort,
            bind: l.bind ?? opts.bind,
            source: current,
            serverHeader,
            timeouts: opts.timeouts,
            onDone: opts.onRequestDone ?? null,
            tls: l.protocol === 'HTTP' ? null : tlsHooks,
            acmeHttpToken,
            tcp: opts.tcp ?? null,
            filters,
            ...(opts.http2 !== undefined ? { http2: opts.http2 } : {}),
          });
    try {
      await listener.listen();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const gateways = [...new Set(l.servers.map((s) => `${s.gatewayNamespace}/${s.gatewayName}`))];
      throw new SluiceError(
        'SLUICE_LISTEN_FAILED',
        `cannot listen on ${l.bind ?? opts.bind}:${l.port}: ${e.code ?? e.message} (Gateway port of ${gateways.join(', ')})`,
        { cause: err },
      );
    }
    return { key: l.key, port: l.port, listener, defaultsKey: null };
  }

  /** HTTPS: ClientHello peeking and the port-wide TLS defaults (`*` server, version bounds), when changed. */
  function configureTls(r: Running, l: Listener): void {
    if (!(r.listener instanceof HttpListener) || l.protocol === 'HTTP') return;
    r.listener.setPeekClientHello(
      (l.tlsRoutes?.length ?? 0) > 0 || l.tlsServers.some((s) => (s.tls?.credentials.length ?? 0) > 1),
    );
    const d = tlsDefaultsOf(l);
    if (d.key === r.defaultsKey) return;
    r.listener.setTlsDefaults(d.options);
    r.defaultsKey = d.key;
  }

  /**
   * An apply failed after closing listeners that had to make way (`freed`): open them again as
   * the serving snapshot has them, so a refused reload takes nothing down. One that cannot be
   * reopened (its port taken meanwhile) stays out of `running`, and readiness says so.
   */
  async function reopen(freed: readonly Running[]): Promise<void> {
    const serving = new Map([...current.get().listeners.values()].map((l) => [l.key, l]));
    const egress = egressOf(current.get());
    for (const r of freed) {
      const l = serving.get(r.key);
      running.delete(r.key);
      if (l === undefined && r.key !== egress?.key) continue;
      try {
        const again =
          l === undefined
            ? await openEgress(egress!.port, egress!.key)
            : await openListener(l, bindPortOf(l));
        if (l !== undefined) configureTls(again, l);
        running.set(r.key, again);
      } catch (err) {
        log.error(
          { err, port: r.port },
          'a listener the serving config needs could not be reopened; retrying',
        );
        repairLater();
      }
    }
  }

  let repairTimer: NodeJS.Timeout | null = null;
  let repairs = 0;
  /** Applies the serving snapshot again, with back-off, until every listener it needs is bound. */
  function repairLater(): void {
    if (closed || repairTimer !== null) return;
    const delayMs = Math.min(10_000, 250 * 2 ** repairs++);
    repairTimer = setTimeout(() => {
      repairTimer = null;
      if (closed) return;
      const next = chain.then(() => applyNow(current.get()));
      chain = next.then(
        () => {
          if (!closed && gateway.unboundPorts().length > 0) repairLater();
          else repairs = 0;
        },
        () => repairLater(),
      );
    }, delayMs);
    repairTimer.unref();
  }

  async function applyNow(snapshot: Snapshot): Promise<void> {
    if (closed) throw new SluiceError('SLUICE_INTERNAL', 'apply() after close()');
    const wanted = new Map<string, Listener>();
    const nextContexts = buildContexts(snapshot);
    for (const l of snapshot.listeners.values()) wanted.set(l.key, l);
    const egress = egressOf(snapshot);
    const removed: Running[] = [];
    for (const [key, r] of running) if (!wanted.has(key) && key !== egress?.key) removed.push(r);

    const opening: Running[] = [];
    /** Removed listeners closed early to free their port for a new one. */
    const freed: Running[] = [];
    for (const [key, l] of wanted) {
      if (running.has(key)) continue;
      // A new listener on a port a removed one still holds (its key changed): free the port first.
      const bindPort = bindPortOf(l);
      const clash = removed.find((r) => r.port === l.port);
      if (clash !== undefined && bindPort !== 0) {
        freed.push(clash);
        await clash.listener.close(0);
      }
      try {
        opening.push(await openListener(l, bindPort));
      } catch (err) {
        await Promise.all(opening.map((o) => o.listener.close(0)));
        await reopen(freed);
        throw err;
      }
    }
    if (egress !== null && !running.has(egress.key)) {
      const clash = removed.find((r) => r.port === egress.port);
      if (clash !== undefined && bindPortOf(egress) !== 0) {
        freed.push(clash);
        await clash.listener.close(0);
      }
      try {
        opening.push(await openEgress(egress.port, egress.key));
      } catch (err) {
        await Promise.all(opening.map((o) => o.listener.close(0)));
        await reopen(freed);
        throw err;
      }
    }

    // New handshakes see the new contexts from here on; established connections keep theirs.
    for (const [k, c] of nextContexts) live.set(k, c);
    current.swap(snapshot);
    for (const k of [...live.keys()]) if (!nextContexts.has(k)) live.delete(k);
    const liveContextKeys = new Set<string>();
    for (const l of snapshot.listeners.values())
      for (const s of l.tlsServers) {
        const t = s.tls ?? null;
        if (t === null) continue;
        liveContextKeys.add(t.key);
        t.credentials.forEach((_c, i) => liveContextKeys.add(`${t.key}|${i}`));
      }
    contexts.retain(liveContextKeys);
    for (const r of [...running.values(), ...opening]) {
      const l = wanted.get(r.key);
      if (l !== undefined) configureTls(r, l);
    }
    for (const o of opening) {
      running.set(o.key, o);
      log.info({ port: o.port, boundPort: o.listener.boundPort }, 'listener open');
    }
    warmEndpoints(owner, snapshot.clusters);
    // Key sets the new policies name are fetched now, not by the first request that needs them.
    const providers = jwtProvidersOf(snapshot);
    jwks.warm(providers);
    jwks.retain(providers);
    rateLimits.follow(snapshot.settings.rateLimitRedis ?? null);

    const grace = opts.removedListenerGraceMs ?? 30_000;
    for (const r of removed) {
      running.delete(r.key);
      log.info({ port: r.port }, 'listener removed; draining');
      void r.listener.close(grace);
    }
    const liveKeys = new Set<string>();
    for (const c of snapshot.clusters.values()) liveKeys.add(c.key);
    void closeUnusedPools(owner, liveKeys);
  }

  const stopRepairs = (): void => {
    if (repairTimer !== null) clearTimeout(repairTimer);
    repairTimer = null;
  };

  const gateway: Gateway = {
    apply(snapshot: Snapshot): Promise<void> {
      // Applies run one at a time, in call order.
      const next = chain.then(() => applyNow(snapshot));
      chain = next.catch(() => undefined);
      return next;
    },
    async close(): Promise<void> {
      closed = true;
      jwks.close();
      stopRepairs();
      await chain;
      const all = [...running.values()];
      running.clear();
      await Promise.all(all.map((r) => r.listener.close(0)));
      await releasePools(owner, true);
      releaseDnsNames(owner);
      await rateLimits.close();
    },
    startDraining(): void {
      for (const r of running.values()) r.listener.startDraining();
    },
    async drain(timeoutMs: number): Promise<void> {
      closed = true;
      jwks.close();
      stopRepairs();
      await chain;
      const all = [...running.values()];
      running.clear();
      await Promise.all(all.map((r) => r.listener.close(timeoutMs)));
      await releasePools(owner, false);
      releaseDnsNames(owner);
      await rateLimits.close();
    },
    current,
    boundPorts(): Map<number, number> {
      const out = new Map<number, number>();
      for (const r of running.values()) out.set(r.port, r.listener.boundPort);
      return out;
    },
    unboundPorts(): number[] {
      const out: number[] = [];
      const snapshot = current.get();
      for (const l of snapshot.listeners.values()) if (!running.has(l.key)) out.push(l.port);
      const egress = egressOf(snapshot);
      if (egress !== null && !running.has(egress.key)) out.push(egress.port);
      return out;
    },
    clusterStatus(): unknown {
      return poolStatus();
    },
    certificates(nowMs: number = Date.now()): CertificateInfo[] {
      return certificatesOf(current.get(), nowMs);
    },
    egressBlocked(): BlockedDestination[] {
      return opts.egressLedger?.entries() ?? [];
    },
    tlsStats,
  };
  return gateway;
}

/** Every jwt_authn provider of the snapshot's route tables. */
function jwtProvidersOf(snapshot: Snapshot): JwtProvider[] {
  const out: JwtProvider[] = [];
  const add = (t: RouteTable | null): void => {
    for (const f of t?.filters ?? []) if (f.kind === 'jwt-authn') out.push(...f.providers);
  };
  for (const l of snapshot.listeners.values()) {
    add(l.httpTable);
    for (const s of l.tlsServers) add(s.table);
  }
  return out;
}

/** Each credential the snapshot presents, once, with the servers presenting it. */
export function certificatesOf(snapshot: Snapshot, nowMs: number): CertificateInfo[] {
  const byFingerprint = new Map<string, { info: Omit<CertificateInfo, 'servers'>; servers: string[] }>();
  for (const l of snapshot.listeners.values()) {
    for (const s of l.tlsServers) {
      for (const c of s.tls?.credentials ?? []) {
        let e = byFingerprint.get(c.fingerprint + '|' + c.name);
        if (e === undefined) {
          e = {
            info: {
              name: c.name,
              source: c.source,
              subject: c.subject,
              issuer: c.issuer,
              dnsNames: c.dnsNames,
              fingerprint: c.fingerprint,
              keyType: c.keyType,
              notBefore: new Date(c.notBeforeMs).toISOString(),
              notAfter: new Date(c.notAfterMs).toISOString(),
              secondsUntilExpiry: Math.floor((c.notAfterMs - nowMs) / 1000),
            },
            servers: [],
          };
          byFingerprint.set(c.fingerprint + '|' + c.name, e);
        }
        e.servers.push(
          `${l.port}/${s.server.gatewayNamespace}/${s.server.gatewayName}/${s.server.serverIndex}`,
        );
      }
    }
  }
  return [...byFingerprint.values()]
    .map((e) => ({ ...e.info, servers: e.servers }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.fingerprint < b.fingerprint ? -1 : 1));
}

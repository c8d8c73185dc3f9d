/**
 * TLS metrics, read at scrape time from the data plane's plain counters (tls-stats.ts) and the
 * live snapshot's credentials: nothing runs on the handshake path.
 *
 * With --workers the primary merges every worker's registry (metrics.ts aggregateRegistries, prom-
 * client's AggregatorRegistry): counters sum, which is right for handshakes; the certificate
 * gauges take the minimum instead, since every worker presents the same certificates and a sum
 * would multiply the time left by the number of workers.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { HANDSHAKE_ERROR_REASONS, type CertificateInfo, type TlsStats } from './tls-stats.ts';

export interface TlsMetricsSources {
  /** The data plane's counters (Gateway.tlsStats). */
  stats(): TlsStats;
  /** Credentials the live snapshot presents (Gateway.certificates). */
  certificates(nowMs: number): readonly CertificateInfo[];
  /** Tests. */
  now?(): number;
}

export function registerTlsMetrics(registry: Registry, sources: TlsMetricsSources): void {
  const now = sources.now ?? Date.now;
  new Counter({
    name: 'sluice_tls_handshakes_total',
    help: 'TLS handshakes completed on terminated servers.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.stats().handshakes);
    },
  });
  new Counter({
    name: 'sluice_tls_handshake_errors_total',
    help: 'TLS handshakes refused, by reason (unknown_sni, no_sni, client_cert_revoked, ...).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const reason of HANDSHAKE_ERROR_REASONS) this.inc({ reason }, 0);
      for (const [reason, n] of sources.stats().handshakeErrors) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: 'sluice_tls_secure_contexts_built_total',
    help: 'TLS secure contexts built (cache misses: once per distinct certificate and settings, never per handshake).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.stats().contextsBuilt);
    },
  });

  /** credential|source → [seconds left, notAfter seconds]; the soonest when one is listed twice. */
  const read = (): Map<
    string,
    { labels: { credential: string; source: string }; left: number; at: number }
  > => {
    const out = new Map<
      string,
      { labels: { credential: string; source: string }; left: number; at: number }
    >();
    const nowMs = now();
    for (const c of sources.certificates(nowMs)) {
      const atMs = Date.parse(c.notAfter);
      const key = `${c.name}\0${c.source}`;
      const seen = out.get(key);
      if (seen !== undefined && seen.at * 1000 <= atMs) continue;
      out.set(key, {
        labels: { credential: c.name, source: c.source },
        left: (atMs - nowMs) / 1000,
        at: atMs / 1000,
      });
    }
    return out;
  };
  new Gauge({
    name: 'sluice_tls_certificate_expiry_seconds',
    help: 'Seconds until each served certificate expires (negative once expired); alert on < 14 days.',
    labelNames: ['credential', 'source'],
    aggregator: 'min',
    registers: [registry],
    collect() {
      // Credentials come and go with reloads: start from nothing each scrape.
      this.reset();
      for (const e of read().values()) this.set(e.labels, Math.floor(e.left));
    },
  });
  new Gauge({
    name: 'sluice_tls_certificate_not_after_seconds',
    help: 'Unix time each served certificate expires (its notAfter).',
    labelNames: ['credential', 'source'],
    aggregator: 'min',
    registers: [registry],
    collect() {
      this.reset();
      for (const e of read().values()) this.set(e.labels, e.at);
    },
  });
}

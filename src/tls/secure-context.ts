/**
 * Secure contexts built once per distinct TLS settings (content hash `TlsSettings.key`) and
 * reused by every handshake; never built per handshake. Building can fail (a key OpenSSL refuses):
 * the caller keeps the previous context for those names.
 */
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

/** Structural copy of snapshot TlsSettings (tls/ may not import snapshot/). */
export interface ContextSettings {
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'OPTIONAL_MUTUAL';
  readonly credentials: readonly { readonly certPem: string; readonly keyPem: string }[];
  readonly clientCaPem: string | null;
  /** PEM CRLs checked against client certificates; absent or null = none. */
  readonly crlPem?: string | null;
  readonly minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  readonly ciphers: string | null;
  readonly key: string;
}

/** Envoy's default server ciphers for TLS ≤1.2 (GW-17); TLS 1.3 suites stay OpenSSL's. */
export const DEFAULT_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384';

const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export function contextOptions(s: ContextSettings): SecureContextOptions {
  // Below TLS 1.2 OpenSSL's security level 1 is needed for the old suites to be offered at all.
  const legacy = s.minVersion === 'TLSv1' || s.minVersion === 'TLSv1.1';
  const ciphers = (s.ciphers ?? DEFAULT_CIPHERS) + ':' + TLS13_SUITES + (legacy ? ':@SECLEVEL=0' : '');
  return {
    cert: s.credentials.map((c) => c.certPem),
    key: s.credentials.map((c) => c.keyPem),
    ...(s.clientCaPem !== null ? { ca: s.clientCaPem } : {}),
    // Every CRL of the PEM is loaded (one per CA, as Envoy takes them); Node then sets
    // CRL_CHECK|CRL_CHECK_ALL, Envoy's default too: every CA of a chain needs a current CRL.
    ...(s.crlPem ? { crl: s.crlPem } : {}),
    minVersion: s.minVersion,
    maxVersion: s.maxVersion,
    ciphers,
    honorCipherOrder: true,
    // Session tickets stay on (OpenSSL's default; a rotated certificate gets a new context and
    // so new ticket keys, which ends resumption of sessions made with the old one).
    sessionTimeout: 300,
  };
}

export interface ContextCache {
  /** The context for these settings, built now if new; throws when OpenSSL refuses them. */
  get(s: ContextSettings): SecureContext;
  /** Drops contexts whose key is not in `live` (after a swap). */
  retain(live: ReadonlySet<string>): void;
  readonly size: number;
}

export function createContextCache(onBuild?: (key: string) => void): ContextCache {
  const byKey = new Map<string, SecureContext>();
  return {
    get(s: ContextSettings): SecureContext {
      let ctx = byKey.get(s.key);
      if (ctx === undefined) {
        ctx = createSecureContext(contextOptions(s));
        byKey.set(s.key, ctx);
        onBuild?.(s.key);
      }
      return ctx;
    },
    retain(live: ReadonlySet<string>): void {
      for (const k of byKey.keys()) if (!live.has(k)) byKey.delete(k);
    },
    get size(): number {
      return byKey.size;
    },
  };
}

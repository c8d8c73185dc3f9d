/**
 * Key sets for jwt_authn (RA-6). Inline `jwks` is prepared once per snapshot provider; a
 * `jwksUri` is fetched with undici, cached per URI for every snapshot that names it, refreshed on
 * a schedule (Istio's 20 minutes) and again when a token names a `kid` the cached set lacks (at
 * most once per refetch floor, so a flood of unknown kids cannot hammer the issuer). During an
 * outage the last good set keeps serving; a URI never fetched fails closed: every token is
 * refused while requests without one pass, as istiod's inlined placeholder key makes Envoy do.
 */
import { request } from 'undici';
import type { JwtProvider } from '../../snapshot/types.ts';
import { prepareKeySet, type PreparedKeySet } from './jwt-verify.ts';
import { parseJwks } from '../../util/jwks.ts';

export interface JwksStoreOptions {
  /** Periodic refresh of a fetched set. Default 20 min (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL). */
  readonly refreshMs?: number;
  /** The least time between two fetches caused by unknown kids. Default 30 s. */
  readonly unknownKidFloorMs?: number;
  /** First retry after a failed fetch; doubles up to refreshMs. Default 5 s. */
  readonly retryMs?: number;
  /** Largest JWKS document accepted. Default 1 MiB. */
  readonly maxBytes?: number;
  /** Per fetch: result and the URI (never a key or token). */
  readonly onFetch?: (uri: string, result: 'ok' | 'error', error: string | null) => void;
  readonly now?: () => number;
  /** Never fetch (`sluice explain`): remote key sets stay unknown. */
  readonly offline?: boolean;
}

export interface JwksEntryStatus {
  readonly uri: string;
  /** ms since the keys were fetched; null = never fetched. */
  readonly ageMs: number | null;
  readonly keys: number;
  readonly failures: number;
  readonly lastError: string | null;
}

export interface JwksStore {
  /** The key set for `provider`: now, or once the first fetch settles; null = none (fail closed). */
  keysFor(provider: JwtProvider): PreparedKeySet | null | Promise<PreparedKeySet | null>;
  /**
   * A token's `kid` is not in the set: refetch unless one happened within the floor. Resolves to
   * the set to try once more, or null when no refetch was allowed or it brought nothing new.
   */
  refreshForUnknownKid(provider: JwtProvider): Promise<PreparedKeySet | null>;
  /** Starts fetching every remote set `providers` use (after a config is applied). */
  warm(providers: readonly JwtProvider[]): void;
  /** Drops URIs no live provider uses any more. */
  retain(providers: readonly JwtProvider[]): void;
  status(): JwksEntryStatus[];
  close(): void;
}

interface RemoteEntry {
  readonly uri: string;
  timeoutMs: number;
  keys: PreparedKeySet | null;
  keyCount: number;
  fetchedAtMs: number | null;
  lastFetchStartMs: number;
  inflight: Promise<PreparedKeySet | null> | null;
  failures: number;
  lastError: string | null;
  timer: NodeJS.Timeout | null;
}

export function createJwksStore(opts: JwksStoreOptions = {}): JwksStore {
  const refreshMs = opts.refreshMs ?? 20 * 60_000;
  const floorMs = opts.unknownKidFloorMs ?? 30_000;
  const retryMs = opts.retryMs ?? 5_000;
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const now = opts.now ?? Date.now;
  const remote = new Map<string, RemoteEntry>();
  const inline = new WeakMap<JwtProvider, PreparedKeySet>();
  let closed = false;

  const schedule = (e: RemoteEntry, delayMs: number): void => {
    if (closed) return;
    if (e.timer !== null) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = null;
      void fetchNow(e);
    }, delayMs);
    e.timer.unref();
  };

  const fetchNow = (e: RemoteEntry): Promise<PreparedKeySet | null> => {
    if (e.inflight !== null) return e.inflight;
    e.lastFetchStartMs = now();
    const p = download(e.uri, e.timeoutMs, maxBytes).then(
      (keys) => {
        const set = prepareKeySet(keys);
        e.keys = set;
        e.keyCount = set.keys.length;
        e.fetchedAtMs = now();
        e.failures = 0;
        e.lastError = null;
        opts.onFetch?.(e.uri, 'ok', null);
        schedule(e, refreshMs);
        return set;
      },
      (err: unknown) => {
        e.failures += 1;
        e.lastError = err instanceof Error ? err.message : String(err);
        opts.onFetch?.(e.uri, 'error', e.lastError);
        // Keep serving the last good set; retry sooner than the refresh while failing.
        schedule(e, Math.min(refreshMs, retryMs * 2 ** Math.min(e.failures - 1, 10)));
        return e.keys;
      },
    );
    e.inflight = p.finally(() => {
      e.inflight = null;
    });
    return e.inflight;
  };

  const entryFor = (provider: JwtProvider): RemoteEntry | null => {
    const src = provider.jwks;
    if (src.kind !== 'remote') return null;
    let e = remote.get(src.uri);
    if (e === undefined) {
      e = {
        uri: src.uri,
        timeoutMs: src.timeoutMs,
        keys: null,
        keyCount: 0,
        fetchedAtMs: null,
        lastFetchStartMs: 0,
        inflight: null,
        failures: 0,
        lastError: null,
        timer: null,
      };
      remote.set(src.uri, e);
    }
    e.timeoutMs = src.timeoutMs;
    return e;
  };

  return {
    keysFor(provider) {
      const src = provider.jwks;
      if (src.kind === 'inline') {
        let set = inline.get(provider);
        if (set === undefined) {
          set = prepareKeySet(src.keys);
          inline.set(provider, set);
        }
        return set;
      }
      const e = entryFor(provider)!;
      if (e.keys !== null) return e.keys;
      if (closed || opts.offline === true) return null;
      // Never fetched: wait for the fetch under way (bounded by its timeout), else start one.
      if (e.inflight !== null) return e.inflight;
      if (e.failures > 0 && now() - e.lastFetchStartMs < floorMs) return null;
      return fetchNow(e);
    },
    async refreshForUnknownKid(provider) {
      const e = entryFor(provider);
      if (e === null || closed || opts.offline === true) return null;
      if (e.inflight !== null) return e.inflight;
      if (now() - e.lastFetchStartMs < floorMs) return null;
      const before = e.keys;
      const after = await fetchNow(e);
      return after !== before ? after : null;
    },
    warm(providers) {
      for (const p of providers) {
        const e = entryFor(p);
        if (e !== null && e.keys === null && e.inflight === null) void fetchNow(e);
      }
    },
    retain(providers) {
      const live = new Set<string>();
      for (const p of providers) if (p.jwks.kind === 'remote') live.add(p.jwks.uri);
      for (const [uri, e] of remote) {
        if (live.has(uri)) continue;
        if (e.timer !== null) clearTimeout(e.timer);
        remote.delete(uri);
      }
    },
    status() {
      const t = now();
      return [...remote.values()]
        .map((e) => ({
          uri: e.uri,
          ageMs: e.fetchedAtMs === null ? null : t - e.fetchedAtMs,
          keys: e.keyCount,
          failures: e.failures,
          lastError: e.lastError,
        }))
        .sort((a, b) => (a.uri < b.uri ? -1 : 1));
    },
    close() {
      closed = true;
      for (const e of remote.values()) if (e.timer !== null) clearTimeout(e.timer);
    },
  };
}

/** GET the JWKS, bounded in time and size; throws with a short reason. */
async function download(
  uri: string,
  timeoutMs: number,
  maxBytes: number,
): Promise<readonly Readonly<Record<string, unknown>>[]> {
  const res = await request(uri, {
    method: 'GET',
    headers: { accept: 'application/json' },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.body.destroy();
      throw new Error(`JWKS larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const keys = parseJwks(Buffer.concat(chunks).toString('utf8'));
  if (keys === null) throw new Error('not a JSON Web Key Set');
  return keys;
}

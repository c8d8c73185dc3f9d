/**
 * DNS answers, one cache for the process: ServiceEntry DNS / DNS_ROUND_ROBIN clusters (SE-2) and
 * the egress proxy's own resolutions. An answer is kept for its records' TTL (the smallest; as
 * Envoy's `respect_dns_ttl`, a TTL of 0 falls back to the refresh rate, 30 s here, which is also
 * kept for names the system resolver answers without one, from the hosts file); a failed lookup keeps the previous answer and tries again after
 * 60 s, as Envoy's DNS clusters do. Clusters read the cached list and refresh off the hot path
 * (stale is fine while a refresh runs); the proxy waits for a fresh answer (`freshAnswer`).
 *
 * Names the applied config's clusters resolve are kept apart from the names clients of the proxy
 * choose: those are bounded (`AD_HOC_DNS_NAMES`, oldest dropped first), the configured ones are
 * never dropped for them, so a client asking for many names cannot make configured traffic
 * resolve again. Envoy keeps the two apart too (DNS clusters resolve for themselves; the dynamic
 * forward proxy's cache holds at most `max_hosts`).
 */
import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export const DNS_TTL_MS = 30_000;
export const DNS_RETRY_MS = 60_000;
/** Names kept at most that no applied config resolves: the proxy resolves names clients choose. */
export const AD_HOC_DNS_NAMES = 4096;

export interface DnsAnswer {
  readonly name: string;
  /** Empty when the name has never resolved. */
  addresses: readonly string[];
  /** Changes (process-wide increasing) whenever `addresses` does; 0 = never resolved. */
  version: number;
  refreshAtMs: number;
  pending: Promise<DnsAnswer> | null;
  lastError: unknown;
}

/** One record: an address, with its TTL in seconds when the resolver knows it. */
export type DnsRecord = string | { readonly address: string; readonly ttl: number };
export type DnsResolve = (name: string) => Promise<readonly DnsRecord[]>;

/** Names some running gateway's clusters resolve (`keepDnsNames`): bounded by the config. */
const configured = new Map<string, DnsAnswer>();
/** Every other name, in the order first asked; at most AD_HOC_DNS_NAMES. */
const adHoc = new Map<string, DnsAnswer>();
/** The names each running gateway (by its owner object) keeps; tests run several in a process. */
const namesByOwner = new Map<object, ReadonlySet<string>>();
let versions = 0;

const resolver = new Resolver();

/** A and AAAA with their TTLs; names only the system knows (hosts file) through lookup, without. */
async function systemResolve(name: string): Promise<DnsRecord[]> {
  const [v4, v6] = await Promise.allSettled([
    resolver.resolve4(name, { ttl: true }),
    resolver.resolve6(name, { ttl: true }),
  ]);
  const found: DnsRecord[] = [
    ...(v4.status === 'fulfilled' ? v4.value : []),
    ...(v6.status === 'fulfilled' ? v6.value : []),
  ];
  if (found.length > 0) return found;
  return (await lookup(name, { all: true, order: 'ipv4first' })).map((a) => a.address);
}

let resolveAll: DnsResolve = systemResolve;

/** Test hook: replace the resolver (null: the system's again); forgets every answer. */
export function setDnsResolverForTests(fn: DnsResolve | null): void {
  configured.clear();
  adHoc.clear();
  namesByOwner.clear();
  resolveAll = fn ?? systemResolve;
}

/** Test hook: how many answers each part of the cache holds. */
export function dnsCacheSizesForTests(): { configured: number; adHoc: number } {
  return { configured: configured.size, adHoc: adHoc.size };
}

/**
 * `owner`'s applied config resolves `names`: they stay cached whatever clients ask. A name no
 * running gateway keeps any longer joins the ad-hoc names (its answer kept, droppable again).
 */
export function keepDnsNames(owner: object, names: ReadonlySet<string>): void {
  namesByOwner.set(owner, names);
  for (const name of names) {
    if (configured.has(name)) continue;
    const a = adHoc.get(name) ?? newAnswer(name);
    adHoc.delete(name);
    configured.set(name, a);
  }
  letGoUnkept();
}

/** `owner` is gone: the names only it kept become ad-hoc names. */
export function releaseDnsNames(owner: object): void {
  if (namesByOwner.delete(owner)) letGoUnkept();
}

function letGoUnkept(): void {
  for (const [name, a] of configured) {
    if (keptByAny(name)) continue;
    configured.delete(name);
    rememberAdHoc(a);
  }
}

function keptByAny(name: string): boolean {
  for (const names of namesByOwner.values()) if (names.has(name)) return true;
  return false;
}

function rememberAdHoc(a: DnsAnswer): void {
  if (adHoc.size >= AD_HOC_DNS_NAMES) adHoc.delete(adHoc.keys().next().value!);
  adHoc.set(a.name, a);
}

function newAnswer(name: string): DnsAnswer {
  if (isIP(name) !== 0)
    return {
      name,
      addresses: [name],
      version: ++versions,
      refreshAtMs: Infinity,
      pending: null,
      lastError: null,
    };
  return { name, addresses: [], version: 0, refreshAtMs: 0, pending: null, lastError: null };
}

/** The cached answer for `name`, starting a refresh when it is stale or missing (never waits). */
export function cachedAnswer(name: string, nowMs: number): DnsAnswer {
  let a = configured.get(name) ?? adHoc.get(name);
  if (a === undefined) {
    a = newAnswer(name);
    rememberAdHoc(a);
  }
  if (nowMs >= a.refreshAtMs && a.pending === null) refresh(a);
  return a;
}

/** Resolves once `name` has had at least one lookup finish (success or failure). */
export function settledAnswer(name: string): Promise<DnsAnswer> {
  const a = cachedAnswer(name, Date.now());
  return a.pending ?? Promise.resolve(a);
}

/**
 * An answer within its TTL: the cached one, or (past it, or never asked) the refresh it waits
 * for. A failed refresh leaves the previous answer, which is then used until the retry.
 */
export function freshAnswer(name: string, nowMs: number): DnsAnswer | Promise<DnsAnswer> {
  const a = cachedAnswer(name, nowMs);
  return a.pending ?? a;
}

function refresh(a: DnsAnswer): void {
  a.pending = resolveAll(a.name).then(
    (records) => {
      let ttlMs = Infinity;
      const addrs: string[] = [];
      for (const r of records) {
        if (typeof r === 'string') {
          addrs.push(r);
          ttlMs = Math.min(ttlMs, DNS_TTL_MS);
        } else {
          addrs.push(r.address);
          ttlMs = Math.min(ttlMs, r.ttl > 0 ? r.ttl * 1000 : DNS_TTL_MS);
        }
      }
      if (!sameList(addrs, a.addresses)) {
        a.addresses = addrs;
        a.version = ++versions;
      }
      a.lastError = null;
      a.refreshAtMs = Date.now() + (ttlMs === Infinity ? DNS_TTL_MS : ttlMs);
      a.pending = null;
      return a;
    },
    (err: unknown) => {
      a.lastError = err;
      a.refreshAtMs = Date.now() + DNS_RETRY_MS;
      a.pending = null;
      return a;
    },
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

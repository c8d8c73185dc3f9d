/**
 * DNS answers for `dns` endpoint sources (ServiceEntry DNS / DNS_ROUND_ROBIN, SE-2). Answers are
 * cached for 30 s and refreshed off the hot path: a request reads the cached list (stale is fine
 * while a refresh runs); only the very first request for a name waits for a lookup. A failed
 * refresh keeps the previous answer and tries again after 60 s, as Envoy's DNS clusters do.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export const DNS_TTL_MS = 30_000;
export const DNS_RETRY_MS = 60_000;

export interface DnsAnswer {
  readonly name: string;
  /** Empty when the name has never resolved. */
  addresses: readonly string[];
  /** Bumped whenever `addresses` changes, so derived host sets can be rebuilt cheaply. */
  version: number;
  refreshAtMs: number;
  pending: Promise<DnsAnswer> | null;
  lastError: unknown;
}

const answers = new Map<string, DnsAnswer>();

/** Test hook: replace the resolver. */
let resolveAll = async (name: string): Promise<string[]> => {
  const found = await lookup(name, { all: true, order: 'ipv4first' });
  return found.map((a) => a.address);
};

export function setDnsResolverForTests(fn: ((name: string) => Promise<string[]>) | null): void {
  answers.clear();
  resolveAll =
    fn ?? (async (name) => (await lookup(name, { all: true, order: 'ipv4first' })).map((a) => a.address));
}

/** The cached answer for `name`, starting a refresh when it is stale or missing (never waits). */
export function cachedAnswer(name: string, nowMs: number): DnsAnswer {
  let a = answers.get(name);
  if (a === undefined) {
    if (isIP(name) !== 0) {
      a = { name, addresses: [name], version: 1, refreshAtMs: Infinity, pending: null, lastError: null };
      answers.set(name, a);
      return a;
    }
    a = { name, addresses: [], version: 0, refreshAtMs: 0, pending: null, lastError: null };
    answers.set(name, a);
  }
  if (nowMs >= a.refreshAtMs && a.pending === null) refresh(a);
  return a;
}

/** Resolves once `name` has had at least one lookup finish (success or failure). */
export function settledAnswer(name: string): Promise<DnsAnswer> {
  const a = cachedAnswer(name, Date.now());
  return a.pending ?? Promise.resolve(a);
}

function refresh(a: DnsAnswer): void {
  a.pending = resolveAll(a.name).then(
    (addrs) => {
      if (!sameList(addrs, a.addresses)) {
        a.addresses = addrs;
        a.version += 1;
      }
      a.lastError = null;
      a.refreshAtMs = Date.now() + DNS_TTL_MS;
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

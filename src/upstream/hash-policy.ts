/**
 * A request's consistent-hash key (DR-4), as Envoy's hash policies compute it
 * (source/common/http/hash_policy.cc): xxHash64 of a header's values, a cookie's value, the
 * client IP or a query parameter's first value; several policies fold together (rotate, xor).
 * Computed once per request and only when the chosen cluster balances by hash.
 */
import type { IncomingMessage } from 'node:http';
import type { HashPolicy, Snapshot } from '../snapshot/types.ts';
import { hiOf, loOf, xxHash64 } from '../util/xxhash.ts';
import {
  peerAddress,
  rawHeader,
  trustedClientAddress,
  unmapped,
  withPort,
} from '../observability/request-facts.ts';

export interface RequestHash {
  readonly hi: number;
  readonly lo: number;
  /** The cookie issued for this request (policy with a ttl, cookie absent), else null. */
  readonly setCookie: string | null;
}

/** What hashing reads of a request (forward.ts's context has it all). */
export interface HashedRequest {
  readonly req: IncomingMessage;
  readonly snapshot: Snapshot;
  readonly method: string;
  readonly scheme: string;
  readonly authority: string;
  readonly path: string;
  readonly query: string;
}

const MASK64 = (1n << 64n) - 1n;

/** The key of `ctx` under `policies`, null when none applies (the balancer then picks at random). */
export function requestHash(ctx: HashedRequest, policies: readonly HashPolicy[]): RequestHash | null {
  let hash: bigint | null = null;
  let setCookie: string | null = null;
  for (const p of policies) {
    let v: bigint | null = null;
    switch (p.kind) {
      case 'header':
        v = headerHash(ctx, p.name);
        break;
      case 'cookie': {
        const value = cookieValue(ctx.req.rawHeaders, p.name);
        if (value !== '') v = xxHash64(value);
        else if (p.issue !== null) {
          const made = issuedValue(ctx);
          setCookie = p.issue.prefix + made + p.issue.suffix;
          v = xxHash64(made);
        }
        break;
      }
      case 'source-ip': {
        const ip = clientIp(ctx);
        if (ip !== '') v = xxHash64(ip);
        break;
      }
      case 'query': {
        const value = firstQueryValue(ctx.query, p.name);
        if (value !== null) v = xxHash64(value);
        break;
      }
    }
    if (v !== null) hash = hash === null ? v : (((hash << 1n) | (hash >> 63n)) & MASK64) ^ v;
  }
  if (hash === null) return setCookie === null ? null : { hi: randomHalf(), lo: randomHalf(), setCookie };
  return { hi: hiOf(hash), lo: loOf(hash), setCookie };
}

function randomHalf(): number {
  return (Math.random() * 4294967296) >>> 0;
}

/** Every value of the header, sorted, hashed in a chain (Envoy's HashUtil::xxHash64 of a span). */
function headerHash(ctx: HashedRequest, name: string): bigint | null {
  let single: string | null = null;
  let many: string[] | null = null;
  if (name === ':authority' || name === 'host') single = ctx.authority;
  else if (name === ':method') single = ctx.method;
  else if (name === ':path') single = ctx.query === '' ? ctx.path : ctx.path + '?' + ctx.query;
  else if (name === ':scheme') single = ctx.scheme;
  else {
    const raw = ctx.req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length !== name.length || n.toLowerCase() !== name) continue;
      if (single === null) single = raw[i + 1]!;
      else (many ??= [single]).push(raw[i + 1]!);
    }
  }
  if (single === null) return null;
  if (many === null) return xxHash64(single);
  many.sort();
  let seed = 0n;
  for (const v of many) seed = xxHash64(v, seed);
  return seed;
}

/** Envoy's Utility::parseCookieValue: the first `name=value` pair of any Cookie header, quotes removed. */
export function cookieValue(raw: readonly string[], name: string): string {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length !== 6 || n.toLowerCase() !== 'cookie') continue;
    for (const part of raw[i + 1]!.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trimStart() !== name) continue;
      const v = part.slice(eq + 1);
      return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
    }
  }
  return '';
}

/** Envoy's issued cookie value: hex xxHash64 of the client's and the gateway's `address:port`. */
function issuedValue(ctx: HashedRequest): string {
  const socket = ctx.req.socket;
  const hops = ctx.snapshot.settings.numTrustedProxies;
  // Behind trusted proxies Envoy's remote address comes from x-forwarded-for, with port 0.
  const remote = hops > 0 ? withPort(clientIp(ctx), 0) : withPort(peerAddress(ctx.req), socket.remotePort);
  const local = withPort(unmapped(socket.localAddress), socket.localPort);
  return xxHash64((remote ?? '') + (local ?? ''))
    .toString(16)
    .padStart(16, '0');
}

/** The client address after trusted-proxy handling (DP-1), as `useSourceIp` hashes it. */
function clientIp(ctx: HashedRequest): string {
  const hops = ctx.snapshot.settings.numTrustedProxies;
  const peer = peerAddress(ctx.req);
  if (hops === 0) return peer;
  return trustedClientAddress(rawHeader(ctx.req.rawHeaders, 'x-forwarded-for'), peer, hops);
}

/** The raw (undecoded) value of the first `name` parameter; `?name` alone is ''. */
export function firstQueryValue(query: string, name: string): string | null {
  if (query === '') return null;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', start);
    if (eq >= 0 && eq < end) {
      if (eq - start === name.length && query.startsWith(name, start)) return query.slice(eq + 1, end);
    } else if (end - start === name.length && query.startsWith(name, start)) return '';
    start = end + 1;
  }
  return null;
}

/**
 * What a host name in a request target really is, decided once and the same way a URL parser
 * or resolver downstream would decide it: a name, or an IP address in one of the many spellings
 * (`127.1`, `2130706433`, `0x7f.0.0.1`, `017700000001`, `[::ffff:127.0.0.1]`). An egress
 * allowlist that compared only strings would let any of those through, so every spelling is
 * parsed to its address, and only the plain (canonical) spelling may ever match a named address.
 */
import { BlockList, isIP, isIPv6 } from 'node:net';

export type HostLiteral =
  | { readonly kind: 'name'; readonly name: string }
  /**
   * `address`: the canonical text (dotted quad, or compressed IPv6 without brackets; an
   * IPv4-mapped IPv6 address is unwrapped to its IPv4 address). `canonical`: the request spelled
   * it that way.
   */
  | { readonly kind: 'ip'; readonly address: string; readonly family: 4 | 6; readonly canonical: boolean }
  | { readonly kind: 'invalid'; readonly reason: string };

const NAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;
/** WHATWG URL "ends in a number": such a host is parsed as IPv4 by browsers and fetch. */
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/;
const MAPPED = /^::ffff:(?:0:)?/;

/**
 * Lowercase, one trailing dot removed: the one normal form names are compared in. Returns null
 * when the name still ends in a dot or is empty.
 */
export function normaliseHostName(raw: string): string | null {
  let h = raw.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === '' || h.endsWith('.')) return null;
  return h;
}

/** Classifies a normalised host (brackets of an IPv6 literal already removed). */
export function classifyHost(host: string): HostLiteral {
  if (host.includes(':')) {
    // Zone ids (`%eth0`) are refused: isIPv6 accepts them, URLs do not.
    if (!isIPv6(host) || host.includes('%')) return { kind: 'invalid', reason: 'not a valid IPv6 address' };
    const canon = new URL(`http://[${host}]/`).hostname.slice(1, -1);
    const mapped = MAPPED.exec(canon);
    if (mapped !== null) {
      const tail = canon.slice(mapped[0].length);
      const v4 = isIP(tail) === 4 ? tail : hexPairToIpv4(tail);
      if (v4 !== null) return { kind: 'ip', address: v4, family: 4, canonical: false };
    }
    return { kind: 'ip', address: canon, family: 6, canonical: canon === host };
  }
  const labels = host.split('.');
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) {
    let parsed: string;
    try {
      parsed = new URL(`http://${host}/`).hostname;
    } catch {
      return { kind: 'invalid', reason: 'not a valid IPv4 address' };
    }
    if (isIP(parsed) !== 4) return { kind: 'invalid', reason: 'not a valid IPv4 address' };
    return { kind: 'ip', address: parsed, family: 4, canonical: parsed === host };
  }
  if (host.length > 253 || !NAME.test(host)) return { kind: 'invalid', reason: 'not a valid host name' };
  return { kind: 'name', name: host };
}

/** `7f00:1` → `127.0.0.1` (the hex spelling of an IPv4-mapped address's low 32 bits). */
function hexPairToIpv4(tail: string): string | null {
  const m = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(tail);
  if (m === null) return null;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * Where a name that is not itself on the allowlist must never lead: loopback, private,
 * carrier-grade NAT, link-local (169.254.169.254 and the other cloud metadata addresses live
 * there), unspecified, benchmarking, multicast and reserved ranges, and their IPv6 counterparts.
 */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  INTERNAL.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  INTERNAL.addSubnet(net, bits, 'ipv6');

/** True for an address inside the ranges above (an IPv4-mapped IPv6 address is judged as IPv4). */
export function isInternalAddress(address: string): boolean {
  const c = classifyHost(address.toLowerCase());
  if (c.kind !== 'ip') return true;
  return INTERNAL.check(c.address, c.family === 4 ? 'ipv4' : 'ipv6');
}

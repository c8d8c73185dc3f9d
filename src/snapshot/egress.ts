/**
 * The egress allowlist decision (SE-4 for the forward proxy): may a client reach `host:port`?
 * Names are normalised once (lower case, one trailing dot removed) and IP literals parsed in every
 * spelling before anything is compared, so a disguised target cannot match by accident or slip
 * past. Pure: the data plane resolves and connects afterwards (dataplane/forward-proxy.ts).
 */
import { classifyHost, normaliseHostName } from '../util/host-literal.ts';
import type { EgressHost, EgressPolicy, EgressPort } from './types.ts';

/** Stable reason codes: the metric label, the access log's response details, the suggest report. */
export type EgressBlockReason =
  | 'invalid_target'
  | 'userinfo'
  | 'host_mismatch'
  | 'ip_literal'
  | 'not_in_registry'
  | 'port_not_allowed'
  | 'internal_address'
  | 'sni_not_allowed'
  | 'no_sni'
  | 'dns_failure';

export interface EgressAllowed {
  readonly allowed: true;
  /** The normalised host (or canonical IP). */
  readonly host: string;
  /** Null under ALLOW_ANY for a destination no ServiceEntry names. */
  readonly entry: EgressHost | null;
  readonly port: EgressPort | null;
  /** The target is an IP literal a ServiceEntry names: connect to it, no resolution. */
  readonly literal: string | null;
  /**
   * The name was allowed by a wildcard or by ALLOW_ANY, not named exactly: whatever it resolves
   * to must not be internal (SSRF).
   */
  readonly checkResolved: boolean;
}

export interface EgressBlocked {
  readonly allowed: false;
  readonly host: string;
  readonly reason: EgressBlockReason;
  /** Short and printable: goes in the 403 body. */
  readonly detail: string;
}

export type EgressDecision = EgressAllowed | EgressBlocked;

export function blocked(host: string, reason: EgressBlockReason, detail: string): EgressBlocked {
  return { allowed: false, host: printable(host), reason, detail };
}

/** At most 253 visible ASCII characters: what a client sent is echoed, never raw. */
export function printable(s: string): string {
  const cut = s.length > 253 ? s.slice(0, 253) : s;
  return cut.replace(/[^\x21-\x7e]/g, '?');
}

function findHost(policy: EgressPolicy, name: string): EgressHost | null {
  const exact = policy.exact.get(name);
  if (exact !== undefined) return exact;
  for (const w of policy.wildcards)
    if (name.length > w.suffix.length && name.endsWith(w.suffix)) return w.entry;
  return null;
}

function findAddress(policy: EgressPolicy, address: string, family: 4 | 6): EgressHost | null {
  const named = policy.addresses.get(address);
  if (named !== undefined) return named;
  for (const s of policy.subnets) if (s.test(address, family)) return s.entry;
  return null;
}

/** The verdict for a request target's host (as the client wrote it, brackets removed) and port. */
export function decideEgress(policy: EgressPolicy, rawHost: string, port: number): EgressDecision {
  const host = normaliseHostName(rawHost);
  if (host === null) return blocked(rawHost, 'invalid_target', 'not a valid host name');
  const c = classifyHost(host);
  if (c.kind === 'invalid') return blocked(host, 'invalid_target', c.reason);
  let entry: EgressHost | null;
  let literal: string | null = null;
  if (c.kind === 'ip') {
    if (!c.canonical)
      return blocked(host, 'ip_literal', `an IP address spelt other than plainly (it is ${c.address})`);
    entry = findAddress(policy, c.address, c.family);
    if (entry === null)
      return blocked(
        host,
        'ip_literal',
        'an IP address that no ServiceEntry names in addresses or endpoints',
      );
    literal = c.address;
  } else {
    entry = findHost(policy, c.name);
    if (entry === null) {
      if (policy.mode === 'ALLOW_ANY')
        return { allowed: true, host: c.name, entry: null, port: null, literal: null, checkResolved: true };
      return blocked(
        host,
        'not_in_registry',
        'no ServiceEntry names this host (outboundTrafficPolicy REGISTRY_ONLY)',
      );
    }
  }
  const p = entry.ports.get(port);
  if (p === undefined) {
    const allowed = [...entry.ports.keys()].join(', ') || 'none';
    return blocked(
      host,
      'port_not_allowed',
      `port ${port} is not a port of ${entry.source} (ports: ${allowed})`,
    );
  }
  return { allowed: true, host, entry, port: p, literal, checkResolved: literal === null && entry.wildcard };
}

/** Whether a tunnelled TLS session to `sni` may run on a tunnel allowed as `tunnel` (issue 13 item 3). */
export function decideSni(
  policy: EgressPolicy,
  tunnel: EgressAllowed,
  sni: string,
  port: number,
): EgressDecision {
  if (sni === '') {
    // Only an address a ServiceEntry names outright may carry TLS without a name to check.
    if (tunnel.literal !== null) return tunnel;
    return blocked(tunnel.host, 'no_sni', 'the tunnelled TLS ClientHello names no server (SNI)');
  }
  const d = decideEgress(policy, sni, port);
  if (d.allowed) return d;
  return blocked(
    sni,
    'sni_not_allowed',
    `the tunnelled TLS session is for ${d.host}, which is not allowed: ${d.detail}`,
  );
}

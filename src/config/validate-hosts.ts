import { isIP } from 'node:net';

/**
 * Host-name and label checks of Istio's validation (pkg/config/validation, pkg/config/labels,
 * pkg/config/host). Inputs are compared lowercased: sluice lowercases hosts (normalise.ts).
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every(isDns1123Label);
}

function checkLabels(domain: string, labels: readonly string[]): string | undefined {
  const tld = labels[labels.length - 1]!;
  if (/^\d+$/.test(tld))
    return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    // A trailing dot ("istio.io.") is allowed.
    if (i === labels.length - 1 && label === '') return undefined;
    if (!isDns1123Label(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

/** ValidateWildcardDomain: an FQDN or short name whose first label may be a wildcard (`*`, `*.x`, `*x.y`). */
export function checkWildcardDomain(host: string): string | undefined {
  const d = host.toLowerCase();
  if (d.length === 0) return 'empty domain name not allowed';
  if (d.length > 255) return `domain name "${host}" too long (max 255)`;
  const dot = d.indexOf('.');
  const first = dot < 0 ? d : d.slice(0, dot);
  if (!(first.length <= 63 && WILDCARD_LABEL.test(first)))
    return `domain name "${host}" invalid (label "${first}" invalid)`;
  if (dot < 0) return undefined;
  return checkLabels(host, d.slice(dot + 1).split('.'));
}

/** ValidateFQDN: no wildcards. */
export function checkFqdn(host: string): string | undefined {
  const d = host.toLowerCase();
  if (d.length === 0) return 'empty domain name not allowed';
  if (d.length > 255) return `domain name "${host}" too long (max 255)`;
  return checkLabels(host, d.split('.'));
}

export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** "a.b.c.d/nn" or "2001:db8::/32" (or a bare address). */
export function checkIpOrCidr(s: string): string | undefined {
  const slash = s.split('/');
  if (slash.length === 1) return isIpAddress(s) ? undefined : `"${s}" is not a valid IP address`;
  if (slash.length !== 2) return `"${s}" is not a valid CIDR block`;
  const [ip, bits] = slash as [string, string];
  const family = isIP(ip);
  const n = /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  if (family === 0 || n < 0 || n > (family === 4 ? 32 : 128)) return `"${s}" is not a valid CIDR block`;
  return undefined;
}

export function isCidr(s: string): boolean {
  return s.includes('/') && checkIpOrCidr(s) === undefined;
}

/**
 * Gateway server host (GW-7): `[ns/]dnsName`, ns is `*`, `.` or a DNS label; dnsName is `*`,
 * a wildcard or plain FQDN (short names are not allowed), or an IP address.
 */
export function checkGatewayHost(entry: string): string[] {
  const errors: string[] = [];
  const slash = entry.indexOf('/');
  let name = entry;
  if (slash >= 0) {
    const ns = entry.slice(0, slash);
    name = entry.slice(slash + 1);
    if (ns === '' || name === '') errors.push('config namespace and dnsName in host entry cannot be empty');
    else if (ns !== '*' && ns !== '.' && !isDns1123Label(ns.toLowerCase()))
      errors.push(`invalid namespace value "${ns}" in gateway`);
    if (name === '') return errors;
  }
  if (name !== '*' && !name.includes('.') && !isIpAddress(name))
    errors.push(`short names (non FQDN) are not allowed: "${name}"`);
  const bad = checkWildcardDomain(name);
  if (bad !== undefined && !isIpAddress(name)) errors.push(bad);
  return errors;
}

/** Whether two host patterns overlap (pkg/config/host Name.Matches): equal, or a wildcard covers the other. */
export function hostsOverlap(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x === y || wildcardCovers(x, y) || wildcardCovers(y, x);
}

function wildcardCovers(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*')) return false;
  if (pattern === '*') return true;
  const suffix = pattern.slice(1);
  const h = host.startsWith('*') ? host.slice(1) : host;
  return h.endsWith(suffix) && h.length >= suffix.length;
}

/** Whether `host` is within `of` (pkg/config/host Name.SubsetOf). */
export function hostSubsetOf(host: string, of: string): boolean {
  const h = host.toLowerCase();
  const o = of.toLowerCase();
  if (h === o || o === '*') return true;
  if (!o.startsWith('*')) return false;
  const suffix = o.slice(1);
  if (h.startsWith('*')) return h.slice(1).endsWith(suffix);
  return h.endsWith(suffix);
}

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Kubernetes label key/value syntax (labels.Instance.Validate), wildcards rejected. */
export function checkLabel(key: string, value: string): string | undefined {
  if (key === '') return `empty key is not supported in selector: "=${value}"`;
  if (key.includes('*') || value.includes('*'))
    return `wildcard is not supported in selector: "${key}=${value}"`;
  const slash = key.lastIndexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  if (prefix !== undefined && !isDns1123Subdomain(prefix))
    return `invalid label key prefix "${prefix}" in "${key}"`;
  if (name.length > 63 || !LABEL_NAME.test(name)) return `invalid label key "${key}"`;
  if (value !== '' && (value.length > 63 || !LABEL_NAME.test(value)))
    return `invalid label value "${value}" for key "${key}"`;
  return undefined;
}

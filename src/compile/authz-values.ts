/**
 * AuthorizationPolicy values → precompiled tests, with the exact semantics Istio's generators give
 * Envoy (istio/istio pilot/pkg/security/authz/{model/generator.go,matcher/}): `*` presence,
 * `abc*` prefix, `*abc` suffix, else exact (AP-4); CIDRs through net.BlockList; URI templates
 * (AP-6). Built once per compile; the tests only read.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { compileRe2 } from '../util/re2.ts';

export type Test<T> = (v: T) => boolean;

/** Istio's StringMatcher(v): `*` = any non-empty value; prefix; suffix; exact. */
export function stringTest(v: string, ignoreCase = false): Test<string> {
  const want = ignoreCase ? v.toLowerCase() : v;
  const norm = ignoreCase ? (s: string): string => s.toLowerCase() : (s: string): string => s;
  if (v === '*') return (s) => s.length > 0;
  if (v.startsWith('*')) {
    const suffix = want.slice(1);
    return (s) => norm(s).endsWith(suffix);
  }
  if (v.endsWith('*')) {
    const prefix = want.slice(0, -1);
    return (s) => norm(s).startsWith(prefix);
  }
  return (s) => norm(s) === want;
}

/**
 * Istio's HeaderMatcher / HostMatcher: `*` = the header is present (even empty); else a string
 * match on the value (repeated headers comma-joined). A missing header never matches.
 */
export function headerTest(v: string, ignoreCase = false): Test<string | undefined> {
  if (v === '*') return (s) => s !== undefined;
  const t = stringTest(v, ignoreCase);
  return (s) => s !== undefined && t(s);
}

/** Istio's StringMatcherWithPrefix(v, 'spiffe://') for `principals` and `source.principal`. */
export function principalTest(v: string): Test<string | null> {
  if (v === '*') return (p) => p !== null && p.length > 0;
  if (v.startsWith('*')) {
    const suffix = v.slice(1);
    return (p) => p !== null && p.startsWith('spiffe://') && p.endsWith(suffix);
  }
  if (v.endsWith('*')) {
    const prefix = 'spiffe://' + v.slice(0, -1);
    return (p) => p !== null && p.startsWith(prefix);
  }
  const want = 'spiffe://' + v;
  return (p) => p === want;
}

function quoteRe2(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

function re2Principal(pattern: string): Test<string | null> | string {
  const r = compileRe2(pattern);
  if (!r.ok) return r.error;
  const re = r.regex;
  return (p) => p !== null && re.fullMatch(p);
}

/** `namespaces` / `source.namespace`: regex `.*\/ns\/<ns>\/.*` over the peer principal (`*` = any run). */
export function namespaceTest(v: string): Test<string | null> | string {
  return re2Principal(`.*/ns/${v.split('*').map(quoteRe2).join('.*')}/.*`);
}

/** `serviceAccounts` / `source.serviceAccount`: `[ns/]name`, namespace defaulting to the policy's. */
export function serviceAccountTest(v: string, policyNamespace: string): Test<string | null> | string {
  const slash = v.indexOf('/');
  const ns = slash < 0 ? policyNamespace : v.slice(0, slash);
  const sa = slash < 0 ? v : v.slice(slash + 1);
  return re2Principal(`spiffe://.+/ns/${quoteRe2(ns)}/(.+/|)sa/${quoteRe2(sa)}(/.+)?`);
}

/** `trustDomains` / `source.trustDomain`. */
export function trustDomainTest(v: string): Test<string | null> | string {
  if (v === '*') return (p) => p !== null && p.startsWith('spiffe://');
  if (!v.includes('*')) {
    const prefix = `spiffe://${v}/`;
    return (p) => p !== null && p.startsWith(prefix);
  }
  const star = v.indexOf('*');
  return re2Principal(`spiffe://${quoteRe2(v.slice(0, star))}[^/]*${quoteRe2(v.slice(star + 1))}/.*`);
}

/** An IP or CIDR list as one BlockList; a string is the problem with the first bad entry. */
export function cidrTest(values: readonly string[]): Test<string> | string {
  const list = new BlockList();
  for (const raw of values) {
    const v = raw.trim();
    const slash = v.indexOf('/');
    const addr = slash < 0 ? v : v.slice(0, slash);
    const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : null;
    if (family === null) return `"${raw}" is not an IP address or CIDR range`;
    if (slash < 0) {
      list.addAddress(addr, family);
      continue;
    }
    const bits = /^\d{1,3}$/.test(v.slice(slash + 1)) ? Number(v.slice(slash + 1)) : NaN;
    if (!(bits >= 0 && bits <= (family === 'ipv4' ? 32 : 128)))
      return `"${raw}" has an invalid prefix length`;
    list.addSubnet(addr, bits, family);
  }
  return (ip) => {
    if (ip === '') return false;
    const family = isIPv4(ip) ? 'ipv4' : 'ipv6';
    try {
      return list.check(ip, family);
    } catch {
      return false;
    }
  };
}

/** A port number string (0..65535), or null. */
export function parsePort(v: string): number | null {
  if (!/^\d{1,5}$/.test(v)) return null;
  const n = Number(v);
  return n <= 65535 ? n : null;
}

/** AP-6: a path value written with `{*}` or `{**}` is an Envoy URI template. */
export function isPathTemplate(v: string): boolean {
  return v.includes('{*}') || v.includes('{**}');
}

// RFC 3986 pchar: unreserved, pct-encoded, sub-delims, ':' and '@' (Envoy's segment characters).
const SEGMENT = "[A-Za-z0-9\\-._~%!$&'()*+,;=:@]";

/**
 * Envoy's uri_template match: `{*}` is one non-empty segment, `{**}` (last only) any rest,
 * slashes included; literal segments compare exactly. A string is the problem when `v` is not a
 * usable template (validation normally refuses it first).
 */
export function pathTemplateTest(v: string): Test<string> | string {
  const segments = v.split('/');
  let source = '';
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (i > 0) source += '/';
    if (seg === '{*}') source += `${SEGMENT}+`;
    else if (seg === '{**}') {
      if (i !== segments.length - 1) return `"{**}" must be the last segment of "${v}"`;
      source += `(?:${SEGMENT}|/)*`;
    } else if (seg.includes('{') || seg.includes('}') || seg.includes('*'))
      return `"${v}" mixes a template operator with other characters in one segment`;
    else source += quoteRe2(seg);
  }
  const r = compileRe2(source);
  if (!r.ok) return r.error;
  const re = r.regex;
  // A match starts with the template's text before its first operator and ends with the text
  // after its last one: two string compares turn most other paths away before the regex runs.
  const head = v.slice(0, v.indexOf('{'));
  const tail = v.slice(v.lastIndexOf('}') + 1);
  return (path) => path.startsWith(head) && path.endsWith(tail) && re.fullMatch(path);
}

/** A path value: template, or Istio's StringMatcher on the normalised path without query. */
export function pathTest(v: string): Test<string> | string {
  return isPathTemplate(v) ? pathTemplateTest(v) : stringTest(v);
}

/** Any of `values` (OR). */
export function anyOf<T>(tests: readonly Test<T>[]): Test<T> {
  if (tests.length === 1) return tests[0]!;
  return (v) => {
    for (let i = 0; i < tests.length; i++) if (tests[i]!(v)) return true;
    return false;
  };
}

/**
 * `request.auth.claims[a][b]`: a string claim must match, or any string element of a list claim
 * (Envoy's list matcher on JWT metadata; numbers and booleans never match a string matcher).
 */
export function claimValuesTest(values: readonly string[]): Test<unknown> {
  const t = anyOf(values.map((v) => stringTest(v)));
  return (claim) => {
    if (typeof claim === 'string') return t(claim);
    if (Array.isArray(claim)) {
      for (const x of claim) if (typeof x === 'string' && t(x)) return true;
    }
    return false;
  };
}

/** `request.auth.claims[a][b]` → ['a', 'b']; null when the brackets are malformed. */
export function parseBracketPath(rest: string): string[] | null {
  const parts: string[] = [];
  let i = 0;
  while (i < rest.length) {
    if (rest[i] !== '[') return null;
    const close = rest.indexOf(']', i);
    if (close < 0) return null;
    const name = rest.slice(i + 1, close);
    if (name === '' || name.includes('[')) return null;
    parts.push(name);
    i = close + 1;
  }
  return parts.length > 0 ? parts : null;
}

/** Reads a nested claim: `path` ['a', 'b'] reads claims.a.b. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let cur: unknown = claims;
  for (let i = 0; i < path.length; i++) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[path[i]!];
  }
  return cur;
}

/**
 * AuthorizationPolicy → RBAC filters (AP-1..AP-8), compiled per route table because what a rule
 * can see depends on where the request arrives (a client certificate only on MUTUAL servers).
 *
 * A rule matches when any `from`, any `to` and every `when` hold; each field ANDs, its values OR,
 * `notX` is none of (AP-3). Istio's AP-8 for attributes a listener cannot provide: ALLOW drops
 * the rule (stricter), DENY and AUDIT ignore the condition (broader). sluice goes further where
 * Istio would silently fail open: a condition that needs a verified client certificate on a
 * server that never asks for one, an unknown `when` key or an unusable value is an error that
 * refuses the change.
 */
import type { Diagnostic } from '../errors/diagnostic.ts';
import type { Resource } from '../model/resource.ts';
import type { AuthorizationPolicySpec, Condition, Operation, Rule, Source } from '../model/security.ts';
import type { CompiledPolicy, CompiledRule, PolicyRequest, RbacFilter } from '../snapshot/types.ts';
import { headerValue } from '../snapshot/lookup.ts';
import {
  anyOf,
  cidrTest,
  claimAt,
  claimValuesTest,
  headerTest,
  namespaceTest,
  parseBracketPath,
  parsePort,
  pathTest,
  principalTest,
  serviceAccountTest,
  stringTest,
  trustDomainTest,
  type Test,
} from './authz-values.ts';
import { subjectOf } from './indexes.ts';

export type AuthorizationPolicyResource = Resource<'AuthorizationPolicy', AuthorizationPolicySpec>;

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** Where a table's requests arrive: what its policies can see. */
export interface AuthzSite {
  /** The Gateway server port (`ports`, `destination.port`). */
  readonly port: number;
  /** Clients present verified certificates here (MUTUAL or OPTIONAL_MUTUAL). */
  readonly clientCerts: boolean;
  /** A TCP site (plain TCP, TLS passthrough, TLS terminated into a tcp route): AP-8 applies. */
  readonly tcp: boolean;
  /** For messages: `port 8080` or `port 443 server istio-system/gw[1]`. */
  readonly where: string;
}

/** One leaf condition: a key with its values and notValues, as one test. */
interface Leaf {
  readonly path: string;
  readonly key: string;
  /** Reads a verified client certificate (principals, namespaces, serviceAccounts, trustDomains). */
  readonly peerCert: boolean;
  readonly test: Test<PolicyRequest>;
}

/** A rule before it is placed at a site. */
interface RulePlan {
  readonly index: number;
  /** OR of ANDs; null = no `from` (any source). */
  readonly from: readonly (readonly Leaf[])[] | null;
  readonly to: readonly (readonly Leaf[])[] | null;
  readonly when: readonly Leaf[];
  /** The only ports the rule can match (every `to` lists `ports`), null = any. */
  readonly ports: ReadonlySet<number> | null;
}

export interface PolicyPlan {
  readonly resource: AuthorizationPolicyResource;
  readonly action: PolicyAction;
  readonly dryRun: boolean;
  readonly rules: readonly RulePlan[];
}

const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

// ---------------------------------------------------------------- leaves

export type Problems = (path: string, message: string) => void;

/** Where a leaf's values and notValues were written. */
type Fields = readonly [values: string, notValues: string];

function values(
  fields: Fields,
  key: string,
  vals: readonly string[] | undefined,
  notVals: readonly string[] | undefined,
  peerCert: boolean,
  make: (v: string, path: string) => Test<PolicyRequest> | string,
  problem: Problems,
): Leaf | null {
  const build = (list: readonly string[] | undefined, field: string): Test<PolicyRequest> | null => {
    if (list === undefined || list.length === 0) return null;
    const tests: Test<PolicyRequest>[] = [];
    list.forEach((v, i) => {
      const t = make(v, `${field}[${i}]`);
      if (typeof t === 'string') problem(`${field}[${i}]`, t);
      else tests.push(t);
    });
    return tests.length === list.length ? anyOf(tests) : null;
  };
  const [posField, negField] = fields;
  const pos = build(vals, posField);
  const neg = build(notVals, negField);
  if (pos === null && neg === null) return null;
  const test: Test<PolicyRequest> =
    pos !== null && neg !== null ? (r) => pos(r) && !neg(r) : pos !== null ? pos : (r) => !neg!(r);
  return { path: posField, key, peerCert, test };
}

/** A whole-list matcher (CIDRs), so one BlockList serves every value. */
function cidrLeaf(
  fields: Fields,
  key: string,
  vals: readonly string[] | undefined,
  notVals: readonly string[] | undefined,
  read: (r: PolicyRequest) => string,
  problem: Problems,
): Leaf | null {
  const [posField, negField] = fields;
  const mk = (list: readonly string[] | undefined, field: string): Test<string> | null => {
    if (list === undefined || list.length === 0) return null;
    const t = cidrTest(list);
    if (typeof t === 'string') {
      problem(field, t);
      return null;
    }
    return t;
  };
  const pos = mk(vals, posField);
  const neg = mk(notVals, negField);
  if (pos === null && neg === null) return null;
  const test: Test<PolicyRequest> =
    pos !== null && neg !== null
      ? (r) => {
          const ip = read(r);
          return pos(ip) && !neg(ip);
        }
      : pos !== null
        ? (r) => pos(read(r))
        : (r) => !neg!(read(r));
  return { path: posField, key, peerCert: false, test };
}

const readPeerIp = (r: PolicyRequest): string => r.peerIp;
const readRemoteIp = (r: PolicyRequest): string => r.remoteIp;
const readLocalIp = (r: PolicyRequest): string => r.localIp;

function portTest(v: string): Test<PolicyRequest> | string {
  const n = parsePort(v);
  if (n === null) return `"${v}" is not a port number (0-65535)`;
  return (r) => r.port === n;
}

/** `requestPrincipals` / `request.auth.principal`: `iss/sub`, split at the last `/` (AP-5). */
function requestPrincipalTest(v: string): Test<PolicyRequest> {
  const any = (s: string): boolean => s.length > 0;
  const idx = v.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? v.slice(0, idx) : v;
  const sub = found ? v.slice(idx + 1) : '';
  let matchIss: Test<string>;
  let matchSub: Test<string>;
  if (v === '*') {
    matchIss = any;
    matchSub = any;
  } else if (v.startsWith('*')) {
    if (found) {
      matchIss = iss === '*' ? any : stringTest(iss);
      matchSub = (s) => s === sub;
    } else {
      matchIss = any;
      const suffix = v.slice(1);
      matchSub = (s) => s.endsWith(suffix);
    }
  } else if (v.endsWith('*')) {
    if (found) {
      matchIss = (s) => s === iss;
      const prefix = sub.slice(0, -1);
      matchSub = sub === '*' ? any : (s) => s.startsWith(prefix);
    } else {
      const prefix = v.slice(0, -1);
      matchIss = (s) => s.startsWith(prefix);
      matchSub = any;
    }
  } else {
    matchIss = (s) => s === iss;
    matchSub = (s) => s === sub;
  }
  return (r) => r.auth !== null && matchIss(r.auth.issuer) && matchSub(r.auth.subject);
}

function sourceLeaves(s: Source, base: string, ns: string, problem: Problems): Leaf[] {
  const out: Leaf[] = [];
  const push = (l: Leaf | null): void => {
    if (l !== null) out.push(l);
  };
  const f = (a: string, b: string): Fields => [`${base}.${a}`, `${base}.${b}`];
  push(cidrLeaf(f('ipBlocks', 'notIpBlocks'), 'source.ip', s.ipBlocks, s.notIpBlocks, readPeerIp, problem));
  push(
    cidrLeaf(
      f('remoteIpBlocks', 'notRemoteIpBlocks'),
      'remote.ip',
      s.remoteIpBlocks,
      s.notRemoteIpBlocks,
      readRemoteIp,
      problem,
    ),
  );
  push(
    values(
      f('namespaces', 'notNamespaces'),
      'source.namespace',
      s.namespaces,
      s.notNamespaces,
      true,
      (v) => peerTest(namespaceTest(v)),
      problem,
    ),
  );
  push(
    values(
      f('trustDomains', 'notTrustDomains'),
      'source.trustDomain',
      s.trustDomains,
      s.notTrustDomains,
      true,
      (v) => peerTest(trustDomainTest(v)),
      problem,
    ),
  );
  push(
    values(
      f('serviceAccounts', 'notServiceAccounts'),
      'source.serviceAccount',
      s.serviceAccounts,
      s.notServiceAccounts,
      true,
      (v) => peerTest(serviceAccountTest(v, ns)),
      problem,
    ),
  );
  push(
    values(
      f('requestPrincipals', 'notRequestPrincipals'),
      'request.auth.principal',
      s.requestPrincipals,
      s.notRequestPrincipals,
      false,
      requestPrincipalTest,
      problem,
    ),
  );
  push(
    values(
      f('principals', 'notPrincipals'),
      'source.principal',
      s.principals,
      s.notPrincipals,
      true,
      (v) => peerTest(principalTest(v)),
      problem,
    ),
  );
  return out;
}

function peerTest(t: Test<string | null> | string): Test<PolicyRequest> | string {
  if (typeof t === 'string') return t;
  return (r) => t(r.peerPrincipal);
}

const readMethod = (r: PolicyRequest): string => r.method;

function operationLeaves(o: Operation, base: string, problem: Problems): Leaf[] {
  const out: Leaf[] = [];
  const push = (l: Leaf | null): void => {
    if (l !== null) out.push(l);
  };
  const f = (a: string, b: string): Fields => [`${base}.${a}`, `${base}.${b}`];
  // AP-4: hosts compare case-insensitively with the port (`example.com:*`).
  push(
    values(
      f('hosts', 'notHosts'),
      'request.host',
      o.hosts,
      o.notHosts,
      false,
      (v) => {
        const t = headerTest(v, true);
        return (r) => t(r.authority);
      },
      problem,
    ),
  );
  push(values(f('ports', 'notPorts'), 'destination.port', o.ports, o.notPorts, false, portTest, problem));
  push(
    values(
      f('methods', 'notMethods'),
      'request.method',
      o.methods,
      o.notMethods,
      false,
      (v) => {
        const t = headerTest(v);
        return (r) => t(readMethod(r));
      },
      problem,
    ),
  );
  push(
    values(
      f('paths', 'notPaths'),
      'request.path',
      o.paths,
      o.notPaths,
      false,
      (v) => {
        const t = pathTest(v);
        if (typeof t === 'string') return t;
        return (r) => t(r.path);
      },
      problem,
    ),
  );
  return out;
}

/** AP-7 `when` keys. Unknown keys (and Envoy metadata, which sluice has none of) are problems. */
function conditionLeaf(c: Condition, base: string, ns: string, problem: Problems): Leaf | null {
  const key = c.key;
  const path: Fields = [`${base}.values`, `${base}.notValues`];
  const plain = (peerCert: boolean, make: (v: string) => Test<PolicyRequest> | string): Leaf | null =>
    values(path, key, c.values, c.notValues, peerCert, make, problem);
  switch (key) {
    case 'source.ip':
      return cidrLeaf(path, key, c.values, c.notValues, readPeerIp, problem);
    case 'remote.ip':
      return cidrLeaf(path, key, c.values, c.notValues, readRemoteIp, problem);
    case 'destination.ip':
      return cidrLeaf(path, key, c.values, c.notValues, readLocalIp, problem);
    case 'destination.port':
      return plain(false, portTest);
    case 'connection.sni':
      return plain(false, (v) => {
        const t = stringTest(v);
        return (r) => t(r.sni);
      });
    case 'source.namespace':
      return plain(true, (v) => peerTest(namespaceTest(v)));
    case 'source.serviceAccount':
      return plain(true, (v) => peerTest(serviceAccountTest(v, ns)));
    case 'source.trustDomain':
      return plain(true, (v) => peerTest(trustDomainTest(v)));
    case 'source.principal':
      return plain(true, (v) => peerTest(principalTest(v)));
    case 'request.auth.principal':
      return plain(false, requestPrincipalTest);
    case 'request.auth.audiences':
      return claimLeaf(c, path, problem, (r) => r.auth?.audiences);
    case 'request.auth.presenter':
      return claimLeaf(c, path, problem, (r) => r.auth?.presenter || undefined);
  }
  if (key.startsWith('request.headers')) {
    const name = parseBracketPath(key.slice('request.headers'.length));
    if (name === null || name.length !== 1) {
      problem(`${base}.key`, `"${key}" must be request.headers[<name>]`);
      return null;
    }
    const header = name[0]!.toLowerCase();
    return plain(false, (v) => {
      const t = headerTest(v);
      return (r) => t(headerValue(r, header));
    });
  }
  if (key.startsWith('request.auth.claims')) {
    const claimPath = parseBracketPath(key.slice('request.auth.claims'.length));
    if (claimPath === null) {
      problem(`${base}.key`, `"${key}" must be request.auth.claims[<name>] (nested: [a][b])`);
      return null;
    }
    return claimLeaf(c, path, problem, (r) =>
      r.auth === null ? undefined : claimAt(r.auth.claims, claimPath),
    );
  }
  problem(
    `${base}.key`,
    key.startsWith('experimental.envoy.filters.')
      ? `"${key}" reads Envoy filter metadata, which sluice does not have; this condition cannot be enforced`
      : `unknown condition key "${key}"`,
  );
  return null;
}

function claimLeaf(
  c: Condition,
  path: Fields,
  problem: Problems,
  read: (r: PolicyRequest) => unknown,
): Leaf | null {
  const [posField, negField] = path;
  const check = (list: readonly string[] | undefined, field: string): boolean => {
    let ok = true;
    list?.forEach((v, i) => {
      if (v === '') {
        problem(`${field}[${i}]`, 'empty value is not allowed');
        ok = false;
      }
    });
    return ok;
  };
  if (!check(c.values, posField) || !check(c.notValues, negField)) return null;
  const pos = c.values?.length ? claimValuesTest(c.values) : null;
  const neg = c.notValues?.length ? claimValuesTest(c.notValues) : null;
  if (pos === null && neg === null) return null;
  // Envoy's metadata matcher: a missing claim matches neither list, so `notValues` holds for it.
  const test: Test<PolicyRequest> =
    pos !== null && neg !== null
      ? (r) => {
          const v = read(r);
          return pos(v) && !neg(v);
        }
      : pos !== null
        ? (r) => pos(read(r))
        : (r) => !neg!(read(r));
  return { path: posField, key: c.key, peerCert: false, test };
}

// ---------------------------------------------------------------- plans

function rulePlan(rule: Rule, i: number, ns: string, problem: Problems): RulePlan {
  const base = `spec.rules[${i}]`;
  const from =
    rule.from?.map((f, j) => sourceLeaves(f.source ?? {}, `${base}.from[${j}].source`, ns, problem)) ?? null;
  const to =
    rule.to?.map((t, j) => operationLeaves(t.operation ?? {}, `${base}.to[${j}].operation`, problem)) ?? null;
  const when: Leaf[] = [];
  rule.when?.forEach((c, j) => {
    const l = conditionLeaf(c, `${base}.when[${j}]`, ns, problem);
    if (l !== null) when.push(l);
  });
  let ports: Set<number> | null = null;
  if (
    rule.to !== undefined &&
    rule.to.length > 0 &&
    rule.to.every((t) => (t.operation?.ports?.length ?? 0) > 0)
  ) {
    ports = new Set();
    for (const t of rule.to)
      for (const p of t.operation!.ports!) {
        const n = parsePort(p);
        if (n !== null) ports.add(n);
      }
  }
  return { index: i, from, to, when, ports };
}

/** Errors on a policy, each reported once however many sites place it. */
function problemsOf(
  r: AuthorizationPolicyResource,
  diagnostics: Diagnostic[],
  reported: Set<string>,
): Problems {
  return (path, message) => {
    const key = `${r.namespace}/${r.name}|${path}|${message}`;
    if (reported.has(key)) return;
    reported.add(key);
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_POLICY_UNENFORCEABLE',
      subject: subjectOf(r),
      path,
      message: `${message}; the policy cannot be enforced exactly, so the change is refused`,
    });
  };
}

/** Turns each selected AuthorizationPolicy into a plan once; problems become errors on it. */
export function planPolicies(
  policies: readonly AuthorizationPolicyResource[],
  diagnostics: Diagnostic[],
  reported: Set<string>,
): PolicyPlan[] {
  return policies.map((resource) => {
    const problem = problemsOf(resource, diagnostics, reported);
    const spec = resource.spec;
    const rules = (spec.rules ?? []).map((r, i) => rulePlan(r, i, resource.namespace, problem));
    return {
      resource,
      action: spec.action ?? 'ALLOW',
      dryRun: (resource.annotations[DRY_RUN_ANNOTATION] ?? '').toLowerCase() === 'true',
      rules,
    };
  });
}

/**
 * A rule's `to` and `when` as one test with AuthorizationPolicy's meaning (AP-3, AP-7), for
 * RateLimitPolicy rules, which are written at `spec.rules[index]` too; null = every request.
 */
export function compileRequestMatch(
  rule: Pick<Rule, 'to' | 'when'>,
  index: number,
  ns: string,
  problem: Problems,
): Test<PolicyRequest> | null {
  const plan = rulePlan(
    { ...(rule.to ? { to: rule.to } : {}), ...(rule.when ? { when: rule.when } : {}) },
    index,
    ns,
    problem,
  );
  const to = anyAlternative(plan.to);
  if (plan.when.length === 0) return to;
  const when = allOf(plan.when);
  return to === null ? when : (r) => to(r) && when(r);
}

// ---------------------------------------------------------------- placement

function allOf(leaves: readonly Leaf[]): Test<PolicyRequest> {
  const tests = leaves.map((l) => l.test);
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (r) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(r)) return false;
    return true;
  };
}

function anyAlternative(alts: readonly (readonly Leaf[])[] | null): Test<PolicyRequest> | null {
  if (alts === null) return null;
  return anyOf(alts.map(allOf));
}

/** Attributes only an HTTP request has (hosts, methods, paths, headers, JWT). */
function httpOnly(l: Leaf): boolean {
  return l.key.startsWith('request.');
}

/**
 * AP-8 on a TCP site: an ALLOW rule that reads HTTP attributes is dropped (stricter); DENY and
 * AUDIT rules ignore those conditions (broader). Null: the rule is dropped.
 */
function forTcp(rule: RulePlan, action: PolicyAction): RulePlan | null {
  const leaves = [...(rule.from ?? []).flat(), ...(rule.to ?? []).flat(), ...rule.when];
  if (!leaves.some(httpOnly)) return rule;
  if (action === 'ALLOW') return null;
  const keep = (alts: readonly (readonly Leaf[])[] | null): (readonly Leaf[])[] | null =>
    alts === null ? null : alts.map((a) => a.filter((l) => !httpOnly(l)));
  return { ...rule, from: keep(rule.from), to: keep(rule.to), when: rule.when.filter((l) => !httpOnly(l)) };
}

/**
 * The rule as it runs at `site`. A rule that reads a client certificate where none is ever
 * verified is an error (reported through `problem`): Envoy would see no principal and an ALLOW
 * would never match (stricter) but a DENY would never deny (open); sluice refuses both.
 */
function placeRule(
  planned: RulePlan,
  site: AuthzSite,
  action: PolicyAction,
  problem: Problems,
): CompiledRule | null {
  if (planned.ports !== null && !planned.ports.has(site.port)) return null;
  const rule = site.tcp ? forTcp(planned, action) : planned;
  if (rule === null) return null;
  if (!site.clientCerts) {
    const leaves = [...(rule.from ?? []).flat(), ...rule.when];
    const needs = leaves.find((l) => l.peerCert);
    if (needs !== undefined)
      problem(
        needs.path,
        `${needs.key} needs a verified client certificate, but ${site.where} does not ask for one (tls.mode MUTUAL or OPTIONAL_MUTUAL); restrict the rule with to.operation.ports or use it only on mutual TLS servers`,
      );
  }
  const from = anyAlternative(rule.from);
  const to = anyAlternative(rule.to);
  const when = allOf(rule.when);
  const parts = [from, to, rule.when.length > 0 ? when : null].filter(
    (t): t is Test<PolicyRequest> => t !== null,
  );
  const test: Test<PolicyRequest> =
    parts.length === 0
      ? () => true
      : parts.length === 1
        ? parts[0]!
        : parts.length === 2
          ? (r) => parts[0]!(r) && parts[1]!(r)
          : (r) => parts[0]!(r) && parts[1]!(r) && parts[2]!(r);
  return { index: rule.index, test };
}

export function placePolicy(
  plan: PolicyPlan,
  site: AuthzSite,
  diagnostics: Diagnostic[],
  reported: Set<string>,
): CompiledPolicy {
  const r = plan.resource;
  const problem = problemsOf(r, diagnostics, reported);
  const rules: CompiledRule[] = [];
  for (const rule of plan.rules) {
    const placed = placeRule(rule, site, plan.action, problem);
    if (placed !== null) rules.push(placed);
  }
  return { namespace: r.namespace, name: r.name, rules };
}

/**
 * The RBAC filters of one site, in Envoy's order AUDIT, DENY, ALLOW; a filter only when its
 * action has policies (enforced or dry-run). `spec: {}` (ALLOW, no rules) is a policy that
 * matches nothing, so it denies everything (AP-3).
 */
export function rbacFiltersAt(
  plans: readonly PolicyPlan[],
  site: AuthzSite,
  diagnostics: Diagnostic[],
  reported: Set<string>,
): RbacFilter[] {
  const out: RbacFilter[] = [];
  for (const action of ['AUDIT', 'DENY', 'ALLOW'] as const) {
    const mine = plans.filter((p) => p.action === action);
    if (mine.length === 0) continue;
    const policies: CompiledPolicy[] = [];
    const shadow: CompiledPolicy[] = [];
    for (const p of mine) (p.dryRun ? shadow : policies).push(placePolicy(p, site, diagnostics, reported));
    out.push({ kind: 'rbac', action, policies, shadow });
  }
  return out;
}

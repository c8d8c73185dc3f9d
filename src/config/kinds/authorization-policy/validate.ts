import type { AuthorizationPolicySpec, Rule } from '../../../model/security.ts';
import type { FieldPath } from '../../field-path.ts';
import { checkIpOrCidr } from '../../validate-hosts.ts';
import { validateTargeting } from '../request-authentication/validate.ts';
import { type Findings, SPEC } from '../rules-common.ts';

/** AuthorizationPolicy rules Istio's validation enforces (AP-1 … AP-8). */

const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);
const PLAIN_KEYS = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

function validateConditionKey(key: string): string | undefined {
  if (PLAIN_KEYS.has(key)) return undefined;
  if (/^request\.headers\[[^[\]]+\]$/.test(key)) return undefined;
  if (/^request\.auth\.claims(\[[^[\]]+\])+$/.test(key)) return undefined;
  if (key.startsWith('experimental.envoy.filters.')) return undefined;
  return `unknown condition key "${key}"`;
}

function validateValues(
  values: readonly string[] | undefined,
  path: FieldPath,
  f: Findings,
  kind: 'ip' | 'port' | 'plain',
): void {
  values?.forEach((v, i) => {
    if (v === '') f.error([...path, i], 'empty value is not allowed');
    else if (kind === 'ip') {
      const bad = checkIpOrCidr(v);
      if (bad) f.error([...path, i], bad);
    } else if (kind === 'port') {
      const n = /^\d+$/.test(v) ? Number(v) : NaN;
      if (!(n >= 0 && n <= 65535)) f.error([...path, i], `"${v}" is not a valid port`);
    }
  });
}

function validatePathTemplate(p: string, path: FieldPath, f: Findings): void {
  if (!p.includes('{') && !p.includes('}')) return;
  for (const seg of p.split('/')) {
    if (seg === '{*}' || seg === '{**}') continue;
    if (seg.includes('{') || seg.includes('}') || seg.includes('*')) {
      f.error(
        path,
        `invalid path template "${p}": only whole segments {*} and {**} are allowed, and no other * { }`,
      );
      return;
    }
  }
}

export function validateAuthorizationPolicy(
  namespace: string,
  spec: AuthorizationPolicySpec,
  f: Findings,
): void {
  validateTargeting(namespace, spec, f);
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM') {
    if (spec.rules === undefined) {
      f.error(
        [SPEC],
        'CUSTOM action without rules never triggers; add an empty rule {} to apply it to every request',
      );
    } else if (!spec.provider?.name)
      f.error([SPEC, 'provider'], 'CUSTOM action needs provider.name (an extension provider)');
    spec.rules?.forEach((rule, i) => {
      rule.from?.forEach((from, j) => {
        const src = from.source;
        if (!src) return;
        for (const field of [
          'namespaces',
          'notNamespaces',
          'serviceAccounts',
          'notServiceAccounts',
          'principals',
          'notPrincipals',
          'requestPrincipals',
          'notRequestPrincipals',
        ] as const) {
          if (src[field]?.length)
            f.error(
              [SPEC, 'rules', i, 'from', j, 'source', field],
              `${field} is not supported with CUSTOM action`,
            );
        }
      });
      rule.when?.forEach((c, j) => {
        if (
          ['source.namespace', 'source.serviceAccount', 'source.principal'].includes(c.key) ||
          c.key.startsWith('request.auth.')
        ) {
          f.error([SPEC, 'rules', i, 'when', j, 'key'], `${c.key} is not supported with CUSTOM action`);
        }
      });
    });
  } else if (spec.provider)
    f.error([SPEC, 'provider'], `provider is only allowed with action CUSTOM, not ${action}`);
  if (action === 'DENY' && spec.rules === undefined) {
    f.error(
      [SPEC],
      'DENY action without rules never triggers; add an empty rule {} to apply it to every request',
    );
  }
  spec.rules?.forEach((rule, i) => {
    const rp: FieldPath = [SPEC, 'rules', i];
    if (rule.from !== undefined && rule.from.length === 0)
      f.error([...rp, 'from'], '`from` must not be empty');
    if (rule.to !== undefined && rule.to.length === 0) f.error([...rp, 'to'], '`to` must not be empty');
    rule.from?.forEach((from, j) => {
      const fp: FieldPath = [...rp, 'from', j, 'source'];
      const s = from.source;
      if (!s) {
        f.error([...rp, 'from', j], '`from.source` must not be empty');
        return;
      }
      if (Object.values(s).every((v) => !v || (Array.isArray(v) && v.length === 0)))
        f.error(fp, '`from.source` must not be empty');
      const identities =
        (s.principals?.length ?? 0) +
        (s.notPrincipals?.length ?? 0) +
        (s.namespaces?.length ?? 0) +
        (s.notNamespaces?.length ?? 0);
      if (identities > 0 && (s.serviceAccounts?.length ?? 0) + (s.notServiceAccounts?.length ?? 0) > 0) {
        f.error(
          [...fp, s.serviceAccounts?.length ? 'serviceAccounts' : 'notServiceAccounts'],
          'Cannot set serviceAccounts with namespaces or principals',
        );
      }
      for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const)
        validateValues(s[field], [...fp, field], f, 'ip');
      for (const field of [
        'principals',
        'notPrincipals',
        'requestPrincipals',
        'notRequestPrincipals',
        'namespaces',
        'notNamespaces',
        'serviceAccounts',
        'notServiceAccounts',
        'trustDomains',
        'notTrustDomains',
      ] as const) {
        validateValues(s[field], [...fp, field], f, 'plain');
      }
    });
    validateOperations(rule.to, rp, f);
    validateConditions(rule.when, rp, f);
  });
}

/** `rules[].to` (AP-4), shared with RateLimitPolicy rules; `rp` is the rule's path. */
export function validateOperations(to: Rule['to'], rp: FieldPath, f: Findings): void {
  to?.forEach((t, j) => {
    const op = t.operation;
    const tp: FieldPath = [...rp, 'to', j, 'operation'];
    if (!op) {
      f.error([...rp, 'to', j], '`to.operation` must not be empty');
      return;
    }
    if (Object.values(op).every((v) => !v || (Array.isArray(v) && v.length === 0)))
      f.error(tp, '`to.operation` must not be empty');
    validateValues(op.ports, [...tp, 'ports'], f, 'port');
    validateValues(op.notPorts, [...tp, 'notPorts'], f, 'port');
    for (const field of ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const)
      validateValues(op[field], [...tp, field], f, 'plain');
    for (const field of ['paths', 'notPaths'] as const)
      op[field]?.forEach((p, k) => validatePathTemplate(p, [...tp, field, k], f));
  });
}

/** `rules[].when` (AP-7), shared with RateLimitPolicy rules; `rp` is the rule's path. */
export function validateConditions(when: Rule['when'], rp: FieldPath, f: Findings): void {
  when?.forEach((c, j) => {
    const cp: FieldPath = [...rp, 'when', j];
    if (c.key === '') {
      f.error([...cp, 'key'], '`key` must not be empty');
      return;
    }
    const bad = validateConditionKey(c.key);
    if (bad) f.error([...cp, 'key'], bad);
    if (!c.values?.length && !c.notValues?.length)
      f.error(cp, `at least one of values or notValues must be set for key ${c.key}`);
    const kind = IP_KEYS.has(c.key) ? 'ip' : c.key === 'destination.port' ? 'port' : 'plain';
    validateValues(c.values, [...cp, 'values'], f, kind);
    validateValues(c.notValues, [...cp, 'notValues'], f, kind);
  });
}

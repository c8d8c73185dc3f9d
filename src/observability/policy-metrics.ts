/**
 * What the request pipeline decided, counted and (for AUDIT and dry-run policies, whose purpose
 * is to be seen) logged: `sluice_authz_decisions_total{filter,action,policy,outcome}`, and JWKS
 * fetches with the age of the keys served. Labels are policy names, issuers and URIs from config,
 * never a token, a claim or a credential.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from './logger.ts';

/** Outcomes a filter reports; `dry_run_*` and `audit` never change the answer. */
export type PolicyOutcome =
  'allow' | 'deny' | 'audit' | 'dry_run_allow' | 'dry_run_deny' | 'error' | 'error_allowed';

export interface PolicyDecisionSink {
  /**
   * One decision: `filter` ext_authz | jwt_authn | rbac; `action` ALLOW | DENY | AUDIT | CUSTOM | '-';
   * `policy` ns/name ('-' when none matched, the issuer for jwt_authn); `rule` its index or -1;
   * `reason` the failure status for jwt_authn and ext_authz, else ''.
   */
  decision(
    requestId: string,
    filter: string,
    action: string,
    policy: string,
    rule: number,
    outcome: PolicyOutcome,
    reason: string,
  ): void;
}

export interface JwksStatusSource {
  status(): readonly { readonly uri: string; readonly ageMs: number | null; readonly keys: number }[];
}

export interface PolicyMetrics extends PolicyDecisionSink {
  /** JWKS fetch results by URI (wired to the JWKS store's onFetch). */
  jwksFetched(uri: string, result: 'ok' | 'error'): void;
  /** The store whose key ages the gauge reads at scrape time. */
  watchJwks(source: JwksStatusSource): void;
}

export function createPolicyMetrics(registry: Registry, logger: Logger): PolicyMetrics {
  const decisions = new Counter({
    name: 'sluice_authz_decisions_total',
    help: 'Request pipeline decisions by filter (ext_authz, jwt_authn, rbac), action, policy (ns/name, or the issuer for jwt_authn) and outcome (allow, deny, audit, dry_run_allow, dry_run_deny, error, error_allowed).',
    labelNames: ['filter', 'action', 'policy', 'outcome'],
    registers: [registry],
  });
  const fetches = new Counter({
    name: 'sluice_jwks_fetches_total',
    help: 'JWKS fetches by URI and result (ok, error); the last good key set keeps serving on error.',
    labelNames: ['uri', 'result'],
    registers: [registry],
  });
  let source: JwksStatusSource | null = null;
  new Gauge({
    name: 'sluice_jwks_keys_age_seconds',
    help: 'Seconds since the key set of each jwksUri was fetched (absent: never fetched; tokens of that issuer are refused).',
    labelNames: ['uri'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of source?.status() ?? []) if (s.ageMs !== null) this.set({ uri: s.uri }, s.ageMs / 1000);
    },
  });
  return {
    decision(requestId, filter, action, policy, rule, outcome, reason) {
      decisions.inc({ filter, action, policy, outcome });
      if (outcome === 'audit' || outcome === 'dry_run_allow' || outcome === 'dry_run_deny')
        logger.info(
          { request_id: requestId, filter, action, policy, rule, outcome },
          outcome === 'audit' ? 'authorization audit' : 'authorization dry run',
        );
      else if (outcome !== 'allow')
        logger.debug(
          { request_id: requestId, filter, action, policy, rule, outcome, reason },
          'request refused by policy',
        );
    },
    jwksFetched(uri, result) {
      fetches.inc({ uri, result });
    },
    watchJwks(s) {
      source = s;
    },
  };
}

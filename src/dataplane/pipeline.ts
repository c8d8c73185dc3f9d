/**
 * The request pipeline: runs a compiled filter list (snapshot/policy.ts) in its order, then hands
 * the request on. A filter continues, edits headers, or answers locally; ext_authz (and jwt_authn
 * while a key set is fetched or a token is first verified, and fault while it delays) is
 * asynchronous, and the pipeline resumes where it stopped. A list with nothing asynchronous to do runs without a promise or a
 * closure; a table or route without filters never enters here.
 */
import type {
  ExtAuthzFilter,
  HttpFilter,
  JwtAuthnFilter,
  PolicyMatch,
  RbacFilter,
} from '../snapshot/types.ts';
import { decideRbac, firstMatch, policyId } from '../snapshot/policy.ts';
import { callAuthorizer, decideExtAuthz } from './filters/ext-authz.ts';
import type { CheckAnswer } from './filters/ext-authz-check.ts';
import { runJwtAuthn, wwwAuthenticate, type JwtDecision } from './filters/jwt-authn.ts';
import { JWT_STATUS } from './filters/jwt-verify.ts';
import {
  FILTER_FAILED,
  Later,
  type FilterContext,
  type FilterReply,
  type FilterRuntime,
  type HeaderEdits,
} from './filters/filter.ts';
import { applyHeaderEdits } from './header-edits.ts';
import { runFault } from './filters/fault.ts';
import { runCors } from './filters/cors.ts';
import { runBodyLimit } from './filters/body-limit.ts';
import { runSourceRange } from './filters/source-range.ts';
import { runBasicAuth } from './filters/basic-auth.ts';
import { runAuthRequest } from './filters/auth-request.ts';
import { runClientCert } from './filters/client-cert.ts';
import { PAYLOAD_TOO_LARGE, readBodyPrefix } from './filters/read-body.ts';
import { runRateLimit } from './filters/rate-limit.ts';

/** `ns/name` of the matched policy, '-' when none: the metric label (rules go to the log). */
function policyName(m: PolicyMatch | null): string {
  return m === null ? '-' : `${m.policy.namespace}/${m.policy.name}`;
}

function ruleOf(m: PolicyMatch | null): number {
  return m === null ? -1 : m.rule;
}

const RBAC_DENIED = Buffer.from('RBAC: access denied');

function addEdits(ctx: FilterContext, edits: HeaderEdits | null): void {
  if (edits !== null) applyHeaderEdits(ctx.req, edits);
}

/** Runs `filters` from `start`; calls `next` when all continued, `reply` when one answered. */
export function runFilters<C extends FilterContext>(
  ctx: C,
  filters: readonly HttpFilter[],
  rt: FilterRuntime,
  next: (ctx: C) => void,
  reply: (ctx: C, reply: FilterReply) => void,
  start = 0,
): void {
  for (let i = start; i < filters.length; i++) {
    const f = filters[i]!;
    let outcome: FilterReply | null | Promise<FilterReply | null> | Later;
    switch (f.kind) {
      case 'rbac':
        outcome = runRbac(ctx, f, rt);
        break;
      case 'jwt-authn':
        outcome = runJwt(ctx, f, rt);
        break;
      case 'ext-authz':
        outcome = runExtAuthz(ctx, f, rt);
        break;
      case 'body-limit':
        outcome = runBodyLimit(ctx, f);
        break;
      case 'source-range':
        outcome = runSourceRange(ctx, f);
        break;
      case 'basic-auth':
        outcome = runBasicAuth(ctx, f);
        break;
      case 'auth-request':
        outcome = runAuthRequest(ctx, f);
        break;
      case 'client-cert':
        outcome = runClientCert(ctx, f);
        break;
      case 'fault':
        outcome = runFault(ctx, f);
        break;
      case 'cors':
        outcome = runCors(ctx, f);
        break;
      case 'rate-limit':
        outcome = rt.rateLimit === null ? null : runRateLimit(ctx, f, rt.rateLimit);
        break;
    }
    if (outcome === null) continue;
    if (outcome instanceof Later || outcome instanceof Promise) {
      const resume = (r: FilterReply | null): void => {
        // The client went away or something already answered while the filter waited.
        if (ctx.finished || ctx.res.destroyed) return;
        try {
          if (r === null) runFilters(ctx, filters, rt, next, reply, i + 1);
          else reply(ctx, r);
        } catch {
          // A Later is settled from a store's reply handler: nothing may escape into it.
          if (!ctx.finished && !ctx.res.destroyed) reply(ctx, FILTER_FAILED);
        }
      };
      if (outcome instanceof Later) outcome.whenSettled(resume);
      else outcome.then(resume, () => resume(FILTER_FAILED));
      return;
    }
    reply(ctx, outcome);
    return;
  }
  next(ctx);
}

// ---------------------------------------------------------------- rbac

function runRbac(ctx: FilterContext, f: RbacFilter, rt: FilterRuntime): FilterReply | null {
  const obs = rt.observer;
  if (f.shadow.length > 0 && obs !== null) {
    // istio.io/dry-run: the verdict the policies would give, logged and counted only.
    const m = firstMatch(f.shadow, ctx);
    const wouldDeny = f.action === 'DENY' ? m !== null : f.action === 'ALLOW' ? m === null : false;
    obs.decision(
      ctx.requestId,
      'rbac',
      f.action,
      policyName(m),
      ruleOf(m),
      wouldDeny ? 'dry_run_deny' : 'dry_run_allow',
      '',
    );
  }
  if (f.policies.length === 0) return null;
  const v = decideRbac(f, ctx);
  switch (v.kind) {
    case 'audit':
      if (v.match !== null)
        obs?.decision(ctx.requestId, 'rbac', 'AUDIT', policyName(v.match), ruleOf(v.match), 'audit', '');
      return null;
    case 'allow':
      if (f.action === 'ALLOW')
        obs?.decision(ctx.requestId, 'rbac', 'ALLOW', policyName(v.match), ruleOf(v.match), 'allow', '');
      return null;
    case 'deny':
      obs?.decision(ctx.requestId, 'rbac', f.action, policyName(v.match), ruleOf(v.match), 'deny', '');
      return {
        status: 403,
        body: RBAC_DENIED,
        headers: null,
        flag: '-',
        details: `rbac_access_denied_matched_policy[${policyId(v.match)}]`,
      };
  }
}

// ---------------------------------------------------------------- jwt_authn

function runJwt(
  ctx: FilterContext,
  f: JwtAuthnFilter,
  rt: FilterRuntime,
): FilterReply | null | Promise<FilterReply | null> {
  const d = runJwtAuthn(ctx, f, rt.jwks, rt.now());
  if (d instanceof Promise) return d.then((x) => applyJwt(ctx, x, rt));
  return applyJwt(ctx, d, rt);
}

function applyJwt(ctx: FilterContext, d: JwtDecision, rt: FilterRuntime): FilterReply | null {
  if (d.kind === 'allow') {
    if (d.auth !== null) {
      ctx.auth = d.auth;
      ctx.claims = d.auth.claims;
    }
    addEdits(ctx, d.edits);
    rt.observer?.decision(ctx.requestId, 'jwt_authn', '-', '-', -1, 'allow', '');
    return null;
  }
  rt.observer?.decision(ctx.requestId, 'jwt_authn', '-', '-', -1, 'deny', d.status);
  const message = JWT_STATUS[d.status];
  return {
    // RA-3: a token for the wrong audience is 403, every other failure 401.
    status: d.status === 'JwtAudienceNotAllowed' ? 403 : 401,
    body: Buffer.from(message),
    headers: ['www-authenticate', wwwAuthenticate(d.status, ctx.scheme, ctx.authority, ctx.path)],
    flag: '-',
    details: `jwt_authn_access_denied{${message.replaceAll(' ', '_')}}`,
  };
}

// ---------------------------------------------------------------- ext_authz

function runExtAuthz(
  ctx: FilterContext,
  f: ExtAuthzFilter,
  rt: FilterRuntime,
): FilterReply | null | Promise<FilterReply | null> {
  const d = decideExtAuthz(f, ctx);
  if (d.kind === 'skip') return null;
  const policy = d.match;
  if (d.dryRun) {
    rt.observer?.decision(
      ctx.requestId,
      'ext_authz',
      'CUSTOM',
      policyName(policy),
      policy.rule,
      'dry_run_allow',
      '',
    );
    return null;
  }
  const bodyCfg = f.provider.body;
  const body = bodyCfg === null ? null : readBodyPrefix(ctx.req, bodyCfg.maxRequestBytes);
  return (body ?? Promise.resolve(null)).then(async (b) => {
    if (b !== null) {
      ctx.bodyPrefix = b.buffer.length > 0 ? b.buffer : null;
      // Envoy's ext_authz buffer: a larger body without allowPartialMessage is refused.
      if (!b.complete && bodyCfg !== null && !bodyCfg.allowPartialMessage)
        return {
          status: 413,
          body: PAYLOAD_TOO_LARGE,
          headers: null,
          flag: '-',
          details: 'request_payload_too_large',
        };
    }
    const sent = b === null ? null : b.buffer.subarray(0, bodyCfg!.maxRequestBytes);
    const answer = await callAuthorizer(f, {
      req: ctx,
      requestId: ctx.requestId,
      protocol: ctx.req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/1.${ctx.req.httpVersionMinor}`,
      body: sent,
      bodyComplete: b?.complete ?? true,
      startTimeMs: ctx.startTimeMs,
    });
    return applyExtAuthz(ctx, f, answer, policy, rt);
  });
}

function applyExtAuthz(
  ctx: FilterContext,
  f: ExtAuthzFilter,
  a: CheckAnswer,
  policy: PolicyMatch,
  rt: FilterRuntime,
): FilterReply | null {
  const name = policyName(policy);
  const rid = ctx.requestId;
  const obs = rt.observer;
  switch (a.kind) {
    case 'allow':
      addEdits(ctx, a.edits);
      if (a.responseHeaders !== null) (ctx.responseHeadersToAdd ??= []).push(...a.responseHeaders);
      obs?.decision(rid, 'ext_authz', 'CUSTOM', name, policy.rule, 'allow', '');
      return null;
    case 'deny':
      obs?.decision(rid, 'ext_authz', 'CUSTOM', name, policy.rule, 'deny', String(a.status));
      return {
        status: a.status,
        body: a.body,
        headers: a.headers,
        flag: 'UAEX',
        details: 'ext_authz_denied',
      };
    case 'error':
      if (f.provider.failOpen) {
        obs?.decision(rid, 'ext_authz', 'CUSTOM', name, policy.rule, 'error_allowed', a.reason);
        return null;
      }
      obs?.decision(rid, 'ext_authz', 'CUSTOM', name, policy.rule, 'error', a.reason);
      return {
        status: f.provider.statusOnError,
        body: null,
        headers: null,
        flag: 'UAEX',
        details: 'ext_authz_error',
      };
  }
}

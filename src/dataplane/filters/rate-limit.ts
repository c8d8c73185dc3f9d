/**
 * The rate-limit filter (RateLimitPolicy): which rules count this request and in which bucket,
 * one store call per storage for all of them, then 429 or on. Envoy's answers: 429 with
 * `x-envoy-ratelimited: true` and flag RL (`request_rate_limited`); a Global store that cannot
 * answer in time is 500 RLSE (`rate_limiter_error`) under failureMode Closed, and the local
 * fallback under Open, so the edge is never unprotected and never 5xx for it.
 */
import type { CompiledRateLimitRule, RateLimitFilter, RateLimitRequest } from '../../snapshot/types.ts';
import type { LimitCheck, LimitVerdict, LimitWaiter, RemoteLimiter } from '../../ratelimit/limits.ts';
import {
  FILTER_FAILED,
  Later,
  type CountedLimit,
  type FilterContext,
  type FilterReply,
  type RateLimitRuntime,
  type RateLimitSink,
} from './filter.ts';
import { askRateLimitService } from './rate-limit-service.ts';

type Counted = CountedLimit;

/** What the rules decided: null = on (headers added); a reply = 429 or 500. */
type Outcome = FilterReply | null;

const SEP = '\n';

/** The rule's bucket for this request; null when a key part has no value (not counted). */
function bucketOf(rule: CompiledRateLimitRule, req: RateLimitRequest): string | null {
  const parts = rule.key;
  if (parts.length === 0) return rule.bucket;
  let out = rule.bucket;
  for (let i = 0; i < parts.length; i++) {
    const v = parts[i]!.read(req);
    if (v === null) return null;
    // Length-prefixed, so no value can pose as two.
    out += SEP + v.length + ':' + v;
  }
  return out;
}

/** The rules of `f` that count `req`, added to `out` (exempt clients reported, never counted). */
export function countedRules(
  f: RateLimitFilter,
  req: RateLimitRequest,
  observer: RateLimitSink | null,
  out: Counted[] = [],
): Counted[] {
  const rules = f.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.applies !== null && !rule.applies(req)) continue;
    if (rule.exempt !== null && rule.exempt(req.remoteIp)) {
      observer?.decision(rule.policy, rule.name, 'exempt');
      continue;
    }
    const bucket = bucketOf(rule, req);
    if (bucket === null) continue;
    out.push({ rule, check: { bucket, limit: rule.limit, shadow: rule.shadow } });
  }
  return out;
}

const TOO_MANY = Buffer.alloc(0);

export function runRateLimit(
  ctx: FilterContext,
  f: RateLimitFilter,
  rt: RateLimitRuntime,
): Outcome | Promise<Outcome> | Later {
  const carried = ctx.deferredLimits;
  ctx.deferredLimits = null;
  const counted = countedRules(f, ctx, rt.observer, carried ?? []);
  if (counted.length === 0) return null;
  let remote = 0;
  let global = 0;
  for (let i = 0; i < counted.length; i++) {
    const storage = counted[i]!.rule.storage;
    if (storage !== 'Local') remote++;
    if (storage === 'Global') global++;
  }
  if (remote === 0) {
    const v = rt.local.check(checksOf(counted));
    return v instanceof Promise ? v.then((x) => decide(ctx, counted, x, rt)) : decide(ctx, counted, v, rt);
  }
  if (f.defer) {
    ctx.deferredLimits = counted;
    return null;
  }
  if (global === counted.length && rt.global !== null) return decideGlobal(ctx, counted, rt.global, rt);
  return decideGroups(ctx, counted, rt);
}

function checksOf(counted: readonly Counted[]): LimitCheck[] {
  const out = new Array<LimitCheck>(counted.length);
  for (let i = 0; i < counted.length; i++) out[i] = counted[i]!.check;
  return out;
}

/** ingress-nginx's limit_req / limit_conn refusal: a bare 503, no Retry-After. */
const NGINX_LIMITED: FilterReply = {
  status: 503,
  body: null,
  headers: null,
  flag: 'RL',
  details: 'request_rate_limited',
};

const RLSE: FilterReply = {
  status: 500,
  body: null,
  headers: null,
  flag: 'RLSE',
  details: 'rate_limiter_error',
};

/** Who decides a group of rules: this process, Redis, or one rate limit service. */
interface Group {
  readonly indexes: number[];
  /** null: a remote store that cannot answer now (failureMode decides). */
  readonly ask: (
    checks: readonly Counted[],
  ) => readonly LimitVerdict[] | Promise<readonly LimitVerdict[]> | null;
  readonly remote: boolean;
}

/**
 * One request waiting on the Global store: its answer is decided and handed to the pipeline in
 * the store's reply handler, with no promise per request.
 */
class GlobalDecision extends Later implements LimitWaiter {
  readonly #ctx: FilterContext & RateLimitRequest;
  readonly #counted: readonly Counted[];
  readonly #rt: RateLimitRuntime;

  constructor(ctx: FilterContext & RateLimitRequest, counted: readonly Counted[], rt: RateLimitRuntime) {
    super();
    this.#ctx = ctx;
    this.#counted = counted;
    this.#rt = rt;
  }

  answered(verdicts: readonly LimitVerdict[]): void {
    let r: Outcome;
    try {
      r = decide(this.#ctx, this.#counted, verdicts, this.#rt);
    } catch {
      r = FILTER_FAILED;
    }
    this.settle(r);
  }

  failed(): void {
    let r: Outcome;
    try {
      r = storeFailed(this.#ctx, this.#counted, this.#rt);
    } catch {
      r = FILTER_FAILED;
    }
    this.settle(r);
  }
}

/**
 * Every rule on Redis, the common case: one call, no grouping. A store that cannot answer now
 * is decided at once; one that fails or times out leaves the rules to failureMode as well.
 */
function decideGlobal(
  ctx: FilterContext & RateLimitRequest,
  counted: readonly Counted[],
  global: RemoteLimiter,
  rt: RateLimitRuntime,
): Outcome | Later {
  const wait = new GlobalDecision(ctx, counted, rt);
  return global.check(checksOf(counted), wait) ? wait : storeFailed(ctx, counted, rt);
}

/** A remote store's answer as a promise (rules on several stores wait on them together). */
function askRemote(store: RemoteLimiter, checks: readonly LimitCheck[]): Promise<readonly LimitVerdict[]> {
  return new Promise((resolve, reject) => {
    if (!store.check(checks, { answered: resolve, failed: () => reject(STORE_FAILED) })) reject(STORE_FAILED);
  });
}

const STORE_FAILED = new Error('the rate-limit store cannot answer');

/**
 * failureMode for rules whose store failed or cannot answer: Closed (a non-shadow rule) refuses,
 * Open counts them in this process.
 */
function failureVerdicts(mine: readonly Counted[], rt: RateLimitRuntime): null | readonly LimitVerdict[] {
  let refuse = false;
  for (let i = 0; i < mine.length; i++) {
    const r = mine[i]!.rule;
    const closed = r.failureMode === 'Closed';
    rt.observer?.decision(r.policy, r.name, closed ? 'error' : 'fallback');
    if (closed && !r.shadow) refuse = true;
  }
  return refuse ? null : fallbackFor(mine, rt);
}

/** Closed answers 500 RLSE (Envoy's failure_mode_deny); Open decides with the local fallback. */
function storeFailed(
  ctx: FilterContext & RateLimitRequest,
  counted: readonly Counted[],
  rt: RateLimitRuntime,
): Outcome {
  const v = failureVerdicts(counted, rt);
  return v === null ? RLSE : decide(ctx, counted, v, rt);
}

/** Rules on more than one store (Local, Redis, rate limit services): one call per store, all at once. */
async function decideGroups(
  ctx: FilterContext & RateLimitRequest,
  counted: readonly Counted[],
  rt: RateLimitRuntime,
): Promise<Outcome> {
  const groups = new Map<unknown, Group>();
  counted.forEach((c, i) => {
    const r = c.rule;
    const owner = r.storage === 'Local' ? rt.local : r.storage === 'Global' ? rt.global : r.service;
    let g = groups.get(owner);
    if (g === undefined) {
      const ask: Group['ask'] =
        r.storage === 'Service'
          ? (cs) => askRateLimitService(r.service!, cs, ctx)
          : r.storage === 'Global'
            ? (cs) => (rt.global === null ? null : askRemote(rt.global, checksOf(cs)))
            : (cs) => rt.local.check(checksOf(cs));
      groups.set(owner, (g = { indexes: [], ask, remote: r.storage !== 'Local' }));
    }
    g.indexes.push(i);
  });
  const verdicts: LimitVerdict[] = new Array<LimitVerdict>(counted.length);
  let refuse = false;
  await Promise.all(
    [...groups.values()].map(async (g) => {
      const mine = g.indexes.map((i) => counted[i]!);
      let v: readonly LimitVerdict[] | null;
      try {
        v = await g.ask(mine);
      } catch {
        if (!g.remote) throw new Error('local rate-limit store failed');
        v = null;
      }
      if (v === null) v = failureVerdicts(mine, rt);
      if (v === null) {
        refuse = true;
        return;
      }
      const answered = v;
      g.indexes.forEach((i, k) => (verdicts[i] = answered[k]!));
    }),
  );
  if (refuse) return RLSE;
  return decide(ctx, counted, verdicts, rt);
}

const NO_LIMIT_KNOWN: LimitVerdict = { allowed: true, remaining: 0, resetMs: 0 };

/**
 * failureMode Open: the rules' own limits, counted in this process. A Service rule that leaves
 * its limit to the service has none to count here and admits (as Envoy's failure_mode_deny false).
 */
function fallbackFor(mine: readonly Counted[], rt: RateLimitRuntime): readonly LimitVerdict[] {
  let unknown = 0;
  for (let i = 0; i < mine.length; i++) if (mine[i]!.rule.limit.override === false) unknown++;
  if (unknown === 0) return rt.fallback.check(checksOf(mine));
  const known = mine.filter((c) => c.rule.limit.override !== false);
  const v = known.length === 0 ? [] : rt.fallback.check(checksOf(known));
  let k = 0;
  return mine.map((c) => (c.rule.limit.override === false ? NO_LIMIT_KNOWN : v[k++]!));
}

function decide(
  ctx: FilterContext,
  counted: readonly Counted[],
  verdicts: readonly LimitVerdict[],
  rt: RateLimitRuntime,
): Outcome {
  let refusedBy: number = -1;
  let shown: number = -1;
  for (let i = 0; i < counted.length; i++) {
    const rule = counted[i]!.rule;
    const v = verdicts[i]!;
    if (!v.allowed) {
      rt.observer?.decision(rule.policy, rule.name, rule.shadow ? 'shadow_over_limit' : 'over_limit');
      if (!rule.shadow && (refusedBy < 0 || v.resetMs > verdicts[refusedBy]!.resetMs)) refusedBy = i;
    } else rt.observer?.decision(rule.policy, rule.name, 'ok');
    // The headers describe the enforced rate (not in-flight) rule closest to its limit.
    if (
      !rule.shadow &&
      rule.responseHeaders !== 'None' &&
      rule.limit.algorithm !== 'InFlight' &&
      (shown < 0 || v.remaining < verdicts[shown]!.remaining)
    )
      shown = i;
  }
  const headers = shown < 0 ? null : limitHeaders(counted[shown]!.rule, verdicts[shown]!);
  if (refusedBy < 0) {
    if (headers !== null) (ctx.responseHeadersToAdd ??= []).push(...headers);
    holdInFlight(ctx, counted, verdicts, rt);
    return null;
  }
  if (counted[refusedBy]!.rule.rejectStatus === 503) return NGINX_LIMITED;
  const retryAfter = String(Math.max(1, Math.ceil(verdicts[refusedBy]!.resetMs / 1000)));
  const out = ['retry-after', retryAfter, 'x-envoy-ratelimited', 'true'];
  if (headers !== null) out.push(...headers);
  return { status: 429, body: TOO_MANY, headers: out, flag: 'RL', details: 'request_rate_limited' };
}

/** Admitted: the InFlight buckets it counts in are released when its response ends, however it ends. */
function holdInFlight(
  ctx: FilterContext,
  counted: readonly Counted[],
  verdicts: readonly LimitVerdict[],
  rt: RateLimitRuntime,
): void {
  let held: string[] | null = null;
  for (let i = 0; i < counted.length; i++) {
    const c = counted[i]!;
    if (c.rule.limit.algorithm === 'InFlight' && verdicts[i]!.allowed) (held ??= []).push(c.check.bucket);
  }
  if (held === null) return;
  const buckets = held;
  ctx.res.once('close', () => rt.local.release(buckets));
}

/**
 * Draft: the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers, structured fields:
 * `RateLimit-Policy: "name";q=100;w=60`, `RateLimit: "name";r=42;t=17`). XRateLimit: the
 * X-RateLimit-* trio Envoy's `DRAFT_VERSION_03` sends (`X-RateLimit-Limit: 100, 100;w=60`).
 */
export function limitHeaders(rule: CompiledRateLimitRule, v: LimitVerdict): string[] {
  const windowS = Math.round(rule.limit.windowMs / 1000);
  const quota = rule.limit.algorithm === 'TokenBucket' ? rule.limit.burst : rule.limit.requests;
  const resetS = String(Math.max(0, Math.ceil(v.resetMs / 1000)));
  if (rule.responseHeaders === 'Draft') {
    const name = JSON.stringify(rule.name);
    return [
      'ratelimit-policy',
      `${name};q=${quota};w=${windowS}`,
      'ratelimit',
      `${name};r=${v.remaining};t=${resetS}`,
    ];
  }
  return [
    'x-ratelimit-limit',
    `${quota}, ${rule.limit.requests};w=${windowS}`,
    'x-ratelimit-remaining',
    String(v.remaining),
    'x-ratelimit-reset',
    resetS,
  ];
}

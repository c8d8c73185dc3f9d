/**
 * HTTPRoute → RouteAction: forward (VS-19..VS-23), redirect (VS-15, VS-16), direct response
 * (VS-17), plus header operations (VS-21).
 */
import type { DiagnosticSubject } from '../errors/diagnostic.ts';
import type {
  Destination,
  HeaderOperations,
  HTTPMatchRequest,
  HTTPRetry,
  HTTPRoute,
} from '../model/networking.ts';
import type {
  DirectResponseAction,
  ForwardAction,
  HeaderOps,
  HeaderValue,
  PathRewrite,
  RedirectAction,
  HashPolicy,
  RequestMirror,
  RetryOn,
  RetryPolicy,
  RouteAction,
  WeightedCluster,
} from '../snapshot/types.ts';
import { parseDuration } from '../util/duration.ts';
import { compileRe2 } from '../util/re2.ts';
import { parseCommandOperators } from '../util/command-operators.ts';
import { resolveDestination, type ClusterContext } from './clusters.ts';
import { compileErrorPages } from './error-pages.ts';
import type { MatchBuildProblem } from './match.ts';
import { perMillionOf } from './route-filters.ts';

export interface ActionInput {
  readonly ctx: ClusterContext;
  readonly rule: HTTPRoute;
  /** The match this route was made from (undefined for a rule without match). */
  readonly match: HTTPMatchRequest | undefined;
  readonly vsNamespace: string;
  readonly serverPort: number;
  readonly owner: DiagnosticSubject;
  /** `spec.http[i]`. */
  readonly path: string;
}

export type ActionProblem = MatchBuildProblem;

export const DEFAULT_BACKOFF_BASE_MS = 25;

const NO_RETRY_ON: RetryOn = {
  connectFailure: false,
  refusedStream: false,
  reset: false,
  resetBeforeRequest: false,
  fiveXx: false,
  gatewayError: false,
  retriable4xx: false,
  statusCodes: new Set(),
};

/** VS-23: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes with no codes. */
export const DEFAULT_RETRY_ON: RetryOn = { ...NO_RETRY_ON, connectFailure: true, refusedStream: true };

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 2,
  perTryTimeoutMs: null,
  retryOn: DEFAULT_RETRY_ON,
  backoffBaseMs: DEFAULT_BACKOFF_BASE_MS,
  backoffMaxMs: DEFAULT_BACKOFF_BASE_MS * 10,
  skipTriedHosts: true,
};

export const NO_RETRY: RetryPolicy = { ...DEFAULT_RETRY, attempts: 0, retryOn: NO_RETRY_ON };

/**
 * VS-24: Envoy retryOn tokens. gRPC status tokens (cancelled, unavailable, …) only concern gRPC
 * responses and are accepted without effect on HTTP status handling. Bare numbers are status codes.
 */
export function parseRetryOn(text: string): { retryOn: RetryOn; unknown: string[] } {
  const codes = new Set<number>();
  const on = { ...NO_RETRY_ON };
  const unknown: string[] = [];
  for (const raw of text.split(',')) {
    const t = raw.trim();
    if (t === '') continue;
    if (/^\d+$/.test(t)) {
      codes.add(Number(t));
      continue;
    }
    switch (t) {
      case 'connect-failure':
        on.connectFailure = true;
        break;
      case 'refused-stream':
        on.refusedStream = true;
        break;
      case 'reset':
        on.reset = true;
        break;
      case 'reset-before-request':
        on.resetBeforeRequest = true;
        break;
      case '5xx':
        on.fiveXx = true;
        break;
      case 'gateway-error':
        on.gatewayError = true;
        break;
      case 'retriable-4xx':
        on.retriable4xx = true;
        break;
      case 'retriable-status-codes':
      case 'envoy-ratelimited':
      case 'retriable-headers':
      case 'http3-post-connect-failure':
      case 'cancelled':
      case 'deadline-exceeded':
      case 'internal':
      case 'resource-exhausted':
      case 'unavailable':
        break;
      default:
        unknown.push(t);
    }
  }
  return { retryOn: { ...on, statusCodes: codes }, unknown };
}

function durationMsOrNull(text: string | undefined, path: string, problems: ActionProblem[]): number | null {
  if (text === undefined) return null;
  const r = parseDuration(text, { bareSeconds: false });
  if (!r.ok) {
    problems.push({ path, message: r.error });
    return null;
  }
  return r.ms;
}

/** Istio retry.ConvertPolicy: unset → default; attempts ≤ 0 → off; else default overridden field by field. */
export function compileRetry(
  retries: HTTPRetry | undefined,
  timeoutMs: number | null,
  path: string,
  problems: ActionProblem[],
): RetryPolicy {
  if (retries === undefined) return DEFAULT_RETRY;
  const attempts = retries.attempts ?? 0;
  if (attempts <= 0) return NO_RETRY;
  let retryOn = DEFAULT_RETRY_ON;
  if (retries.retryOn !== undefined && retries.retryOn !== '') {
    const parsed = parseRetryOn(retries.retryOn);
    retryOn = parsed.retryOn;
    if (parsed.unknown.length > 0)
      problems.push({
        path: `${path}.retryOn`,
        message: `unknown retryOn token(s) ignored: ${parsed.unknown.join(', ')}`,
      });
  }
  let perTry = durationMsOrNull(retries.perTryTimeout, `${path}.perTryTimeout`, problems);
  // VS-25: a per-try timeout at or above the route timeout never fires first.
  if (perTry !== null && timeoutMs !== null && timeoutMs > 0 && perTry >= timeoutMs) perTry = null;
  const base = durationMsOrNull(retries.backoff, `${path}.backoff`, problems) ?? DEFAULT_BACKOFF_BASE_MS;
  return {
    attempts,
    perTryTimeoutMs: perTry,
    retryOn,
    backoffBaseMs: base,
    backoffMaxMs: base * 10,
    skipTriedHosts: retries.retryIgnorePreviousHosts ?? true,
  };
}

/** VS-21 header operations, or null when there are none. Names lowercased. */
/**
 * VS-21 header operations. Values go through Envoy's substitution rules: `%%` is a literal `%`,
 * `%NAME%`/`%NAME(args)%` an operator from snapshot/header-operators.ts; anything else with a `%`
 * is an error (Envoy refuses the route configuration), and that operation is left out.
 */
export function compileHeaderOps(
  ops: HeaderOperations | undefined,
  path: string,
  problems: ActionProblem[],
): HeaderOps | null {
  if (!ops) return null;
  const values = (kind: 'set' | 'add'): (readonly [string, HeaderValue])[] => {
    const out: (readonly [string, HeaderValue])[] = [];
    for (const [k, v] of Object.entries(ops[kind] ?? {})) {
      const value = compileHeaderValue(v, `${path}.${kind}.${k}`, problems);
      if (value !== null) out.push([k.toLowerCase(), value]);
    }
    return out;
  };
  const remove = (ops.remove ?? []).map((h) => h.toLowerCase());
  const set = values('set');
  const add = values('add');
  if (remove.length === 0 && set.length === 0 && add.length === 0) return null;
  return { remove, set, add };
}

function compileHeaderValue(text: string, path: string, problems: ActionProblem[]): HeaderValue | null {
  if (!text.includes('%')) return text;
  const parsed = parseCommandOperators(text, 'header');
  if (parsed.errors.length > 0) {
    problems.push({ path, message: parsed.errors[0]!, level: 'error' });
    return null;
  }
  const only = parsed.parts[0];
  if (parsed.parts.length === 0) return '';
  if (parsed.parts.length === 1 && typeof only === 'string') return only;
  return { text, parts: parsed.parts };
}

const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

function decodeBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** VS-12/VS-13: the rewrite a route applies, given the match it was made from. */
function compilePathRewrite(input: ActionInput, problems: ActionProblem[]): PathRewrite | null {
  const rw = input.rule.rewrite;
  if (!rw) return null;
  if (rw.uriRegexRewrite) {
    const r = compileRe2(rw.uriRegexRewrite.match, {});
    if (!r.ok) {
      problems.push({ path: `${input.path}.rewrite.uriRegexRewrite.match`, message: r.error });
      return null;
    }
    return { kind: 'regex', pattern: r.regex, replacement: rw.uriRegexRewrite.rewrite };
  }
  if (rw.uri === undefined) return null;
  const uri = input.match?.uri;
  if (uri === undefined) return { kind: 'prefix', prefix: '/', ignoreCase: false, replacement: rw.uri };
  if ('prefix' in uri) {
    return {
      kind: 'prefix',
      prefix: uri.prefix,
      ignoreCase: input.match?.ignoreUriCase === true,
      replacement: rw.uri,
    };
  }
  return { kind: 'full', replacement: rw.uri };
}

/**
 * VS-27 as Istio's MirrorPercent/MirrorPercentByPolicy: `mirror` takes `mirrorPercentage`, else
 * the legacy whole-percent `mirrorPercent`, else 100 %; each `mirrors[]` entry its own
 * `percentage`, else 100 %. An explicit 0 mirrors nothing and is left out. Undefined when none.
 */
function compileMirrors(input: ActionInput): readonly RequestMirror[] | undefined {
  const { rule, path } = input;
  const wanted: { dest: Destination; perMillion: number; path: string }[] = [];
  if (rule.mirror !== undefined) {
    const perMillion =
      rule.mirrorPercentage !== undefined
        ? perMillionOf(rule.mirrorPercentage)
        : rule.mirrorPercent !== undefined
          ? rule.mirrorPercent * 10_000
          : 1_000_000;
    wanted.push({ dest: rule.mirror, perMillion, path: `${path}.mirror` });
  }
  rule.mirrors?.forEach((m, i) => {
    const perMillion = m.percentage !== undefined ? perMillionOf(m.percentage) : 1_000_000;
    wanted.push({ dest: m.destination, perMillion, path: `${path}.mirrors[${i}].destination` });
  });
  const shadowHostSuffix = input.ctx.indexes.meshConfig?.shadowHostSuffix === true;
  const diagnostics = input.ctx.diagnostics;
  const out: RequestMirror[] = [];
  for (const w of wanted) {
    if (w.perMillion <= 0) continue;
    const from = diagnostics.length;
    const resolved = resolveDestination(
      input.ctx,
      w.dest,
      input.vsNamespace,
      input.serverPort,
      input.owner,
      w.path,
    );
    // An unknown mirror cluster does not fail requests: Envoy just mirrors nothing there.
    for (let i = from; i < diagnostics.length; i++) {
      const d = diagnostics[i]!;
      if (d.path === w.path)
        diagnostics[i] = {
          ...d,
          message: d.message.replace('requests routed there get 503 NC', 'nothing is mirrored there'),
        };
    }
    out.push({
      clusterName: resolved.clusterName,
      cluster: resolved.cluster,
      perMillion: Math.min(w.perMillion, 1_000_000),
      shadowHostSuffix,
    });
  }
  return out.length > 0 ? out : undefined;
}

/** Returns the action, or null when the route must be dropped (a problem says why). */
export function compileAction(input: ActionInput, problems: ActionProblem[]): RouteAction | null {
  const { rule, path } = input;
  if (rule.redirect) {
    const r = rule.redirect;
    const code = r.redirectCode === undefined || r.redirectCode === 0 ? 301 : r.redirectCode;
    if (!REDIRECT_CODES.has(code)) {
      problems.push({
        path: `${path}.redirect.redirectCode`,
        message: `redirect code ${code} is not one of 301, 302, 303, 307, 308; the rule is dropped`,
      });
      return null;
    }
    const action: RedirectAction = {
      kind: 'redirect',
      code,
      scheme: r.scheme ?? null,
      authority: r.authority ?? null,
      port: r.port ?? null,
      derivePort: r.derivePort ?? null,
      uri: r.uri ?? null,
      httpsRedirect: false,
    };
    return action;
  }
  if (rule.directResponse) {
    const d = rule.directResponse;
    let body: Uint8Array | null = null;
    if (d.body?.string !== undefined) body = new TextEncoder().encode(d.body.string);
    else if (d.body?.bytes !== undefined) body = decodeBase64(d.body.bytes);
    const action: DirectResponseAction = {
      kind: 'direct',
      status: d.status,
      body: body && body.length > 0 ? body : null,
    };
    return action;
  }
  // Delegates are not followed: the rule is left out (model/unsupported.ts warns at load).
  if (rule.delegate) return null;
  const dests = rule.route ?? [];
  if (dests.length === 0) {
    problems.push({ path, message: 'rule has no route, redirect or directResponse; it is dropped' });
    return null;
  }
  const single = dests.length === 1;
  // Istio ignores weight-0 destinations when there are several (unless all are 0, which validation rejects).
  const anyWeight = dests.some((d) => (d.weight ?? 0) > 0);
  const used = dests.map((d, i) => ({ d, i })).filter(({ d }) => single || !anyWeight || (d.weight ?? 0) > 0);
  // Envoy's route hash policy gathers every destination's key (istio route.go).
  const hashPolicy: HashPolicy[] = [];
  const destinations: WeightedCluster[] = used.map(({ d, i }) => {
    const resolved = resolveDestination(
      input.ctx,
      d.destination,
      input.vsNamespace,
      input.serverPort,
      input.owner,
      `${path}.route[${i}].destination`,
    );
    if (resolved.hashPolicy !== null) hashPolicy.push(resolved.hashPolicy);
    return {
      clusterName: resolved.clusterName,
      cluster: resolved.cluster,
      // VS-20: a single destination takes all traffic whatever its weight.
      weight: single ? 1 : (d.weight ?? 0),
      requestHeaders: compileHeaderOps(d.headers?.request, `${path}.route[${i}].headers.request`, problems),
      responseHeaders: compileHeaderOps(
        d.headers?.response,
        `${path}.route[${i}].headers.response`,
        problems,
      ),
    };
  });
  let weighted = destinations;
  let totalWeight = weighted.reduce((s, d) => s + d.weight, 0);
  if (totalWeight === 0) {
    problems.push({
      path: `${path}.route`,
      message: 'all destination weights are 0; traffic is split evenly',
    });
    weighted = destinations.map((d) => ({ ...d, weight: 1 }));
    totalWeight = weighted.length;
  }
  const timeoutMs = durationMsOrNull(rule.timeout, `${path}.timeout`, problems);
  let retry = compileRetry(rule.retries, timeoutMs, `${path}.retries`, problems);
  // VS-25: a single destination balanced by consistent hash retries on the same endpoint,
  // unless retryIgnorePreviousHosts says otherwise.
  if (single && hashPolicy.length > 0 && rule.retries?.retryIgnorePreviousHosts === undefined)
    retry = { ...retry, skipTriedHosts: false };
  const action: ForwardAction = {
    kind: 'forward',
    destinations: weighted,
    totalWeight,
    rewrite: compilePathRewrite(input, problems),
    authority: rule.rewrite?.authority ?? null,
    // VS-22: 0s means no timeout, like unset.
    timeoutMs: timeoutMs === 0 ? null : timeoutMs,
    retry,
    hashPolicy,
  };
  const mirrors = compileMirrors(input);
  const readTimeoutMs = rule.ingressNginx?.readTimeoutMs;
  const sendTimeoutMs = rule.ingressNginx?.sendTimeoutMs;
  const forward: ForwardAction = {
    ...action,
    ...(mirrors === undefined ? {} : { mirrors }),
    ...(readTimeoutMs === undefined || readTimeoutMs <= 0 ? {} : { readTimeoutMs }),
    ...(sendTimeoutMs === undefined || sendTimeoutMs <= 0 ? {} : { sendTimeoutMs }),
  };
  const pages = rule.ingressNginx?.errorPages;
  if (pages === undefined) return forward;
  const errorPages = compileErrorPages(pages, forward, (d) =>
    resolveDestination(
      input.ctx,
      d,
      input.vsNamespace,
      input.serverPort,
      input.owner,
      `${path}.ingressNginx.errorPages.backend`,
    ),
  );
  return { ...forward, errorPages };
}

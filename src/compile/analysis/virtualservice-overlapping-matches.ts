import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { HTTPMatchRequest, HTTPRoute, StringMatch } from '../../model/networking.ts';
import type { AnalysisContext } from './context.ts';
import { finding } from './context.ts';

/** JSON with sorted keys, so two matches written in a different field order compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A match without its name: names do not affect routing. */
function matchKey(match: object): string {
  const { name: _name, ...rest } = match as { name?: string };
  return canonical(rest);
}

function routeName(route: { name?: string }, i: number): string {
  return route.name ? JSON.stringify(route.name) : `#${i}`;
}

function requestName(match: { name?: string }, i: number): string {
  return match.name ? JSON.stringify(match.name) : `#${i}`;
}

interface Reporter {
  unreachable(ruleIndex: number, rule: string, reason: string): void;
  ineffective(ruleIndex: number, rule: string, match: string, dup: string): void;
}

/** Shape of Istio's OverlappingMatchValidationForHTTPRoute: only uri-prefix matches take part. */
interface PrefixMatch {
  readonly ruleIndex: number;
  readonly rule: string;
  readonly match: string;
  readonly prefix: string;
  readonly port: number | undefined;
  readonly method: string;
  readonly authority: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly queryParams: ReadonlyMap<string, string>;
  readonly withoutHeaders: ReadonlyMap<string, string>;
}

function exactOrPrefix(m: StringMatch | Record<string, never> | undefined): string {
  if (!m) return '';
  if ('exact' in m && m.exact) return `exact:${m.exact}`;
  if ('prefix' in m && m.prefix) return `prefix:${m.prefix}`;
  return '';
}

function mapOf(r: HTTPMatchRequest['headers']): Map<string, string> {
  return new Map(Object.entries(r ?? {}).map(([k, v]) => [k, exactOrPrefix(v)]));
}

function prefixMatchOf(
  route: HTTPRoute,
  ruleIndex: number,
  match: HTTPMatchRequest,
  matchIndex: number,
): PrefixMatch | undefined {
  const uri = match.uri;
  if (!uri || !('prefix' in uri) || !uri.prefix) return undefined;
  return {
    ruleIndex,
    rule: routeName(route, ruleIndex),
    match: requestName(match, matchIndex),
    prefix: uri.prefix,
    port: match.port,
    // Istio's rule: a match without a method is treated as GET.
    method: exactOrPrefix(match.method) || 'exact:GET',
    authority: exactOrPrefix(match.authority),
    headers: mapOf(match.headers),
    queryParams: mapOf(match.queryParams),
    withoutHeaders: mapOf(match.withoutHeaders),
  };
}

function sameOrNarrower(a: string, b: string): boolean {
  return a === b || a.startsWith(b);
}

function mapsCovered(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w === undefined || !sameOrNarrower(v, w)) return false;
  }
  return true;
}

/** Istio's coveredValidation: does the earlier match `a` take every request the later `b` would? */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix)) return false;
  if (a.port !== b.port) return false;
  if (!sameOrNarrower(a.method, b.method)) return false;
  if (!sameOrNarrower(a.authority, b.authority)) return false;
  return (
    mapsCovered(a.headers, b.headers) &&
    mapsCovered(a.queryParams, b.queryParams) &&
    mapsCovered(a.withoutHeaders, b.withoutHeaders)
  );
}

/** Istio's analyzeUnreachable{HTTP,TCP,TLS}Rules; HTTP also gets the prefix-overlap check. */
function analyzeRules(
  rules: readonly { name?: string; match?: readonly object[] }[],
  report: Reporter,
  overlap:
    | ((
        rule: HTTPRoute,
        ruleIndex: number,
        match: HTTPMatchRequest,
        matchIndex: number,
      ) => PrefixMatch | undefined)
    | undefined,
): void {
  const seen = new Map<string, number>();
  let emptyAt = -1;
  const prefixes: PrefixMatch[] = [];
  rules.forEach((rule, i) => {
    const matches = rule.match ?? [];
    const name = routeName(rule, i);
    if (matches.length === 0) {
      if (emptyAt >= 0)
        report.unreachable(
          i,
          name,
          `only the last rule can have no matches; rule ${routeName(rules[emptyAt] ?? {}, emptyAt)} already matches everything`,
        );
      emptyAt = i;
      return;
    }
    let duplicates = 0;
    matches.forEach((m, j) => {
      if (emptyAt >= 0) {
        report.unreachable(
          i,
          name,
          `rule ${routeName(rules[emptyAt] ?? {}, emptyAt)} before it has no matches and takes every request`,
        );
        return;
      }
      const key = matchKey(m);
      const dup = seen.get(key);
      if (dup !== undefined) {
        report.ineffective(
          i,
          name,
          requestName(m as { name?: string }, j),
          `the same match in rule ${routeName(rules[dup] ?? {}, dup)}`,
        );
        duplicates++;
        return;
      }
      seen.set(key, i);
      const pm = overlap?.(rule as HTTPRoute, i, m as HTTPMatchRequest, j);
      if (pm) prefixes.push(pm);
    });
    if (emptyAt < 0 && duplicates === matches.length)
      report.unreachable(i, name, 'all matches used by prior rules');
  });
  for (let a = 0; a < prefixes.length; a++) {
    for (let b = a + 1; b < prefixes.length; b++) {
      const pa = prefixes[a]!;
      const pb = prefixes[b]!;
      if (pa.prefix === pb.prefix) continue;
      if (covers(pa, pb)) {
        report.ineffective(
          pb.ruleIndex,
          pb.rule,
          `${pb.match} (prefix ${pb.prefix})`,
          `match ${pa.match} (prefix ${pa.prefix}) of rule ${pa.rule}`,
        );
      }
    }
  }
}

/**
 * IST0130 VirtualServiceUnreachableRule (warning) and IST0131 VirtualServiceIneffectiveMatch
 * (info), as Istio's VirtualService validation computes them.
 */
export function analyzeVirtualServiceOverlappingMatches(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const vs of ctx.virtualServices) {
    const reporter = (proto: 'http' | 'tcp' | 'tls'): Reporter => ({
      unreachable: (i, rule, reason) =>
        out.push(
          finding({
            level: 'warning',
            code: 'SLUICE_ROUTE_UNREACHABLE',
            istioCode: 'IST0130',
            resource: vs,
            path: `spec.${proto}[${i}]`,
            message: `${proto} rule ${rule} is never used: ${reason}`,
          }),
        ),
      ineffective: (i, rule, match, dup) =>
        out.push(
          finding({
            level: 'info',
            code: 'SLUICE_ROUTE_OVERLAP',
            istioCode: 'IST0131',
            resource: vs,
            path: `spec.${proto}[${i}]`,
            message: `${proto} rule ${rule} match ${match} is never used: ${dup} already takes its requests`,
          }),
        ),
    });
    analyzeRules(vs.spec.http ?? [], reporter('http'), prefixMatchOf);
    analyzeRules(vs.spec.tcp ?? [], reporter('tcp'), undefined);
    analyzeRules(vs.spec.tls ?? [], reporter('tls'), undefined);
  }
  return out;
}

/**
 * HTTPMatchRequest → precompiled MatchCondition[] (VS-7..VS-11). Each condition is built once per
 * compile; `test` only reads the request (no regex compiling, no closures made per request).
 */
import type { HTTPMatchRequest, StringMatch } from '../model/networking.ts';
import type { MatchCondition, RequestView } from '../snapshot/types.ts';
import { headerValue, queryParamsOf } from '../snapshot/lookup.ts';
import { compileRe2 } from '../util/re2.ts';

type StringMatchOrPresent = StringMatch | Record<string, never>;

export interface MatchBuildProblem {
  readonly path: string;
  readonly message: string;
  /** An error even when the route itself survives (the config is refused, as Envoy refuses it). */
  readonly level?: 'error';
}

/** What one string test needs: a description and a test on a (possibly missing) value. */
interface ValueTest {
  readonly expected: string;
  readonly test: (value: string) => boolean;
}

function exactTest(want: string): ValueTest {
  return { expected: `exact ${want}`, test: (v) => v === want };
}

function prefixTest(want: string): ValueTest {
  return { expected: `prefix ${want}`, test: (v) => v.startsWith(want) };
}

/**
 * Compiles one StringMatch into a value test; null (with a problem) when its regex is unusable.
 * `{}` (no exact/prefix/regex) and `regex: "*"` mean "present" and return 'present'.
 */
function stringTest(
  m: StringMatchOrPresent,
  ignoreCase: boolean,
  path: string,
  problems: MatchBuildProblem[],
): ValueTest | 'present' | null {
  if ('exact' in m && typeof m.exact === 'string') return exactTest(m.exact);
  if ('prefix' in m && typeof m.prefix === 'string') return prefixTest(m.prefix);
  if ('regex' in m && typeof m.regex === 'string') {
    if (m.regex === '*') return 'present';
    const r = compileRe2(m.regex, { ignoreCase });
    if (!r.ok) {
      problems.push({ path: `${path}.regex`, message: `not a usable RE2 regex: ${m.regex}` });
      return null;
    }
    const re = r.regex;
    return { expected: `regex ${m.regex}`, test: (v) => re.fullMatch(v) };
  }
  return 'present';
}

/** `@request.auth.claims.a` or `@request.auth.claims[a][b]` → ['a'] / ['a', 'b']; null if not a claim key. */
export function parseClaimKey(key: string): string[] | null {
  const p = '@request.auth.claims';
  if (!key.startsWith(p)) return null;
  const rest = key.slice(p.length);
  if (rest.startsWith('.') && rest.length > 1) return [rest.slice(1)];
  const parts: string[] = [];
  const re = /\[([^\]]+)\]/g;
  let consumed = 0;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    if (m.index !== consumed) return null;
    parts.push(m[1] ?? '');
    consumed = re.lastIndex;
  }
  return parts.length > 0 && consumed === rest.length ? parts : null;
}

function claimValues(claims: Readonly<Record<string, unknown>> | null, path: readonly string[]): string[] {
  let cur: unknown = claims;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return [];
    cur = (cur as Record<string, unknown>)[p];
  }
  if (typeof cur === 'string') return [cur];
  if (typeof cur === 'number' || typeof cur === 'boolean') return [String(cur)];
  if (Array.isArray(cur))
    return cur
      .filter((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean')
      .map(String);
  return [];
}

// ---------------------------------------------------------------- conditions

function uriCondition(
  m: StringMatch,
  ignoreCase: boolean,
  path: string,
  problems: MatchBuildProblem[],
): MatchCondition | null {
  const suffix = ignoreCase ? ' (ignore case)' : '';
  if ('exact' in m) {
    if (ignoreCase) {
      const want = m.exact.toLowerCase();
      const n = want.length;
      return {
        field: 'uri',
        expected: `exact ${m.exact}${suffix}`,
        test: (req) => req.path.length === n && req.path.toLowerCase() === want,
      };
    }
    const want = m.exact;
    return { field: 'uri', expected: `exact ${want}`, test: (req) => req.path === want };
  }
  if ('prefix' in m) {
    if (ignoreCase) {
      const want = m.prefix.toLowerCase();
      const n = want.length;
      return {
        field: 'uri',
        expected: `prefix ${m.prefix}${suffix}`,
        test: (req) => req.path.length >= n && req.path.slice(0, n).toLowerCase() === want,
      };
    }
    const want = m.prefix;
    return { field: 'uri', expected: `prefix ${want}`, test: (req) => req.path.startsWith(want) };
  }
  // VS-7: ignoreUriCase becomes (?i) on a regex; RE2 full match of the path without the query.
  const r = compileRe2(m.regex, { ignoreCase });
  if (!r.ok) {
    problems.push({ path: `${path}.uri.regex`, message: `not a usable RE2 regex: ${m.regex}` });
    return null;
  }
  const re = r.regex;
  return { field: 'uri', expected: `regex ${m.regex}${suffix}`, test: (req) => re.fullMatch(req.path) };
}

function simpleCondition(
  field: 'scheme' | 'method' | 'authority',
  m: StringMatch,
  path: string,
  problems: MatchBuildProblem[],
): MatchCondition | null {
  const t = stringTest(m, false, `${path}.${field}`, problems);
  if (t === null) return null;
  const read =
    field === 'scheme'
      ? (req: RequestView) => req.scheme
      : field === 'method'
        ? (req: RequestView) => req.method
        : (req: RequestView) => req.authority;
  if (t === 'present') return { field, expected: 'present', test: () => true };
  const test = t.test;
  return { field, expected: t.expected, test: (req) => test(read(req)) };
}

/** VS-9 headers (`negate` false) and VS-10 withoutHeaders (`negate` true: missing counts as empty). */
function headerCondition(
  name: string,
  m: StringMatchOrPresent,
  negate: boolean,
  path: string,
  problems: MatchBuildProblem[],
): MatchCondition | null {
  const field = `${negate ? 'withoutHeaders' : 'headers'}[${name}]`;
  const t = stringTest(m, false, `${path}.${negate ? 'withoutHeaders' : 'headers'}.${name}`, problems);
  if (t === null) return null;
  const claimPath = parseClaimKey(name);
  if (claimPath !== null) {
    const cp = claimPath;
    const positive =
      t === 'present'
        ? (req: RequestView) => claimValues(req.claims, cp).length > 0
        : (req: RequestView) => claimValues(req.claims, cp).some(t.test);
    return negate
      ? { field, expected: `not ${t === 'present' ? 'present' : t.expected}`, test: (req) => !positive(req) }
      : { field, expected: t === 'present' ? 'present' : t.expected, test: positive };
  }
  if (t === 'present') {
    return negate
      ? { field, expected: 'absent', test: (req) => headerValue(req, name) === undefined }
      : { field, expected: 'present', test: (req) => headerValue(req, name) !== undefined };
  }
  const test = t.test;
  if (negate) {
    return { field, expected: `not ${t.expected}`, test: (req) => !test(headerValue(req, name) ?? '') };
  }
  return {
    field,
    expected: t.expected,
    test: (req) => {
      const v = headerValue(req, name);
      return v !== undefined && test(v);
    },
  };
}

function queryCondition(
  name: string,
  m: StringMatchOrPresent,
  path: string,
  problems: MatchBuildProblem[],
): MatchCondition | null {
  const field = `queryParams[${name}]`;
  const t = stringTest(m, false, `${path}.queryParams.${name}`, problems);
  if (t === null) return null;
  if (t === 'present') return { field, expected: 'present', test: (req) => queryParamsOf(req).has(name) };
  const test = t.test;
  return {
    field,
    expected: t.expected,
    test: (req) => {
      const v = queryParamsOf(req).get(name);
      return v !== undefined && test(v);
    },
  };
}

/** Header keys the Istio API reserves and ignores in `headers` (VS-9). */
const IGNORED_HEADER_KEYS = new Set(['uri', 'scheme', 'method', 'authority']);

/**
 * Compiles one HTTPMatchRequest into its conditions (AND). `path` is the field path of the match
 * (`spec.http[0].match[1]`) for problems. Returns null when a condition is unusable (the route
 * is then dropped by the caller, with the problems reported).
 */
export function compileMatch(
  m: HTTPMatchRequest | undefined,
  path: string,
  problems: MatchBuildProblem[],
): MatchCondition[] | null {
  if (!m) return [];
  const out: MatchCondition[] = [];
  let ok = true;
  const push = (c: MatchCondition | null): void => {
    if (c === null) ok = false;
    else out.push(c);
  };
  if (m.uri) push(uriCondition(m.uri, m.ignoreUriCase === true, path, problems));
  if (m.scheme) push(simpleCondition('scheme', m.scheme, path, problems));
  if (m.method) push(simpleCondition('method', m.method, path, problems));
  if (m.authority) push(simpleCondition('authority', m.authority, path, problems));
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    if (IGNORED_HEADER_KEYS.has(name)) continue;
    push(headerCondition(name, sm, false, path, problems));
  }
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    if (IGNORED_HEADER_KEYS.has(name)) continue;
    push(headerCondition(name, sm, true, path, problems));
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {}))
    push(queryCondition(name, sm, path, problems));
  return ok ? out : null;
}

/**
 * Istio's IsCatchAllRoute on the translated route: path prefix `/` (or no uri match) or regex
 * `.*`, and no header (method/scheme/authority/headers/withoutHeaders) or query conditions (VS-4).
 */
export function isCatchAllMatch(m: HTTPMatchRequest | undefined): boolean {
  if (!m) return true;
  if (m.uri) {
    if ('prefix' in m.uri) {
      if (m.uri.prefix !== '/') return false;
    } else if ('regex' in m.uri) {
      if (m.uri.regex !== '.*') return false;
    } else return false;
  }
  const empty = (o: object | undefined): boolean => o === undefined || Object.keys(o).length === 0;
  return (
    m.method === undefined &&
    m.scheme === undefined &&
    m.authority === undefined &&
    empty(m.headers) &&
    empty(m.withoutHeaders) &&
    empty(m.queryParams)
  );
}

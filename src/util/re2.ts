import { RE2JS } from 're2js';

/**
 * RE2 regexes as Envoy runs them: linear time (no backtracking, so no ReDoS), no lookaround or
 * back-references in patterns, and matchers that must cover the whole input (Envoy's
 * safe_regex is a full match). Compiled once at config time; the returned functions are what the
 * hot path calls.
 */

/** Structurally identical to snapshot/types.ts CompiledRegex (util may not import snapshot). */
export interface CompiledRegex {
  readonly source: string;
  readonly fullMatch: (input: string) => boolean;
  readonly replaceAll: (input: string, replacement: string) => string;
}

/** Istio rejects longer patterns (validation.go validateStringMatchRegexp). */
export const MAX_REGEX_LENGTH = 1024;

export type CompileResult =
  { readonly ok: true; readonly regex: CompiledRegex } | { readonly ok: false; readonly error: string };

type Template = readonly (string | number)[];

/**
 * Splits an RE2 rewrite string (`\1` = group 1, `\\` = a backslash) into literal parts and group
 * numbers. Returns an error for a back-reference to a group the pattern lacks or a stray `\`,
 * which Envoy rejects (RE2::CheckRewriteString).
 */
export function parseRewrite(
  replacement: string,
  groupCount: number,
): { ok: true; template: Template } | { ok: false; error: string } {
  const parts: (string | number)[] = [];
  let lit = '';
  for (let i = 0; i < replacement.length; i++) {
    const c = replacement[i]!;
    if (c !== '\\') {
      lit += c;
      continue;
    }
    const n = replacement[i + 1];
    if (n === '\\') {
      lit += '\\';
      i++;
    } else if (n !== undefined && n >= '0' && n <= '9') {
      const g = Number(n);
      if (g > groupCount) {
        return {
          ok: false,
          error: `rewrite refers to group \\${g} but the regex has ${groupCount} capture group(s)`,
        };
      }
      if (lit !== '') parts.push(lit);
      lit = '';
      parts.push(g);
      i++;
    } else {
      return { ok: false, error: 'rewrite has a "\\" not followed by a digit or another "\\"' };
    }
  }
  if (lit !== '') parts.push(lit);
  return { ok: true, template: parts };
}

/**
 * Compiled regexes by flags and source. Configs repeat patterns (the same header or path regex in
 * hundreds of VirtualServices) and every reload compiles them again, validation first; a compiled
 * regex is immutable, so one object serves every snapshot. Bounded: emptied when full.
 */
const compiled = new Map<string, CompileResult>();
const MAX_COMPILED = 10_000;

export function compileRe2(source: string, flags: { ignoreCase?: boolean } = {}): CompileResult {
  if (source.length > MAX_REGEX_LENGTH) return compileUncached(source, flags);
  const key = `${flags.ignoreCase === true ? 'i' : '-'}${source}`;
  let result = compiled.get(key);
  if (result === undefined) {
    result = compileUncached(source, flags);
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, result);
  }
  return result;
}

function compileUncached(source: string, flags: { ignoreCase?: boolean }): CompileResult {
  if (source.length > MAX_REGEX_LENGTH) {
    return {
      ok: false,
      error: `regex is ${source.length} characters long; at most ${MAX_REGEX_LENGTH} are allowed`,
    };
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, flags.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { ok: false, error: `not a valid RE2 regex: ${msg}` };
  }
  const groups = re.groupCount();
  // Rewrites come from config, so a route sees very few distinct strings; parse each once.
  const templates = new Map<string, Template>();
  const templateOf = (replacement: string): Template => {
    let t = templates.get(replacement);
    if (t === undefined) {
      const parsed = parseRewrite(replacement, groups);
      // An unchecked rewrite is a compile-time bug; treat it literally rather than throw per request.
      t = parsed.ok ? parsed.template : [replacement];
      if (templates.size < 64) templates.set(replacement, t);
    }
    return t;
  };
  const regex: CompiledRegex = {
    source,
    fullMatch: (input) => re.testExact(input),
    replaceAll: (input, replacement) => {
      const t = templateOf(replacement);
      return re.matcher(input).replaceAll((...args: unknown[]) => {
        let out = '';
        for (const p of t) {
          if (typeof p === 'string') out += p;
          else {
            const g = args[p];
            if (typeof g === 'string') out += g;
          }
        }
        return out;
      });
    },
  };
  return { ok: true, regex };
}

/** Checks a uriRegexRewrite pair: the pattern compiles and the rewrite refers only to its groups. */
export function checkRegexRewrite(
  match: string,
  rewrite: string,
): { ok: true } | { ok: false; error: string; field: 'match' | 'rewrite' } {
  if (match === '') return { ok: false, error: 'regex must not be empty', field: 'match' };
  if (match.length > MAX_REGEX_LENGTH)
    return {
      ok: false,
      error: `regex is ${match.length} characters long; at most ${MAX_REGEX_LENGTH} are allowed`,
      field: 'match',
    };
  let groups: number;
  try {
    groups = RE2JS.compile(match).groupCount();
  } catch (err) {
    return {
      ok: false,
      error: `not a valid RE2 regex: ${err instanceof Error ? err.message : String(err)}`,
      field: 'match',
    };
  }
  const t = parseRewrite(rewrite, groups);
  return t.ok ? { ok: true } : { ok: false, error: t.error, field: 'rewrite' };
}

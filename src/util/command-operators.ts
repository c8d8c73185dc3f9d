/**
 * Envoy command operators in a string (`%NAME%`, `%NAME(args)%`, `%NAME(args):N%`, `%%` for a
 * literal percent), as header values (VS-21) and access log formats use them. Parsed once when a
 * config is compiled; what each operator reads is up to the caller.
 */

export interface CommandOperator {
  readonly name: string;
  /** The text between the parentheses, or null without them. */
  readonly args: string | null;
  /** `:N`: the value is cut to N characters; null = whole. */
  readonly maxLength: number | null;
}

/** Literal text and operators in order; adjacent literals are merged, `%%` already unescaped. */
export type TemplatePart = string | CommandOperator;

const OPERATOR_AT = /%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::(\d+))?%/y;

/**
 * Envoy's header-value rule: every `%` starts `%%` or an operator; anything else (a lone `%`, an
 * unterminated `%NAME`) is an error, and Envoy refuses the whole route configuration for it.
 */
export function parseCommandOperators(
  text: string,
): { ok: true; parts: TemplatePart[] } | { ok: false; error: string } {
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const pct = text.indexOf('%', i);
    if (pct < 0) {
      literal += text.slice(i);
      break;
    }
    literal += text.slice(i, pct);
    if (text.charCodeAt(pct + 1) === 37) {
      literal += '%';
      i = pct + 2;
      continue;
    }
    OPERATOR_AT.lastIndex = pct;
    const m = OPERATOR_AT.exec(text);
    if (m === null)
      return {
        ok: false,
        error: `"%" at position ${pct} starts no command operator (write %% for a literal percent sign)`,
      };
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push({ name: m[1]!, args: m[2] ?? null, maxLength: m[3] === undefined ? null : Number(m[3]) });
    i = pct + m[0].length;
  }
  if (literal !== '') parts.push(literal);
  return { ok: true, parts };
}

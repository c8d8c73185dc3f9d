/**
 * Envoy command operators in a string (`%NAME%`, `%NAME(args)%`, `%NAME(args):N%`, `%%` for a
 * literal percent), as header values (VS-21) and access log formats use them: one parser and one
 * table of the operators sluice knows, for both. Parsed once when a config is compiled (header
 * values) or first used (access log formats); what each operator reads of a request is
 * observability/operator-values.ts.
 */

export interface CommandOperator {
  /** An OperatorName, unless the parse reported it as unknown (it then renders as absent). */
  readonly name: string;
  /** The text between the parentheses, or null without them. */
  readonly args: string | null;
  /** `:N`: the value is cut to N characters; null = whole. */
  readonly maxLength: number | null;
}

/** Literal text and operators in order; adjacent literals are merged, `%%` already unescaped. */
export type TemplatePart = string | CommandOperator;

/** Where a string with operators is used: Envoy admits a different set in each. */
export type OperatorUse = 'header' | 'access-log';

interface OperatorSpec {
  /** `required`: `%NAME(args)%`; `none`: `%NAME%` only. */
  readonly args: 'none' | 'required';
  /** Substituted in VirtualService header values too, not only in access log formats. */
  readonly header: boolean;
}

const ACCESS_LOG_ONLY = { args: 'none', header: false } as const;
const BOTH = { args: 'none', header: true } as const;

/** Every operator sluice substitutes, and where. */
export const COMMAND_OPERATORS = {
  REQ: { args: 'required', header: true },
  REQ_WITHOUT_QUERY: { args: 'required', header: false },
  RESP: { args: 'required', header: false },
  START_TIME: BOTH,
  METHOD: ACCESS_LOG_ONLY,
  PROTOCOL: BOTH,
  HOSTNAME: BOTH,
  REQUESTED_SERVER_NAME: BOTH,
  DOWNSTREAM_REMOTE_ADDRESS: BOTH,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: BOTH,
  DOWNSTREAM_REMOTE_PORT: BOTH,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: BOTH,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: BOTH,
  DOWNSTREAM_LOCAL_ADDRESS: BOTH,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: BOTH,
  DOWNSTREAM_LOCAL_PORT: BOTH,
  DOWNSTREAM_TLS_VERSION: BOTH,
  DOWNSTREAM_PEER_SUBJECT: BOTH,
  DOWNSTREAM_PEER_ISSUER: BOTH,
  DOWNSTREAM_PEER_URI_SAN: BOTH,
  DOWNSTREAM_PEER_FINGERPRINT_256: BOTH,
  UPSTREAM_CLUSTER: BOTH,
  UPSTREAM_CLUSTER_RAW: ACCESS_LOG_ONLY,
  UPSTREAM_HOST: ACCESS_LOG_ONLY,
  UPSTREAM_REMOTE_ADDRESS: BOTH,
  UPSTREAM_LOCAL_ADDRESS: ACCESS_LOG_ONLY,
  UPSTREAM_TRANSPORT_FAILURE_REASON: ACCESS_LOG_ONLY,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: ACCESS_LOG_ONLY,
  RESPONSE_CODE: BOTH,
  RESPONSE_CODE_DETAILS: ACCESS_LOG_ONLY,
  RESPONSE_FLAGS: BOTH,
  CONNECTION_TERMINATION_DETAILS: ACCESS_LOG_ONLY,
  BYTES_RECEIVED: ACCESS_LOG_ONLY,
  BYTES_SENT: ACCESS_LOG_ONLY,
  DURATION: ACCESS_LOG_ONLY,
  RESPONSE_DURATION: ACCESS_LOG_ONLY,
  ROUTE_NAME: BOTH,
  TRACE_ID: ACCESS_LOG_ONLY,
} as const satisfies Record<string, OperatorSpec>;

export type OperatorName = keyof typeof COMMAND_OPERATORS;

/** The names usable in `use`, for messages. */
export function operatorNames(use: OperatorUse): string[] {
  return Object.entries(COMMAND_OPERATORS)
    .filter(([, spec]) => use === 'access-log' || spec.header)
    .map(([name]) => name);
}

const OPERATOR_AT = /%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::(\d+))?%/y;

function isOperatorName(name: string): name is OperatorName {
  return Object.hasOwn(COMMAND_OPERATORS, name);
}

/** Why `%name(args)%` cannot be used in `use`, or null. */
function operatorProblem(name: string, args: string | null, use: OperatorUse): string | null {
  if (!isOperatorName(name)) {
    return use === 'header'
      ? `%${name}% is not a command operator sluice substitutes in header values (supported: ${operatorNames('header').join(', ')})`
      : `unknown command operator %${name}%`;
  }
  const spec: OperatorSpec = COMMAND_OPERATORS[name];
  if (use === 'header' && !spec.header)
    return `%${name}% is not a command operator sluice substitutes in header values (supported: ${operatorNames('header').join(', ')})`;
  if (spec.args === 'required' && (args === null || args.trim() === ''))
    return `%${name}(...)% needs an argument`;
  if (spec.args === 'none' && args !== null) return `%${name}% takes no argument here`;
  return null;
}

export interface ParsedOperators {
  readonly parts: TemplatePart[];
  /**
   * Every problem found. The parts still hold everything: a `%` that starts no operator stays
   * literal text, an operator unknown here stays a part (it renders as absent).
   */
  readonly errors: string[];
}

/**
 * Envoy's substitution format rule: every `%` starts `%%` or an operator; anything else (a lone
 * `%`, an unterminated `%NAME`) is an error, as is an operator unknown for `use`. Envoy refuses the
 * whole configuration for it; the caller decides (a header value is refused, an access log format
 * is logged and renders the rest).
 */
export function parseCommandOperators(text: string, use: OperatorUse): ParsedOperators {
  const parts: TemplatePart[] = [];
  const errors: string[] = [];
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
    if (m === null) {
      errors.push(`"%" at position ${pct} starts no command operator (write %% for a literal percent sign)`);
      literal += '%';
      i = pct + 1;
      continue;
    }
    i = pct + m[0].length;
    const name = m[1]!;
    const args = m[2] ?? null;
    const problem = operatorProblem(name, args, use);
    if (problem !== null) errors.push(problem);
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push({ name, args, maxLength: m[3] === undefined ? null : Number(m[3]) });
  }
  if (literal !== '') parts.push(literal);
  return { parts, errors };
}

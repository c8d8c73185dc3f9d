/**
 * Access log (DP-6): one line per finished request, configured by MeshConfig `accessLogFile`,
 * `accessLogEncoding` and `accessLogFormat` as Istio does. The format is compiled once per
 * distinct setting into an array of field getters (Envoy command operators such as
 * `%REQ(X?Y):N%`, `%RESPONSE_FLAGS%`); a request runs the getters and appends one string to an
 * asynchronous SonicBoom buffer (pino.destination({ sync: false })), which writes in batches;
 * beyond a cap, lines are dropped and counted rather than slowing requests.
 *
 * Never logged: Authorization, Proxy-Authorization, Cookie and Set-Cookie values (even when a
 * custom format asks for them) and the values of token-like query parameters in paths.
 */
import pino from 'pino';
import { parseCommandOperators, type CommandOperator } from '../util/command-operators.ts';
import type { AccessLogConfig, FinishedRequest } from './finished-request.ts';
import { operatorGetter, type OperatorGetter, type OperatorValue } from './operator-values.ts';

/** Istio's EnvoyTextLogFormat (pilot/pkg/model/telemetry_logging.go). */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
  '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
  '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's EnvoyJSONLogFormatIstio keys and operators, in DP-6 order. */
export const ISTIO_JSON_FORMAT: readonly (readonly [key: string, op: string])[] = [
  ['start_time', '%START_TIME%'],
  ['route_name', '%ROUTE_NAME%'],
  ['method', '%REQ(:METHOD)%'],
  ['path', '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%'],
  ['protocol', '%PROTOCOL%'],
  ['response_code', '%RESPONSE_CODE%'],
  ['response_flags', '%RESPONSE_FLAGS%'],
  ['response_code_details', '%RESPONSE_CODE_DETAILS%'],
  ['connection_termination_details', '%CONNECTION_TERMINATION_DETAILS%'],
  ['bytes_received', '%BYTES_RECEIVED%'],
  ['bytes_sent', '%BYTES_SENT%'],
  ['duration', '%DURATION%'],
  ['upstream_service_time', '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%'],
  ['x_forwarded_for', '%REQ(X-FORWARDED-FOR)%'],
  ['user_agent', '%REQ(USER-AGENT)%'],
  ['request_id', '%REQ(X-REQUEST-ID)%'],
  ['authority', '%REQ(:AUTHORITY)%'],
  ['upstream_host', '%UPSTREAM_HOST%'],
  ['upstream_cluster', '%UPSTREAM_CLUSTER_RAW%'],
  ['upstream_local_address', '%UPSTREAM_LOCAL_ADDRESS%'],
  ['downstream_local_address', '%DOWNSTREAM_LOCAL_ADDRESS%'],
  ['downstream_remote_address', '%DOWNSTREAM_REMOTE_ADDRESS%'],
  ['requested_server_name', '%REQUESTED_SERVER_NAME%'],
  ['upstream_transport_failure_reason', '%UPSTREAM_TRANSPORT_FAILURE_REASON%'],
];

/** Header values never written, whatever the format asks. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
export const REDACTED = '[redacted]';

/** Query parameter names whose values are credentials (JWT fromParams, API keys, OAuth codes). */
const SECRET_PARAM = /token|key|secret|passw|auth|sig|jwt|session|code|credential/i;

/** `a=1&access_token=xyz` → `a=1&access_token=[redacted]`; untouched when nothing matches. */
export function redactQuery(query: string): string {
  if (query === '' || !SECRET_PARAM.test(query)) return query;
  const parts = query.split('&');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    if (eq >= 0 && SECRET_PARAM.test(name)) parts[i] = name + '=' + REDACTED;
  }
  return parts.join('&');
}

/** A path with the values of credential-like query parameters redacted. */
function redactPath(v: OperatorValue): OperatorValue {
  if (typeof v !== 'string') return v;
  const q = v.indexOf('?');
  return q < 0 ? v : v.slice(0, q + 1) + redactQuery(v.slice(q + 1));
}

/** JSON string literal; the common case (nothing to escape) is a concatenation. */
function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || c > 126) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/**
 * The access log's policy over the shared evaluator: credential headers are never written, and
 * paths lose the values of credential-like query parameters.
 */
function accessLogGetter(op: CommandOperator): OperatorGetter {
  const isHeader = op.name === 'REQ' || op.name === 'RESP' || op.name === 'REQ_WITHOUT_QUERY';
  if (!isHeader || op.args === null) return operatorGetter(op);
  const names = op.args.split('?').map((s) => s.trim().toLowerCase());
  if (names.some((n) => SECRET_HEADERS.has(n))) return () => REDACTED;
  const get = operatorGetter(op);
  if (op.name === 'RESP' || !names.some((n) => n === ':path' || n === 'x-envoy-original-path')) return get;
  return (r) => redactPath(get(r));
}

/** A compiled format string: literal pieces and getters, alternating. */
interface Template {
  readonly literals: readonly string[];
  readonly getters: readonly OperatorGetter[];
  /** The whole string is one operator: JSON keeps its type (number stays a number). */
  readonly single: boolean;
}

function compileTemplate(text: string, errors: string[]): Template {
  const parsed = parseCommandOperators(text, 'access-log');
  errors.push(...parsed.errors);
  const literals: string[] = [''];
  const getters: OperatorGetter[] = [];
  for (const part of parsed.parts) {
    if (typeof part === 'string') literals[literals.length - 1] += part;
    else {
      getters.push(accessLogGetter(part));
      literals.push('');
    }
  }
  return { literals, getters, single: getters.length === 1 && literals[0] === '' && literals[1] === '' };
}

function renderText(t: Template, ctx: FinishedRequest): string {
  let out = t.literals[0]!;
  const g = t.getters;
  for (let i = 0; i < g.length; i++) {
    const v = g[i]!(ctx);
    out += (v === null || v === '' ? '-' : v) + t.literals[i + 1]!;
  }
  return out;
}

export interface CompiledFormat {
  readonly encoding: 'TEXT' | 'JSON';
  /** Unknown operators and unparsable JSON formats; the line still renders (absent values). */
  readonly errors: readonly string[];
  /** One line, newline-terminated. */
  render(ctx: FinishedRequest): string;
}

/**
 * MeshConfig access log settings → a renderer, once per distinct setting. TEXT: the format
 * string (Istio's default when empty; a newline is added when missing, as Istio does). JSON:
 * `accessLogFormat` is a JSON object of key → format string (Istio's default keys when empty or
 * unparsable); a value that is exactly one operator keeps its type.
 */
export function compileAccessLogFormat(cfg: Pick<AccessLogConfig, 'encoding' | 'format'>): CompiledFormat {
  const errors: string[] = [];
  if (cfg.encoding === 'JSON') {
    let fields: readonly (readonly [string, string])[] = ISTIO_JSON_FORMAT;
    if (cfg.format !== null) {
      try {
        const parsed: unknown = JSON.parse(cfg.format);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          throw new Error('not a JSON object');
        const entries = Object.entries(parsed as Record<string, unknown>).filter(
          (e): e is [string, string] => typeof e[1] === 'string',
        );
        if (entries.length > 0) fields = entries;
      } catch (err) {
        errors.push(
          `accessLogFormat is not a JSON object of strings (${(err as Error).message}); default used`,
        );
      }
    }
    const keys = fields.map(([k]) => JSON.stringify(k) + ':');
    const templates = fields.map(([, f]) => compileTemplate(f, errors));
    return {
      encoding: 'JSON',
      errors,
      render(ctx: FinishedRequest): string {
        let out = '{';
        for (let i = 0; i < templates.length; i++) {
          const t = templates[i]!;
          let v: OperatorValue;
          if (t.single) v = t.getters[0]!(ctx);
          else v = renderText(t, ctx);
          out +=
            (i === 0 ? '' : ',') +
            keys[i]! +
            (v === null ? 'null' : typeof v === 'number' ? String(v) : jsonString(v));
        }
        return out + '}\n';
      },
    };
  }
  let text = cfg.format ?? ISTIO_TEXT_FORMAT;
  if (!text.endsWith('\n')) text += '\n';
  const template = compileTemplate(text, errors);
  return { encoding: 'TEXT', errors, render: (ctx) => renderText(template, ctx) };
}

// ---------------------------------------------------------------- writer

/** Where lines go; pino.destination's SonicBoom in production. */
export interface LogDestination {
  write(line: string): boolean;
  flush(cb?: (err?: Error | null) => void): void;
  end(): void;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'drop', fn: (data: unknown) => void): unknown;
  once(event: 'close', fn: () => void): unknown;
}

export interface AccessLoggerOptions {
  /**
   * Bytes buffered before a write starts (default 64 KiB, Envoy's access log buffer); a timer
   * flushes the rest. Fewer, larger writes: the file system work lands on the proxy's core too.
   */
  readonly minLength?: number;
  /** Bytes buffered at most while the disk or pipe is slow; later lines are dropped (default 16 MiB). */
  readonly maxLength?: number;
  /** Flush a partial buffer at least this often (default 1000 ms, Envoy's flush interval). */
  readonly flushIntervalMs?: number;
  /** Format problems (once per distinct setting) and write errors. */
  readonly onWarn?: (msg: string) => void;
  /** Tests: a different destination factory. */
  readonly open?: (path: string) => LogDestination;
}

export interface AccessLogger {
  /** One line for a finished request; a no-op when its snapshot has access logging off. */
  log(ctx: FinishedRequest): void;
  /** Write what is buffered now. */
  flush(): Promise<void>;
  /** Flush and close the file (stdout/stderr stay open). */
  close(): Promise<void>;
  stats(): { lines: number; dropped: number };
}

export function createAccessLogger(opts: AccessLoggerOptions = {}): AccessLogger {
  const warn = opts.onWarn ?? (() => undefined);
  const open =
    opts.open ??
    ((path: string): LogDestination =>
      pino.destination({
        dest: path === '/dev/stdout' ? 1 : path === '/dev/stderr' ? 2 : path,
        sync: false,
        minLength: opts.minLength ?? 64 * 1024,
        maxWrite: 256 * 1024,
        maxLength: opts.maxLength ?? 16 * 1024 * 1024,
        periodicFlush: opts.flushIntervalMs ?? 1000,
        mkdir: true,
        append: true,
      }) as unknown as LogDestination);
  let lines = 0;
  let dropped = 0;
  /** The settings object last seen: a reference check per request, a real compare on change. */
  let seen: AccessLogConfig | undefined;
  let format: CompiledFormat | null = null;
  let formatKey = '';
  let dest: LogDestination | null = null;
  let destPath = '';

  function adopt(cfg: AccessLogConfig): void {
    seen = cfg;
    const key = cfg.encoding + '\0' + (cfg.format ?? '');
    if (format === null || key !== formatKey) {
      format = compileAccessLogFormat(cfg);
      formatKey = key;
      for (const e of format.errors) warn(`access log format: ${e}`);
    }
    if (dest === null || cfg.path !== destPath) {
      const old = dest;
      dest = open(cfg.path);
      destPath = cfg.path;
      dest.on('error', (err: Error) => warn(`access log ${cfg.path}: ${err.message}`));
      dest.on('drop', () => {
        dropped += 1;
      });
      if (old !== null) endQuietly(old);
    }
  }

  return {
    log(ctx: FinishedRequest): void {
      const cfg = ctx.snapshot.settings.accessLog;
      if (cfg === undefined) return;
      if (cfg !== seen) adopt(cfg);
      dest!.write(format!.render(ctx));
      lines += 1;
    },
    flush(): Promise<void> {
      const d = dest;
      if (d === null) return Promise.resolve();
      return new Promise((resolve) => {
        try {
          d.flush(() => resolve());
        } catch {
          // Nothing buffered or the stream is still opening.
          resolve();
        }
      });
    },
    async close(): Promise<void> {
      const d = dest;
      dest = null;
      seen = undefined;
      if (d === null) return;
      await new Promise<void>((resolve) => {
        d.once('close', () => resolve());
        endQuietly(d);
      });
    },
    stats: () => ({ lines, dropped }),
  };
}

function endQuietly(d: LogDestination): void {
  try {
    d.end();
  } catch {
    // already ended
  }
}

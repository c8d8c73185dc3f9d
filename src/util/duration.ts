/**
 * Istio duration strings. Istio reads durations through protobuf JSON, which accepts Go's
 * time.ParseDuration syntax ("10s", "1.5s", "500ms", "1h", "1m30s", "300us"); command-line flags
 * additionally take bare seconds ("10"). Results are milliseconds, possibly fractional.
 */

export type DurationResult =
  { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly error: string };

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
const BARE = /^(\d+(?:\.\d*)?|\.\d+)$/;

export interface ParseDurationOptions {
  /** Accept a bare number as seconds ("10" = 10 s). Default true (flags); config passes false. */
  readonly bareSeconds?: boolean;
}

export function parseDuration(text: string, opts: ParseDurationOptions = {}): DurationResult {
  const s = text.trim();
  if (s === '') return { ok: false, error: 'empty duration' };
  if (s.startsWith('-')) return { ok: false, error: `duration "${text}" must not be negative` };
  const body = s.startsWith('+') ? s.slice(1) : s;
  if (body === '0') return { ok: true, ms: 0 };
  if (BARE.test(body)) {
    if (opts.bareSeconds === false) {
      return { ok: false, error: `duration "${text}" needs a unit (e.g. "${body}s")` };
    }
    return { ok: true, ms: Number(body) * 1000 };
  }
  let ms = 0;
  let pos = 0;
  while (pos < body.length) {
    PART.lastIndex = pos;
    const m = PART.exec(body);
    if (!m)
      return {
        ok: false,
        error: `invalid duration "${text}": expected a number and a unit (h, m, s, ms, us, ns), e.g. "10s"`,
      };
    ms += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
    pos = PART.lastIndex;
  }
  if (!Number.isFinite(ms)) return { ok: false, error: `duration "${text}" is too large` };
  return { ok: true, ms };
}

/** Renders milliseconds the way Istio prints durations ("1.5s", "250ms", "0s"). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  return `${ms / 1000}s`;
}

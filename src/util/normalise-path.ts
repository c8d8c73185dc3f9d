/**
 * Istio path normalisation (AP-9), the one implementation routing, authorization, `explain` and
 * the upstream request all share. Pure; imports nothing.
 *
 *  NONE                      nothing changes (a `%00` is still refused)
 *  BASE                      `\` → `/`, %-encoded unreserved characters decoded (`%61` → `a`,
 *                            `%2E` → `.`), then RFC 3986 dot-segment removal
 *  MERGE_SLASHES             BASE, then runs of `/` merged
 *  DECODE_AND_MERGE_SLASHES  `%2F`/`%5C` decoded to `/` first, then MERGE_SLASHES
 *
 * Returns the normalised path, or null when the request must be refused with 400 (`%00`).
 * Clean paths (the common case) are returned as the same string without allocating.
 */
export type PathNormalizationMode = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

const CH_PERCENT = 37;
const CH_SLASH = 47;
const CH_BACKSLASH = 92;
const CH_DOT = 46;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

/** `path` is the request path without its query; it starts with `/`. */
export function normalisePath(path: string, mode: PathNormalizationMode): string | null {
  const len = path.length;
  // One scan decides whether anything needs doing.
  let needsDecode = false;
  let needsDots = false;
  let needsMerge = false;
  let prev = 0;
  for (let i = 0; i < len; i++) {
    const c = path.charCodeAt(i);
    if (c === CH_PERCENT) {
      if (i + 2 < len && path.charCodeAt(i + 1) === 48 && path.charCodeAt(i + 2) === 48) return null;
      needsDecode = true;
    } else if (c === CH_BACKSLASH) {
      needsDecode = true;
    } else if (c === CH_DOT && prev === CH_SLASH) {
      needsDots = true;
    } else if (c === CH_SLASH && prev === CH_SLASH) {
      needsMerge = true;
    }
    prev = c;
  }
  if (mode === 'NONE') return path;
  let out = path;
  if (needsDecode) {
    out = decodeForBase(path, mode === 'DECODE_AND_MERGE_SLASHES');
    // Decoding can create dot segments (`%2e`) and double slashes (`\\`, `%2F`).
    needsDots = needsDots || out.includes('/.');
    needsMerge = needsMerge || out.includes('//');
  }
  if (needsDots) out = removeDotSegments(out);
  if (needsMerge && mode !== 'BASE') out = mergeSlashes(out);
  return out;
}

function decodeForBase(path: string, decodeSlashes: boolean): string {
  let out = '';
  let start = 0;
  const len = path.length;
  for (let i = 0; i < len; i++) {
    const c = path.charCodeAt(i);
    if (c === CH_BACKSLASH) {
      out += path.slice(start, i) + '/';
      start = i + 1;
    } else if (c === CH_PERCENT && i + 2 < len) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) continue;
      const code = hi * 16 + lo;
      if (isUnreserved(code)) {
        out += path.slice(start, i) + String.fromCharCode(code);
      } else if (decodeSlashes && (code === CH_SLASH || code === CH_BACKSLASH)) {
        out += path.slice(start, i) + '/';
      } else {
        continue;
      }
      i += 2;
      start = i + 1;
    }
  }
  return start === 0 ? path : out + path.slice(start);
}

/** RFC 3986 §5.2.4 for an absolute path: `.` dropped, `..` pops, never above the root. */
function removeDotSegments(path: string): string {
  const segs = path.split('/');
  const out: string[] = [];
  const last = segs.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segs[i]!;
    if (s === '.') {
      if (i === last) out.push('');
    } else if (s === '..') {
      if (out.length > 0) out.pop();
      if (i === last) out.push('');
    } else {
      out.push(s);
    }
  }
  return '/' + out.join('/');
}

function mergeSlashes(path: string): string {
  let out = '';
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === CH_SLASH && prev === CH_SLASH) continue;
    out += path[i];
    prev = c;
  }
  return out;
}

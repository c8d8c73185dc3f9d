/**
 * The fast reader for the YAML (and JSON) config files nearly always hold, with js-yaml's event
 * parser: about five times faster than the `yaml` library's document model, which dominated the
 * load of large configs (a 4 MB, 3,000-document file: ~1.5 s with `yaml`, ~0.3 s here).
 *
 * It reads only the common subset: no anchors, aliases, tags or directives, no explicit document
 * ends, keys that are plain strings, and no flow collection written across lines inside a block
 * (where `yaml` may warn). For anything else, or any error, it returns null and the caller reads
 * the file with `yaml` as before, so unusual YAML keeps exactly its values, messages and warnings.
 * Both parsers use the YAML 1.2 core schema; a unit test holds them equal on the subset.
 */
import { CORE_SCHEMA, constructFromEvents, getScalarValue, parseEvents, type Event } from 'js-yaml';

/** One document of the stream: its 1-based position, first line, value and line map. */
export interface CommonDocument {
  readonly doc: number;
  readonly line: number;
  readonly value: unknown;
  /** Its source text, from its `---` marker (if any) to the next. */
  readonly source: string;
  readonly lineOf: (path: readonly (string | number)[]) => number;
}

// js-yaml's event and style ids (EVENT_ID, COLLECTION_STYLE, SCALAR_STYLE).
const DOCUMENT = 1;
const SEQUENCE = 2;
const MAPPING = 3;
const SCALAR = 4;
const POP = 6;
const FLOW = 2;
const PLAIN = 1;

/** A plain key the core schema reads as something other than a string. */
const NON_STRING_KEY = /^(?:[-+.~0-9]|(?:null|Null|NULL|true|True|TRUE|false|False|FALSE)$)/;

interface Frame {
  readonly type: number;
  readonly style: number;
  readonly start: number;
  /** Children seen so far (keys and values alternate in a mapping). */
  children: number;
  /** The furthest source offset inside it. */
  last: number;
}

const startOf = (e: Event): number =>
  e.type === SCALAR ? e.valueStart : e.type === SEQUENCE || e.type === MAPPING ? e.start : -1;

/** Where a flow collection's closing bracket is, scanning from just after its last content. */
function closingBracket(text: string, from: number): number {
  let i = from;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '#') {
      const nl = text.indexOf('\n', i);
      if (nl < 0) return text.length;
      i = nl;
    } else if (c !== ' ' && c !== '\t' && c !== '\r' && c !== '\n' && c !== ',' && c !== '"' && c !== "'")
      return i;
  }
  return i;
}

/** Checks the event stream is within the subset; returns the root event index of each document. */
function subsetRoots(text: string, events: readonly Event[]): number[] | null {
  const roots: number[] = [];
  const stack: Frame[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as Event;
    if (e.type === DOCUMENT) {
      if (e.directives.length > 0 || e.explicitEnd) return null;
      roots.push(i + 1);
      continue;
    }
    if (e.type === POP) {
      const f = stack.pop();
      if (f === undefined) continue; // the document's own end
      const parent = stack[stack.length - 1];
      let end = f.last;
      if (f.style === FLOW) {
        end = closingBracket(text, Math.max(f.last, f.start + 1));
        // A multi-line flow collection in a block one: `yaml` may warn about its indentation.
        const nl = text.indexOf('\n', f.start);
        if (parent !== undefined && parent.style !== FLOW && nl >= 0 && nl < end) return null;
        end += 1;
      }
      if (parent !== undefined) parent.last = Math.max(parent.last, end);
      continue;
    }
    if (e.type !== SCALAR && e.type !== SEQUENCE && e.type !== MAPPING) return null; // an alias
    if (e.anchorStart !== -1 || e.tagStart !== -1) return null;
    const parent = stack[stack.length - 1];
    const start = startOf(e);
    if (parent !== undefined) {
      if (parent.type === MAPPING && parent.children % 2 === 0) {
        // A key: a plain or quoted string.
        if (e.type !== SCALAR || e.valueStart < 0) return null;
        if (e.style === PLAIN && NON_STRING_KEY.test(text.slice(e.valueStart, e.valueEnd))) return null;
        if (text.slice(e.valueStart, e.valueEnd) === '__proto__') return null;
      }
      // `[a, b: c]`: an implicit pair in a flow sequence (parse-documents repairs those with `yaml`).
      if (e.type === MAPPING && e.style === FLOW && parent.type === SEQUENCE && parent.style === FLOW) {
        if (text[e.start] !== '{') return null;
      }
      parent.children++;
      const end = e.type === SCALAR ? Math.max(e.valueEnd, e.valueStart) : e.start;
      if (end > parent.last) parent.last = end;
    }
    if (e.type !== SCALAR) stack.push({ type: e.type, style: e.style, start, children: 0, last: start });
  }
  return roots;
}

/** Index just past the node that starts at `i`. */
function skipNode(events: readonly Event[], i: number): number {
  const t = (events[i] as Event).type;
  if (t !== SEQUENCE && t !== MAPPING) return i + 1;
  let depth = 0;
  do {
    const x = (events[i] as Event).type;
    if (x === SEQUENCE || x === MAPPING) depth++;
    else if (x === POP) depth--;
    i++;
  } while (depth > 0 && i < events.length);
  return i;
}

function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** 1-based line of an offset. */
function lineFinder(text: string): (offset: number) => number {
  let starts: number[] | null = null;
  return (offset) => {
    if (starts === null) {
      starts = [0];
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
    }
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** What the fast reader made of one document's source: kept between reads by a cache. */
export interface ChunkRead {
  /** Whether the source holds a document (comments and blank lines alone hold none). */
  readonly hasDocument: boolean;
  readonly value: unknown;
  /** 1-based line of the document's content within its source. */
  readonly line: number;
}

/** Reads of document sources, by source text (config/index.ts keeps one per provider). */
export interface ChunkCache {
  get(source: string): ChunkRead | undefined;
  set(source: string, read: ChunkRead): void;
}

/** A document marker: `---` at the start of a line, alone or before a space. */
const MARKER = /^---(?=[ \t\r\n]|$)/gm;

/** The stream cut before each document marker, with each piece's first line. */
function chunksOf(text: string): { readonly source: string; readonly line: number }[] {
  const out: { source: string; line: number }[] = [];
  let start = 0;
  let line = 1;
  const cut = (end: number): void => {
    const source = text.slice(start, end);
    out.push({ source, line });
    for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) line++;
    start = end;
  };
  MARKER.lastIndex = 0;
  for (let m = MARKER.exec(text); m !== null; m = MARKER.exec(text)) if (m.index > start) cut(m.index);
  cut(text.length);
  return out;
}

/** One source's document, or null when it is outside the subset or not valid YAML. */
function readChunk(source: string): ChunkRead | null {
  const events = parseEvents(source, {});
  const roots = subsetRoots(source, events);
  if (roots === null || roots.length > 1) return null;
  const root = roots[0];
  if (root === undefined) return { hasDocument: false, value: null, line: 1 };
  const values = constructFromEvents(events, { source, schema: CORE_SCHEMA });
  const start = root < events.length ? startOf(events[root] as Event) : -1;
  return { hasDocument: true, value: values[0], line: start >= 0 ? lineFinder(source)(start) : 1 };
}

/**
 * 1-based line of a field path in a one-document source, like `yaml`'s node ranges: a key's line
 * for a map entry, an item's line for a list entry, the deepest part found. Parses the source's
 * events again: only a diagnostic asks.
 */
function lineOfPath(source: string, path: readonly (string | number)[], docLine: number): number {
  const events = parseEvents(source, {});
  const lineAt = lineFinder(source);
  let i = 1; // after the document event
  let line = docLine;
  for (const seg of path) {
    const node = events[i];
    if (node === undefined) break;
    if (typeof seg === 'number') {
      if (node.type !== SEQUENCE) break;
      let j = i + 1;
      for (let n = 0; n < seg && (events[j] as Event).type !== POP; n++) j = skipNode(events, j);
      const item = events[j] as Event;
      if (item.type === POP) break;
      const s = startOf(item);
      if (s >= 0) line = lineAt(s);
      i = j;
    } else {
      if (node.type !== MAPPING) break;
      const snake = snakeCase(seg);
      let j = i + 1;
      let found = -1;
      while ((events[j] as Event).type !== POP) {
        const key = events[j] as Event;
        const name = key.type === SCALAR ? getScalarValue(source, key) : undefined;
        const value = skipNode(events, j);
        if (name === seg || name === snake) {
          found = value;
          const s = startOf(key);
          const v = startOf(events[value] as Event);
          line = s >= 0 ? lineAt(s) : v >= 0 ? lineAt(v) : line;
          break;
        }
        j = skipNode(events, value);
      }
      if (found < 0) break;
      i = found;
    }
  }
  return line;
}

/**
 * Reads a stream in the common subset, one document source at a time (a source already read,
 * found in `cache`, is not parsed again); null when any of it is outside the subset or not valid
 * YAML, for the caller to read the file with `yaml`. Every document is listed, empty ones with a
 * null value, each with its source text.
 */
export function readCommonYaml(text: string, cache?: ChunkCache): CommonDocument[] | null {
  const out: CommonDocument[] = [];
  try {
    for (const chunk of chunksOf(text)) {
      let read = cache?.get(chunk.source);
      if (read === undefined) {
        const fresh = readChunk(chunk.source);
        if (fresh === null) return null;
        read = fresh;
      }
      cache?.set(chunk.source, read);
      if (!read.hasDocument) continue;
      const offset = chunk.line - 1;
      const line = read.line + offset;
      const source = chunk.source;
      out.push({
        doc: out.length + 1,
        line,
        value: read.value,
        source,
        lineOf: (path) => lineOfPath(source, path, read.line) + offset,
      });
    }
  } catch {
    return null;
  }
  return out;
}

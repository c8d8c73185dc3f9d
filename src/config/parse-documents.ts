import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  Scalar,
  visit,
  type Document,
  type Node,
} from 'yaml';
import type { Diagnostic } from '../errors/diagnostic.ts';
import { readCommonYaml, type ChunkCache } from './read-common-yaml.ts';

/** One config document as read from a file, with what is needed to point back into it. */
export interface ParsedDocument {
  readonly file: string;
  /** 1-based position of the document in its file (items of a `List` share their document's). */
  readonly doc: number;
  /** 1-based line where the document's content starts. */
  readonly line: number;
  /** Plain JS value of the document (or of one `List` item). */
  readonly value: unknown;
  /**
   * 1-based line of a field path inside `value` (`['spec', 'http', 0, 'route']`). When the path
   * does not exist to the end, the line of the deepest part that does (so a missing field points
   * at its parent).
   */
  readonly lineOf: (path: readonly (string | number)[]) => number | undefined;
  /**
   * The document's source text, when the fast reader read it and it is not an item of a `List`:
   * the same source always loads to the same resource (config/index.ts caches by it).
   */
  readonly source?: string;
}

export interface ParseResult {
  readonly documents: ParsedDocument[];
  readonly diagnostics: Diagnostic[];
}

/** Parser messages can quote the source (an alias or tag name); never more than this of it. */
const MAX_MESSAGE = 200;

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * A character YAML 1.2 does not allow in a stream (C0 and C1 controls other than tab, line feed,
 * carriage return and NEL; DEL; U+FFFE/FFFF). JSON allows none of them either. Any such character
 * means the file is not config (an image, an archive, a compiled file).
 */
// eslint-disable-next-line no-control-regex
const NOT_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u0084\u0086-\u009F\uFFFE\uFFFF]/;

/** snake_case → camelCase, for the proto field names Istio also accepts (`sni_hosts`). */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function findKey(map: Node, key: string): { keyNode: Node | null; value: Node | null } | undefined {
  if (!isMap(map)) return undefined;
  const snake = snakeCase(key);
  for (const pair of map.items) {
    const k = pair.key;
    const name = isScalar(k) ? String(k.value) : undefined;
    if (name === key || (name !== undefined && name !== key && name === snake)) {
      return { keyNode: (k as Node | null) ?? null, value: (pair.value as Node | null) ?? null };
    }
  }
  return undefined;
}

function makeLineOf(root: Node | null, lineCounter: LineCounter, fallback: number) {
  const lineAt = (n: Node | null | undefined): number | undefined =>
    n?.range ? lineCounter.linePos(n.range[0]).line : undefined;
  return (path: readonly (string | number)[]): number | undefined => {
    let node: Node | null = root;
    let line = lineAt(root) ?? fallback;
    for (const seg of path) {
      if (node === null) break;
      if (typeof seg === 'number') {
        if (!isSeq(node)) break;
        const item = node.items[seg] as Node | undefined;
        if (item === undefined) break;
        node = item;
        line = lineAt(item) ?? line;
      } else {
        const found = findKey(node, seg);
        if (!found) break;
        line = lineAt(found.keyNode) ?? lineAt(found.value) ?? line;
        node = found.value;
      }
    }
    return line;
  };
}

/**
 * Kubernetes reads YAML with go-yaml, where `[1.2.3.4, 2001:db8::]` is a list of two strings;
 * the YAML 1.2 parser reads the second as a one-entry map. Put such implicit pairs back as the
 * scalar text they were written as.
 */
function repairFlowScalars(doc: Document.Parsed, text: string): void {
  visit(doc, {
    Seq(_key, seq) {
      if (!seq.flow) return;
      seq.items = seq.items.map((item) => {
        if (isMap(item) && item.flow && item.items.length === 1 && item.range) {
          const src = text.slice(item.range[0], item.range[1]).trim();
          const pair = item.items[0];
          const valueIsNull =
            pair &&
            isPair(pair) &&
            (pair.value === null || (isScalar(pair.value) && pair.value.value === null));
          if (!src.startsWith('{') && valueIsNull && /^[^\s:][^\s]*:$/.test(src)) {
            const s = new Scalar(src);
            s.range = item.range;
            return s;
          }
        }
        return item;
      });
    },
  });
}

function parseDiagnostic(
  file: string,
  doc: number,
  line: number | undefined,
  message: string,
  level: 'error' | 'warning',
  json: boolean,
): Diagnostic {
  return {
    level,
    code: 'SLUICE_CONFIG_PARSE',
    subject: { origin: { kind: 'file', file, doc }, kind: json ? 'JSON' : 'YAML', name: 'document' },
    ...(line !== undefined ? { line } : {}),
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message,
  };
}

/**
 * Parses a YAML (multi-document) or JSON file. JSON goes through the YAML parser too (JSON is
 * YAML), which gives the same line map. Files in the common subset take the fast reader
 * (read-common-yaml.ts); the rest, and every file with an error, are read with `yaml`. Empty documents are skipped; `kind: List` documents are
 * flattened into their items. A document with a syntax error is reported and left out.
 */
/** `cache` keeps documents read before, by source text, so an unchanged one is not parsed again. */
export function parseDocuments(file: string, text: string, cache?: ChunkCache): ParseResult {
  const documents: ParsedDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  const binary = NOT_TEXT.exec(text);
  if (binary !== null) {
    // One line, and none of the file's bytes: a binary file's content means nothing in a message.
    const code = binary[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    let line = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < binary.index; i = text.indexOf('\n', i + 1)) line++;
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_CONFIG_PARSE',
      subject: {
        origin: { kind: 'file', file, doc: 1 },
        kind: 'File',
        name: file.slice(file.lastIndexOf('/') + 1),
      },
      line,
      message: `not a YAML or JSON document: it holds binary data (U+${code} on line ${line}); nothing in it is read`,
    });
    return { documents, diagnostics };
  }
  const common = readCommonYaml(text, cache);
  if (common !== null) {
    for (const d of common) {
      if (d.value !== null && d.value !== undefined)
        pushDocument(documents, file, d.doc, d.line, d.value, d.lineOf, d.source);
    }
    return { documents, diagnostics };
  }
  return parseWithYaml(file, text);
}

/** The `yaml` library's reading of a file (anchors, tags, errors and warnings included). */
export function parseWithYaml(file: string, text: string): ParseResult {
  const json = file.toLowerCase().endsWith('.json');
  const lineCounter = new LineCounter();
  const documents: ParsedDocument[] = [];
  const diagnostics: Diagnostic[] = [];
  let parsed: Document.Parsed[];
  try {
    parsed = parseAllDocuments(text, {
      lineCounter,
      prettyErrors: true,
      uniqueKeys: true,
    }) as Document.Parsed[];
  } catch (err) {
    diagnostics.push(
      parseDiagnostic(
        file,
        1,
        undefined,
        `cannot parse: ${firstLine(err instanceof Error ? err.message : String(err))}`,
        'error',
        json,
      ),
    );
    return { documents, diagnostics };
  }
  if (!Array.isArray(parsed)) parsed = [parsed];
  parsed.forEach((d, i) => {
    const docIndex = i + 1;
    const startLine = d.contents?.range ? lineCounter.linePos(d.contents.range[0]).line : undefined;
    if (d.errors.length > 0) {
      for (const e of d.errors) {
        const line = e.linePos?.[0]?.line ?? startLine;
        diagnostics.push(parseDiagnostic(file, docIndex, line, firstLine(e.message), 'error', json));
      }
      return;
    }
    for (const w of d.warnings) {
      diagnostics.push(
        parseDiagnostic(
          file,
          docIndex,
          w.linePos?.[0]?.line ?? startLine,
          firstLine(w.message),
          'warning',
          json,
        ),
      );
    }
    const contents = d.contents as Node | null;
    if (
      contents === null ||
      (isScalar(contents) && (contents.value === null || contents.value === undefined))
    )
      return;
    repairFlowScalars(d, text);
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      diagnostics.push(
        parseDiagnostic(
          file,
          docIndex,
          startLine,
          `cannot read document: ${firstLine(err instanceof Error ? err.message : String(err))}`,
          'error',
          json,
        ),
      );
      return;
    }
    pushDocument(
      documents,
      file,
      docIndex,
      startLine ?? 1,
      value,
      makeLineOf(contents, lineCounter, startLine ?? 1),
    );
  });
  return { documents, diagnostics };
}

/** A document, or each item of a `List` document. */
function pushDocument(
  documents: ParsedDocument[],
  file: string,
  doc: number,
  line: number,
  value: unknown,
  lineOf: ParsedDocument['lineOf'],
  source?: string,
): void {
  if (!isListDocument(value)) {
    documents.push({ file, doc, line, value, lineOf, ...(source !== undefined ? { source } : {}) });
    return;
  }
  value.items.forEach((item, j) => {
    if (item === null || item === undefined) return;
    const prefix = ['items', j] as const;
    documents.push({
      file,
      doc,
      line: lineOf(prefix) ?? line,
      value: item,
      lineOf: (path) => lineOf([...prefix, ...path]),
    });
  });
}

function isListDocument(v: unknown): v is { items: unknown[] } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { kind?: unknown; items?: unknown; apiVersion?: unknown };
  return (
    typeof o.kind === 'string' &&
    o.kind.endsWith('List') &&
    Array.isArray(o.items) &&
    (o.apiVersion === 'v1' || o.apiVersion === undefined || o.kind === 'List')
  );
}

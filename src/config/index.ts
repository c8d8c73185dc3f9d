import type { Diagnostic, DiagnosticSubject } from '../errors/diagnostic.ts';
import { rememberSameContent } from '../model/content-hash.ts';
import type { Origin, Resource, ResourceSet } from '../model/resource.ts';
import { formatOrigin, subjectOfResource } from '../model/resource.ts';
import { describeUnsupported, unsupportedKind } from '../model/unsupported.ts';
import { formatPath } from './field-path.ts';
import { normaliseResource } from './normalise.ts';
import { parseDocuments, type ParsedDocument } from './parse-documents.ts';
import type { ChunkCache, ChunkRead } from './read-common-yaml.ts';
import { issuesToDiagnostics } from './schema-issues.ts';
import { findKind } from './kinds/registry.ts';
import { classifyUnreadKind, type UnreadKind } from './kinds/unread-kinds.ts';
import { validateResource } from './validate.ts';

export interface ConfigInput {
  readonly file: string;
  readonly text: string;
}

/** A document of a kind sluice does not read (for a debug log line). */
export interface SkippedDocument {
  readonly file: string;
  readonly doc: number;
  readonly line: number;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name?: string;
}

export interface LoadResult {
  readonly resources: ResourceSet;
  readonly diagnostics: Diagnostic[];
  readonly skipped: SkippedDocument[];
}

export interface LoadOptions {
  /** Namespace of documents without metadata.namespace (--config-namespace). */
  readonly defaultNamespace: string;
  /** Documents loaded before (createLoadCache); the result is the same with or without it. */
  readonly cache?: LoadCache;
}

interface CachedDocument {
  read?: ChunkRead;
  /** What the source loaded to, when it was one resource with nothing to say about it. */
  resource?: Resource;
}

/**
 * What a provider keeps from one load to the next (one cache per provider and default
 * namespace): each document source's parse and, when it loaded to exactly one resource without a
 * diagnostic, that resource. A reload that changes one document of thousands parses, validates and
 * hashes that one; the others take their new origin (a document that moved in its file) and
 * nothing else changes. Only what the last load used is kept.
 */
export interface LoadCache {
  namespace: string | null;
  previous: Map<string, CachedDocument>;
  next: Map<string, CachedDocument>;
}

export function createLoadCache(): LoadCache {
  return { namespace: null, previous: new Map(), next: new Map() };
}

function cachedDocument(cache: LoadCache, source: string): CachedDocument {
  let e = cache.next.get(source);
  if (e === undefined) cache.next.set(source, (e = cache.previous.get(source) ?? {}));
  return e;
}

function chunkCacheOf(cache: LoadCache): ChunkCache {
  return {
    get: (source) => (cache.next.get(source) ?? cache.previous.get(source))?.read,
    set: (source, read) => void (cachedDocument(cache, source).read = read),
  };
}

export { parseDocuments } from './parse-documents.ts';
export type { ParsedDocument } from './parse-documents.ts';

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Documents → validated, normalised resources: parse → schema → validate → normalise. A
 * resource with any error is left out of the set (compile never sees malformed data); its
 * diagnostics are returned. Order: input order, then document order. Pure: no I/O.
 */
export function loadResources(inputs: readonly ConfigInput[], opts: LoadOptions): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const skipped: SkippedDocument[] = [];
  const resources: Resource[] = [];
  const seen = new Map<string, Resource>();
  const cache = opts.cache;
  if (cache !== undefined) {
    if (cache.namespace !== opts.defaultNamespace) cache.previous = new Map();
    cache.namespace = opts.defaultNamespace;
    cache.next = new Map();
  }
  const chunks = cache === undefined ? undefined : chunkCacheOf(cache);
  for (const input of inputs) {
    const parsed = parseDocuments(input.file, input.text, chunks);
    diagnostics.push(...parsed.diagnostics);
    for (const doc of parsed.documents) {
      const r =
        cache === undefined || doc.source === undefined
          ? loadDocument(doc, opts, diagnostics, skipped)
          : loadCachedDocument(cachedDocument(cache, doc.source), doc, opts, diagnostics, skipped);
      if (!r) continue;
      const key = `${r.kind}\u0000${r.namespace}\u0000${r.name}`;
      const first = seen.get(key);
      if (first) {
        diagnostics.push({
          level: 'error',
          code: 'SLUICE_CONFIG_DUPLICATE',
          subject: subjectOf(r),
          ...(r.origin.kind === 'file' && r.origin.line !== undefined ? { line: r.origin.line } : {}),
          related: subjectOf(first),
          message: `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name} is already defined in ${formatOrigin(first.origin)}; this later copy is ignored`,
        });
        continue;
      }
      seen.set(key, r);
      resources.push(r);
    }
  }
  if (cache !== undefined) {
    cache.previous = cache.next;
    cache.next = new Map();
  }
  return { resources: { resources }, diagnostics, skipped };
}

/** loadDocument, or what the same source loaded to before, read from where it is now. */
function loadCachedDocument(
  entry: CachedDocument,
  doc: ParsedDocument,
  opts: LoadOptions,
  diagnostics: Diagnostic[],
  skipped: SkippedDocument[],
): Resource | undefined {
  const base = entry.resource;
  if (base !== undefined) {
    const r: Resource = { ...base, origin: originOf(doc) };
    rememberSameContent(r, base);
    return r;
  }
  const said = diagnostics.length;
  const skips = skipped.length;
  const r = loadDocument(doc, opts, diagnostics, skipped);
  if (r !== undefined && diagnostics.length === said && skipped.length === skips) entry.resource = r;
  return r;
}

const originOf = (doc: ParsedDocument): Origin => ({
  kind: 'file',
  file: doc.file,
  doc: doc.doc,
  line: doc.line,
});

/** Kubernetes drops fields set to null (`tls:` with nothing after it) on write; so do we. */
function dropNullFields(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNullFields);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNullFields(x);
  return out;
}

const subjectOf = subjectOfResource;

/**
 * What is said about a document sluice does not read: a warning for a kind it ignores or a likely
 * mistake, an info for a kind that never applies to a gateway, nothing (a debug line by the
 * caller, from `skipped`) for another project's kind.
 */
function unreadKindDiagnostic(
  unread: UnreadKind,
  d: {
    readonly doc: ParsedDocument;
    readonly origin: Origin;
    readonly apiVersion: string;
    readonly kind: string;
    readonly name: string;
    readonly namespace: string;
  },
): Diagnostic | undefined {
  const subject = (namespaced: boolean): DiagnosticSubject => ({
    origin: d.origin,
    kind: d.kind,
    ...(namespaced ? { namespace: d.namespace } : {}),
    name: d.name,
  });
  const lineOf = (field: string): number => d.doc.lineOf([field]) ?? d.doc.line;
  switch (unread.verdict) {
    case 'other-version':
      return {
        level: 'warning',
        code: 'SLUICE_CONFIG_UNSUPPORTED',
        subject: subject(unread.def.namespaced),
        path: 'apiVersion',
        line: lineOf('apiVersion'),
        message: `${d.apiVersion} is not a version sluice reads for ${d.kind} (use ${unread.def.apiVersions.join(', ')}); the document is ignored`,
      };
    case 'ignored': {
      const entry = unsupportedKind(d.kind);
      return {
        level: 'warning',
        code: 'SLUICE_CONFIG_UNSUPPORTED',
        subject: subject(unread.namespaced),
        line: d.doc.line,
        message: entry ? describeUnsupported(entry) : `${d.kind} is not read by sluice; it is ignored`,
        unsupported: '*',
      };
    }
    case 'never-applies':
      return {
        level: 'info',
        code: 'SLUICE_CONFIG_NOT_APPLICABLE',
        subject: subject(unread.namespaced),
        line: d.doc.line,
        message: `${d.kind} never applies to a gateway: ${unread.why}; the document is ignored`,
      };
    case 'unknown':
      return {
        level: 'warning',
        code: 'SLUICE_CONFIG_UNKNOWN_KIND',
        subject: subject(true),
        path: unread.path,
        line: lineOf(unread.path),
        message: unread.message,
      };
    case 'foreign':
      return undefined;
  }
}

/**
 * One object as an API server returned it (already JSON, no line map), loaded exactly as a file's
 * document is, with the origin it came from: what providers other than files load.
 */
export function loadObject(
  value: unknown,
  origin: Origin,
  opts: LoadOptions,
): { resource: Resource | undefined; diagnostics: Diagnostic[]; skipped: boolean } {
  const diagnostics: Diagnostic[] = [];
  const skipped: SkippedDocument[] = [];
  const doc: ParsedDocument = { file: formatOrigin(origin), doc: 1, line: 1, value, lineOf: () => undefined };
  const resource = loadDocument(doc, opts, diagnostics, skipped, origin);
  return { resource, diagnostics, skipped: skipped.length > 0 };
}

function loadDocument(
  doc: ParsedDocument,
  opts: LoadOptions,
  diagnostics: Diagnostic[],
  skipped: SkippedDocument[],
  origin: Origin = originOf(doc),
): Resource | undefined {
  const v = doc.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_CONFIG_SCHEMA',
      subject: { origin, kind: 'Document', name: `#${doc.doc}` },
      line: doc.line,
      message: `expected a Kubernetes-style object (apiVersion, kind, metadata), got ${Array.isArray(v) ? 'a list' : typeof v}`,
    });
    return undefined;
  }
  const o = v as Record<string, unknown>;
  const meta = (typeof o.metadata === 'object' && o.metadata !== null ? o.metadata : {}) as Record<
    string,
    unknown
  >;
  const apiVersion = str(o.apiVersion);
  const kindName = str(o.kind);
  const rawName = str(meta.name);
  if (apiVersion === undefined || kindName === undefined) {
    const missing = apiVersion === undefined ? 'apiVersion' : 'kind';
    diagnostics.push({
      level: 'error',
      code: 'SLUICE_CONFIG_SCHEMA',
      subject: { origin, kind: kindName ?? 'Document', name: rawName ?? `#${doc.doc}` },
      path: missing,
      line: doc.line,
      message: `required field is missing (expected a string); every document needs apiVersion and kind`,
    });
    return undefined;
  }
  const def = findKind(apiVersion, kindName);
  if (!def) {
    const note = unreadKindDiagnostic(classifyUnreadKind(apiVersion, kindName), {
      doc,
      origin,
      apiVersion,
      kind: kindName,
      name: rawName ?? '(unnamed)',
      namespace: str(meta.namespace) ?? opts.defaultNamespace,
    });
    if (note) diagnostics.push(note);
    skipped.push({
      file: doc.file,
      doc: doc.doc,
      line: doc.line,
      apiVersion,
      kind: kindName,
      ...(rawName ? { name: rawName } : {}),
    });
    return undefined;
  }
  const namespace = def.namespaced ? (str(meta.namespace) ?? opts.defaultNamespace) : '';
  const subject: DiagnosticSubject = {
    origin,
    kind: def.kind,
    ...(def.namespaced ? { namespace } : {}),
    name: rawName ?? '(unnamed)',
  };
  const result = def.schema.safeParse(dropNullFields(v));
  if (!result.success) {
    diagnostics.push(
      ...issuesToDiagnostics(result.error.issues, {
        subject,
        value: v,
        lineOf: doc.lineOf,
        secret: def.secret,
      }),
    );
    return undefined;
  }
  const m = result.data.metadata;
  const resource: Resource = {
    kind: def.kind,
    apiVersion,
    namespace,
    name: m.name,
    labels: m.labels ?? {},
    annotations: m.annotations ?? {},
    ...(m.creationTimestamp !== undefined ? { creationTimestamp: m.creationTimestamp } : {}),
    origin,
    spec: result.data.spec,
  };
  let failed = false;
  for (const f of validateResource(resource)) {
    if (f.level === 'error') failed = true;
    const line = doc.lineOf(f.path);
    diagnostics.push({
      level: f.level,
      code: f.code,
      subject,
      ...(f.path.length > 0 ? { path: formatPath(f.path) } : {}),
      ...(line !== undefined ? { line } : {}),
      message: f.message,
      ...(f.unsupported !== undefined ? { unsupported: f.unsupported } : {}),
    });
  }
  if (failed) return undefined;
  return normaliseResource(resource);
}

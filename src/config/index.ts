import type { Diagnostic, DiagnosticSubject } from '../errors/diagnostic.ts';
import type { Origin, Resource, ResourceSet } from '../model/resource.ts';
import { formatOrigin } from '../model/resource.ts';
import { describeUnsupported, unsupportedKind } from '../model/unsupported.ts';
import { formatPath } from './field-path.ts';
import { normaliseResource } from './normalise.ts';
import { parseDocuments, type ParsedDocument } from './parse-documents.ts';
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
  for (const input of inputs) {
    const parsed = parseDocuments(input.file, input.text);
    diagnostics.push(...parsed.diagnostics);
    for (const doc of parsed.documents) {
      const r = loadDocument(doc, opts, diagnostics, skipped);
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
  return { resources: { resources }, diagnostics, skipped };
}

/** Kubernetes drops fields set to null (`tls:` with nothing after it) on write; so do we. */
function dropNullFields(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNullFields);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNullFields(x);
  return out;
}

function subjectOf(r: Resource): DiagnosticSubject {
  return {
    origin: r.origin,
    kind: r.kind,
    ...(r.namespace !== '' ? { namespace: r.namespace } : {}),
    name: r.name,
  };
}

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

function loadDocument(
  doc: ParsedDocument,
  opts: LoadOptions,
  diagnostics: Diagnostic[],
  skipped: SkippedDocument[],
): Resource | undefined {
  const origin: Origin = { kind: 'file', file: doc.file, doc: doc.doc, line: doc.line };
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

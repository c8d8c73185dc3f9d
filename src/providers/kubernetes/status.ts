/**
 * Problems reported where Kubernetes users look (`--write-status`, by the one replica holding the
 * Lease): each error or warning on an object from the API becomes a core/v1 Event on that object
 * (once per object generation and message), and on Istio kinds a status written by server-side
 * apply (`application/apply-patch+yaml` on the status subresource, field manager `sluice`, never
 * forced), so sluice owns only the entries it writes:
 * - `status.validationMessages`: one entry per `istioctl analyze` code found, as istiod writes
 *   them (`{level, type: {code}, documentationUrl}`; schema and validation errors as IST0106),
 *   the URL marked `?ref=sluice` so it never names an entry istiod wrote;
 * - `status.conditions`: one condition of type `sluice.dev/Accepted` saying whether the object is
 *   served (True, reason `Accepted` or `AcceptedWithWarnings`; False, `Invalid`) and listing every
 *   finding as `CODE: message`, so findings without an IST code (docs/errors.md) have a stable
 *   place too.
 * An object with nothing to say gets an empty apply, which removes what sluice wrote and nothing
 * else. Where another manager owns a field sluice would write (Istio's own CRDs keep status
 * lists atomic, so istiod's validationMessages are one field), the API server answers 409 and
 * sluice leaves it: the failure is counted, never forced. A status is written only when what it
 * should say changed, so writing it (a new resourceVersion, back as a watch event) settles at once.
 */
import { formatDiagnostic, type Diagnostic } from '../../errors/diagnostic.ts';
import type { Origin } from '../../errors/origin.ts';
import type { KubeClient } from './client.ts';
import { CONFIG_KINDS } from './kinds.ts';

type KubeOrigin = Extract<Origin, { kind: 'kube' }>;

export interface ReportedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly uid: string;
  readonly generation?: number;
}

export interface StatusWriter {
  /**
   * What the last judged set says; `objects` gives what the watch cache holds for an origin
   * (apiVersion, uid), or undefined for an object gone since.
   */
  report(
    diagnostics: readonly Diagnostic[],
    objects: (o: KubeOrigin) => ReportedObject | undefined,
  ): Promise<void>;
}

const ISTIO_GROUPS = new Set(['networking.istio.io', 'security.istio.io']);
const SCHEMA_CODES = new Set(['SLUICE_CONFIG_SCHEMA', 'SLUICE_CONFIG_INVALID', 'SLUICE_REGEX_INVALID']);

/** The field manager sluice's status writes are owned by. */
export const FIELD_MANAGER = 'sluice';
/** The condition sluice keeps on each Istio object it has something to say about. */
export const ACCEPTED_CONDITION = 'sluice.dev/Accepted';
/** metav1.Condition allows 32768; a few findings fit well within this. */
const CONDITION_MESSAGE_MAX = 4096;

interface ValidationMessage {
  readonly level: 'ERROR' | 'WARNING' | 'INFO';
  readonly type: { readonly code: string };
  readonly documentationUrl: string;
}

const LEVEL_ORDER = { ERROR: 0, WARNING: 1, INFO: 2 } as const;

/** The validationMessages entry istiod would write for a diagnostic, if it has an analysis code. */
export function validationMessageOf(d: Diagnostic): ValidationMessage | null {
  const code = d.istioCode ?? (d.level === 'error' && SCHEMA_CODES.has(d.code) ? 'IST0106' : null);
  if (code === null) return null;
  return {
    level: d.level === 'error' ? 'ERROR' : d.level === 'warning' ? 'WARNING' : 'INFO',
    type: { code },
    documentationUrl: `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/?ref=sluice`,
  };
}

/** What sluice's part of an object's status says, without times (so it compares across reads). */
export function statusOf(ds: readonly Diagnostic[], generation: number | undefined): Record<string, unknown> {
  const findings = ds.filter((d) => d.level !== 'info');
  if (findings.length === 0) return {};
  // One entry per code (the most severe level): entries are owned by their documentationUrl.
  const byCode = new Map<string, ValidationMessage>();
  for (const m of findings.map(validationMessageOf))
    if (m !== null) {
      const had = byCode.get(m.type.code);
      if (had === undefined || LEVEL_ORDER[m.level] < LEVEL_ORDER[had.level]) byCode.set(m.type.code, m);
    }
  const invalid = findings.some((d) => d.level === 'error');
  const message = findings
    .map((d) => `${d.code}: ${d.path !== undefined ? `${d.path}: ` : ''}${d.message}`)
    .join('; ')
    .slice(0, CONDITION_MESSAGE_MAX);
  return {
    ...(byCode.size > 0
      ? { validationMessages: [...byCode.values()].sort((a, b) => (a.type.code < b.type.code ? -1 : 1)) }
      : {}),
    conditions: [
      {
        type: ACCEPTED_CONDITION,
        status: invalid ? 'False' : 'True',
        reason: invalid ? 'Invalid' : 'AcceptedWithWarnings',
        message,
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      },
    ],
  };
}

const keyOf = (o: KubeOrigin): string => `${o.resource}/${o.namespace}/${o.name}`;

/** Where an object lives, from its apiVersion and plural. */
export function objectPath(
  apiVersion: string,
  o: Pick<KubeOrigin, 'namespace' | 'resource' | 'name'>,
): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = o.namespace === '' ? '' : `/namespaces/${encodeURIComponent(o.namespace)}`;
  return `${base}${ns}/${o.resource}/${encodeURIComponent(o.name)}`;
}

/**
 * Server-side apply of `status` (the status subresource) as field manager sluice, not forced: the
 * fields in `status` become sluice's, the ones sluice wrote before and leaves out are removed, and
 * a field another manager owns is a 409, not overwritten.
 */
export async function applyStatus(
  client: KubeClient,
  apiVersion: string,
  kind: string,
  o: { readonly namespace: string; readonly name: string; readonly resource: string },
  status: Record<string, unknown>,
): Promise<void> {
  await client.request(
    'PATCH',
    `${objectPath(apiVersion, o)}/status?fieldManager=${FIELD_MANAGER}`,
    {
      apiVersion,
      kind,
      metadata: { name: o.name, ...(o.namespace !== '' ? { namespace: o.namespace } : {}) },
      status,
    },
    'application/apply-patch+yaml',
  );
}

export function createStatusWriter(
  client: KubeClient,
  opts: { readonly isLeader: () => boolean; readonly instance: string; readonly warn: (msg: string) => void },
): StatusWriter {
  /** What each object's status says now (JSON), as last written. */
  const written = new Map<string, string>();
  /** Events sent: object uid + resourceVersion + message. */
  let sent = new Set<string>();
  const istioPlurals = new Set(CONFIG_KINDS.filter((k) => ISTIO_GROUPS.has(k.group)).map((k) => k.plural));

  const writeStatus = async (
    o: KubeOrigin,
    obj: ReportedObject,
    ds: readonly Diagnostic[],
  ): Promise<void> => {
    const status = statusOf(ds, obj.generation);
    const text = JSON.stringify(status);
    if (written.get(keyOf(o)) === text) return;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const conditions = status.conditions as Record<string, unknown>[] | undefined;
    await applyStatus(client, obj.apiVersion, obj.kind, o, {
      ...status,
      ...(conditions !== undefined
        ? { conditions: conditions.map((c) => ({ ...c, lastTransitionTime: now })) }
        : {}),
    });
    written.set(keyOf(o), text);
  };

  const sendEvent = async (o: KubeOrigin, obj: ReportedObject, d: Diagnostic): Promise<void> => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await client.request(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(o.namespace || 'default')}/events`,
      {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${o.name}.`, namespace: o.namespace || 'default' },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: o.name,
          namespace: o.namespace,
          uid: obj.uid,
          resourceVersion: o.resourceVersion,
        },
        type: d.level === 'error' ? 'Warning' : 'Normal',
        reason: d.level === 'error' ? 'SluiceConfigError' : 'SluiceConfigWarning',
        message: formatDiagnostic(d).replace(/\s+/g, ' ').slice(0, 1024),
        source: { component: 'sluice' },
        reportingComponent: 'sluice.dev/gateway',
        reportingInstance: opts.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    );
  };

  return {
    async report(diagnostics, objects) {
      if (!opts.isLeader()) return;
      const byObject = new Map<string, { origin: KubeOrigin; diagnostics: Diagnostic[] }>();
      for (const d of diagnostics) {
        const o = d.subject?.origin;
        if (o?.kind !== 'kube') continue;
        let entry = byObject.get(keyOf(o));
        if (entry === undefined) byObject.set(keyOf(o), (entry = { origin: o, diagnostics: [] }));
        entry.diagnostics.push(d);
      }
      const nextSent = new Set<string>();
      const work: Promise<void>[] = [];
      for (const { origin, diagnostics: ds } of byObject.values()) {
        const obj = objects(origin);
        if (obj === undefined) continue;
        for (const d of ds) {
          if (d.level === 'info') continue;
          // By generation, not resourceVersion: writing the status bumps the latter.
          const key = `${obj.uid}@${obj.generation ?? origin.resourceVersion}:${d.code}:${d.message}`;
          nextSent.add(key);
          if (!sent.has(key)) work.push(sendEvent(origin, obj, d));
        }
        if (istioPlurals.has(origin.resource)) work.push(writeStatus(origin, obj, ds));
      }
      // Objects that said something before and say nothing now: their status is cleared.
      for (const [key, text] of written)
        if (!byObject.has(key) && text !== '{}') {
          const [resource, namespace, name] = key.split('/') as [string, string, string];
          const origin: KubeOrigin = { kind: 'kube', resource, namespace, name, resourceVersion: '' };
          const obj = objects(origin);
          if (obj === undefined) written.delete(key);
          else work.push(writeStatus(origin, obj, []));
        }
      sent = nextSent;
      const results = await Promise.allSettled(work);
      for (const r of results)
        if (r.status === 'rejected') opts.warn(`--write-status: ${(r.reason as Error).message}`);
    },
  };
}

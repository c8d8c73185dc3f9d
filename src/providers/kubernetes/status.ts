/**
 * Problems reported where Kubernetes users look (`--write-status`, by the one replica holding the
 * Lease): each error or warning on an object from the API becomes a core/v1 Event on that object
 * (once per object version and message), and for Istio kinds the findings with an `istioctl
 * analyze` code become `status.validationMessages`, as istiod writes them
 * (`{level, type: {code}, documentationUrl}`; schema and validation errors as IST0106), by a JSON
 * merge patch of the status subresource. A status is written only when what it should say
 * changed, and cleared when the object has nothing left to say, so writing it (which bumps the
 * object's resourceVersion and comes back as a watch event) settles at once.
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

interface ValidationMessage {
  readonly level: 'ERROR' | 'WARNING' | 'INFO';
  readonly type: { readonly code: string };
  readonly documentationUrl: string;
}

/** The validationMessages entry istiod would write for a diagnostic, if it has an analysis code. */
export function validationMessageOf(d: Diagnostic): ValidationMessage | null {
  const code = d.istioCode ?? (d.level === 'error' && SCHEMA_CODES.has(d.code) ? 'IST0106' : null);
  if (code === null) return null;
  return {
    level: d.level === 'error' ? 'ERROR' : d.level === 'warning' ? 'WARNING' : 'INFO',
    type: { code },
    documentationUrl: `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/`,
  };
}

const keyOf = (o: KubeOrigin): string => `${o.resource}/${o.namespace}/${o.name}`;

/** Where an object's collection lives, from its apiVersion and plural. */
function objectPath(apiVersion: string, o: KubeOrigin): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = o.namespace === '' ? '' : `/namespaces/${encodeURIComponent(o.namespace)}`;
  return `${base}${ns}/${o.resource}/${encodeURIComponent(o.name)}`;
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
    messages: ValidationMessage[],
  ): Promise<void> => {
    const text = JSON.stringify(messages);
    if (written.get(keyOf(o)) === text) return;
    await client.request(
      'PATCH',
      `${objectPath(obj.apiVersion, o)}/status`,
      {
        status: {
          validationMessages: messages.length === 0 ? null : messages,
          ...(obj.generation !== undefined ? { observedGeneration: String(obj.generation) } : {}),
        },
      },
      'application/merge-patch+json',
    );
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
        if (istioPlurals.has(origin.resource))
          work.push(
            writeStatus(
              origin,
              obj,
              ds.map(validationMessageOf).filter((m): m is ValidationMessage => m !== null),
            ),
          );
      }
      // Objects that said something before and say nothing now: their status is cleared.
      for (const [key, text] of written)
        if (!byObject.has(key) && text !== '[]') {
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

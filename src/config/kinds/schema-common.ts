import { z } from 'zod';
import { parseDuration } from '../../util/duration.ts';
import { camelCase } from '../parse-documents.ts';

/**
 * Building blocks shared by the kind schemas. Istio's CRD schemas reject fields they do not
 * define, so Istio messages are strict objects. Istio also accepts the proto field names
 * (`sni_hosts` for `sniHosts`, as some istio.io pages write them); `msg` renames those to the
 * JSON name before checking, so the model only ever has the JSON names.
 */
export function msg<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = new Set(Object.keys(shape));
  // Unknown fields are reported here rather than by z.strictObject so the message can say what
  // the likely intended field was; the resource is dropped on any error, so nothing leaks through.
  const obj = z.looseObject(shape).check(
    z.superRefine((value, ctx) => {
      for (const key of Object.keys(value)) {
        if (known.has(key)) continue;
        const near = nearest(key, known);
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `unknown field${near ? ` (did you mean ${near}?)` : ''}: Istio rejects fields its schema does not define`,
        });
      }
    }),
  );
  return z.preprocess((v) => renameProtoFields(v, known), obj);
}

/** The known field closest to a misspelt one (case-insensitive, edit distance up to 2). */
export function nearest(key: string, known: ReadonlySet<string>): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(k, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function renameProtoFields(v: unknown, known: ReadonlySet<string>): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(v)) {
    if (!key.includes('_') || known.has(key)) continue;
    const camel = camelCase(key);
    if (!known.has(camel) || Object.hasOwn(v, camel)) continue;
    out ??= { ...(v as Record<string, unknown>) };
    out[camel] = out[key];
    delete out[key];
  }
  return out ?? v;
}

export const str = z.string();
export const strList = z.array(z.string());
export const stringMap = z.record(z.string(), z.string());
export const bool = z.boolean();
export const int32 = z.int().min(-2147483648).max(2147483647);
export const uint32 = z.int().min(0).max(4294967295);
export const double = z.number();
export const portNumber = z.int().min(0).max(4294967295);

/** Istio duration string (Go syntax: "10s", "1.5s", "500ms", "1m30s"). */
export const duration = z.string().check(
  z.superRefine((s, ctx) => {
    const d = parseDuration(s, { bareSeconds: false });
    if (!d.ok)
      ctx.addIssue({ code: 'custom', message: `must be a duration such as "10s" or "500ms", got "${s}"` });
  }),
);

export const percent = msg({ value: double.optional() });

export const PROTOCOLS = [
  'HTTP',
  'HTTPS',
  'HTTP2',
  'GRPC',
  'GRPC-WEB',
  'TLS',
  'TCP',
  'MONGO',
  'REDIS',
  'MYSQL',
  'UDP',
] as const;

/** Protocol names are case-insensitive in Istio; the model holds them upper-cased. */
export const protocol = z
  .string()
  .check(
    z.superRefine((s, ctx) => {
      if (!(PROTOCOLS as readonly string[]).includes(s.toUpperCase())) {
        ctx.addIssue({
          code: 'custom',
          message: `must be one of ${PROTOCOLS.join(', ')} (any case), got "${s}"`,
        });
      }
    }),
  )
  .transform((s) => s.toUpperCase() as (typeof PROTOCOLS)[number]);

/** Kubernetes object metadata; fields sluice does not read are allowed and dropped. */
export const metadata = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().min(1).optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  creationTimestamp: z.union([z.string(), z.date().transform((d) => d.toISOString())]).optional(),
});

export type Metadata = z.output<typeof metadata>;

/**
 * Where a resource came from. Lives in errors/ because every diagnostic carries one; model/
 * re-exports it for resources.
 */
export type Origin =
  | { readonly kind: 'file'; readonly file: string; readonly doc: number; readonly line?: number }
  | {
      readonly kind: 'kube';
      readonly namespace: string;
      readonly resource: string;
      readonly name: string;
      readonly resourceVersion: string;
    }
  | { readonly kind: 'builtin'; readonly what: string };

/** Renders an origin as diagnostics print it: `file#doc:line` or `kube:ns/kind/name@rv`. */
export function formatOrigin(o: Origin, line?: number): string {
  switch (o.kind) {
    case 'file': {
      const l = line ?? undefined;
      return l === undefined ? `${o.file}#${o.doc}` : `${o.file}#${o.doc}:${l}`;
    }
    case 'kube':
      return `kube:${o.namespace}/${o.resource}/${o.name}@${o.resourceVersion}`;
    case 'builtin':
      return `builtin:${o.what}`;
  }
}

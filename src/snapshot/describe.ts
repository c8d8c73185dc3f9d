/** Text renderings of snapshot parts, shared by explain and dumps. */
import type { HeaderOps, RequestMirror, Route, RouteAction, WeightedCluster } from './types.ts';

export function describeConditions(route: Route): string {
  if (route.conditions.length === 0) return '*';
  return route.conditions.map((c) => `${c.field} ${c.expected}`).join(' && ');
}

function describeRewrite(action: Extract<RouteAction, { kind: 'forward' }>): string[] {
  const out: string[] = [];
  const rw = action.rewrite;
  if (rw?.kind === 'prefix') out.push(`rewrite prefix ${rw.prefix} → ${rw.replacement}`);
  else if (rw?.kind === 'full') out.push(`rewrite path → ${rw.replacement}`);
  else if (rw?.kind === 'regex') out.push(`rewrite regex ${rw.pattern.source} → ${rw.replacement}`);
  if (action.authority !== null) out.push(`authority → ${action.authority}`);
  return out;
}

/** `mirror outbound|80||b.default.svc.cluster.local 10%`, and why nothing goes there when unknown. */
export function describeMirror(m: RequestMirror): string {
  return `mirror ${m.clusterName} ${m.perMillion / 10_000}%${m.cluster === null ? ' (unknown: nothing mirrored)' : ''}`;
}

export function describeDestination(d: WeightedCluster, total: number, single: boolean): string {
  const share = single ? '' : ` ${d.weight}/${total}`;
  return `${d.clusterName}${share}${d.cluster === null ? ' (unknown: 503 NC)' : ''}`;
}

export function describeAction(action: RouteAction): string {
  switch (action.kind) {
    case 'forward': {
      const single = action.destinations.length === 1;
      const parts = [
        `forward ${action.destinations.map((d) => describeDestination(d, action.totalWeight, single)).join(', ')}`,
      ];
      parts.push(...describeRewrite(action));
      if (action.timeoutMs !== null) parts.push(`timeout ${action.timeoutMs}ms`);
      for (const m of action.mirrors ?? []) parts.push(describeMirror(m));
      return parts.join('; ');
    }
    case 'redirect': {
      if (action.httpsRedirect) return `redirect ${action.code} to https`;
      const parts: string[] = [];
      if (action.scheme !== null) parts.push(`scheme ${action.scheme}`);
      if (action.authority !== null) parts.push(`authority ${action.authority}`);
      if (action.port !== null) parts.push(`port ${action.port}`);
      if (action.derivePort !== null) parts.push(`derivePort ${action.derivePort}`);
      if (action.uri !== null) parts.push(`uri ${action.uri}`);
      return `redirect ${action.code}${parts.length > 0 ? ` ${parts.join(' ')}` : ''}`;
    }
    case 'direct':
      return `direct response ${action.status}${action.body !== null ? ` (${action.body.length} bytes)` : ''}`;
  }
}

export function describeHeaderOps(ops: HeaderOps | null): Record<string, unknown> | null {
  if (ops === null) return null;
  return {
    remove: [...ops.remove],
    set: Object.fromEntries(ops.set.map(([k, v]) => [k, typeof v === 'string' ? v : v.text])),
    add: Object.fromEntries(ops.add.map(([k, v]) => [k, typeof v === 'string' ? v : v.text])),
  };
}

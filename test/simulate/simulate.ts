/** Table runner for simulation tests, after Istio's gateway_simulation_test.go: YAML + calls → what happens. */
import { expect } from 'vitest';
import type { GatewayIdentity } from '../../src/model/sluice.ts';
import { explainRequest, type ExplainCall, type ExplainResult } from '../../src/snapshot/explain.ts';
import { compileYaml } from './compile-yaml.ts';

export interface Expect {
  /** Virtual host name chosen, or null for none. */
  readonly vhost?: string | null;
  /** `ns/name` of the VirtualService whose rule won. */
  readonly vs?: string | null;
  /** Route name. */
  readonly route?: string;
  /** Cluster names with weights, `name` or `name=weight`. */
  readonly clusters?: readonly string[];
  readonly status?: number;
  readonly flag?: string;
  readonly location?: string;
  /** Route table name. */
  readonly table?: string | null;
}

export interface Call extends Partial<ExplainCall> {
  readonly name: string;
  readonly want: Expect;
}

export interface SimCase {
  readonly name: string;
  readonly config: string;
  readonly identity?: Partial<GatewayIdentity>;
  readonly calls: readonly Call[];
  /** Substrings each expected among the diagnostics. */
  readonly diagnostics?: readonly string[];
}

function project(r: ExplainResult, want: Expect): Expect {
  const out: Record<string, unknown> = {};
  if ('vhost' in want) out.vhost = r.vhost?.name ?? null;
  if ('vs' in want)
    out.vs = r.route?.source ? `${r.route.source.vsNamespace}/${r.route.source.vsName}` : null;
  if ('route' in want) out.route = r.route?.name;
  if ('clusters' in want)
    out.clusters = r.destinations.map((d) =>
      r.destinations.length > 1 ? `${d.cluster}=${d.weight}` : d.cluster,
    );
  if ('status' in want) out.status = r.localReply?.status ?? 200;
  if ('flag' in want) out.flag = r.localReply?.flag ?? '-';
  if ('location' in want) out.location = r.localReply?.location;
  if ('table' in want) out.table = r.table;
  return out as Expect;
}

export async function runCase(c: SimCase): Promise<void> {
  const compiled = compileYaml(c.config, c.identity);
  for (const d of c.diagnostics ?? []) {
    expect(
      compiled.messages.some((m) => m.includes(d)),
      `diagnostic containing "${d}" in:\n${compiled.messages.join('\n')}`,
    ).toBe(true);
  }
  for (const call of c.calls) {
    const r = await explainRequest(compiled.snapshot, {
      port: call.port ?? 8080,
      authority: call.authority ?? 'a.example.com',
      path: call.path ?? '/',
      ...(call.method !== undefined ? { method: call.method } : {}),
      ...(call.headers !== undefined ? { headers: call.headers } : {}),
      ...(call.scheme !== undefined ? { scheme: call.scheme } : {}),
      ...(call.sni !== undefined ? { sni: call.sni } : {}),
    });
    expect(
      project(r, call.want),
      `${call.name}\n${r.lines.join('\n')}\n${compiled.messages.join('\n')}`,
    ).toEqual(call.want);
  }
}

/**
 * One implementation of the routing decision: every simulation case (test/simulate/cases) is sent
 * through `explain` (the CLI's code) and as a real request, byte for byte, to a gateway on
 * loopback serving the same snapshot. Both must reach the same verdict: route table, vhost,
 * route, and the local reply's status and flag, or for a forwarded request a cluster among the
 * ones explain names. No answer at all (refused connection, aborted handshake) is status 0.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { explainRequest, type ExplainResult } from '../../src/snapshot/explain.ts';
import { hostKeyOf } from '../../src/snapshot/route-request.ts';
import { rawHeader } from '../../src/observability/request-facts.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';
import { GATEWAY_CASES } from '../simulate/cases/gateway.ts';
import { VIRTUALSERVICE_CASES, VIRTUALSERVICE_EDGE_CASES } from '../simulate/cases/virtualservice.ts';
import { compileYaml } from '../simulate/compile-yaml.ts';
import type { Call, SimCase } from '../simulate/simulate.ts';
import { rsaLeaf, tlsSecretYaml } from '../support/certs.ts';
import { startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { until } from '../support/until.ts';

interface Verdict {
  readonly table: string | null;
  readonly vhost: string | null;
  readonly route: string | null;
  /** `status flag` of a local reply, `forward` for a forwarded request, `0` for no answer. */
  readonly outcome: string;
  readonly location?: string;
}

/** Every credentialName in the config gets a Secret, so HTTPS servers can terminate. */
function withCredentials(config: string): string {
  const names = new Set([...config.matchAll(/credentialName: ([\w.-]+)/g)].map((m) => m[1]!));
  const leaf = rsaLeaf(['sim.example.com']);
  return [config, ...[...names].map((n) => '---\n' + tlsSecretYaml(n, leaf))].join('\n');
}

function explained(r: ExplainResult): Verdict & { clusters: readonly string[] } {
  const reply = r.localReply;
  return {
    table: r.table,
    vhost: r.vhost?.name ?? null,
    route: r.route?.name ?? null,
    outcome: reply === null ? 'forward' : reply.status === 0 ? '0' : `${reply.status} ${reply.flag}`,
    ...(reply?.location !== undefined ? { location: reply.location } : {}),
    clusters: r.destinations.filter((d) => d.weight > 0).map((d) => d.cluster),
  };
}

interface Answer {
  readonly status: number;
  readonly location?: string;
}

/** The call as bytes on the wire, over TLS when the listener terminates it. */
function send(port: number, tls: boolean, call: Call, marker: string): Promise<Answer | null> {
  const authority = call.authority ?? 'a.example.com';
  let head = `${call.method ?? 'GET'} ${call.path ?? '/'} HTTP/1.1\r\n`;
  if (authority !== '') head += `Host: ${authority}\r\n`;
  for (const [k, v] of Object.entries(call.headers ?? {})) head += `${k}: ${v}\r\n`;
  head += `x-sim-call: ${marker}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve) => {
    const sni = call.sni ?? hostKeyOf(authority) ?? '';
    const socket: Socket = tls
      ? tlsConnect({
          host: '127.0.0.1',
          port,
          servername: sni,
          rejectUnauthorized: false,
          ALPNProtocols: ['http/1.1'],
        })
      : tcpConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write(Buffer.from(head, 'latin1')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      if (m === null) return resolve(null);
      const location = /\r\nlocation: ([^\r]*)/i.exec(raw.slice(0, raw.indexOf('\r\n\r\n')))?.[1];
      resolve({ status: Number(m[1]), ...(location !== undefined ? { location } : {}) });
    });
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

let g: TestGateway | null = null;
afterEach(async () => {
  await g?.close();
  g = null;
});

async function compare(c: SimCase): Promise<void> {
  const compiled = compileYaml(withCredentials(c.config), c.identity);
  const snapshot = compiled.snapshot;
  const done: RequestContext[] = [];
  g = await startGatewayWithSnapshot(snapshot, { onRequestDone: (ctx) => done.push(ctx) });
  const bound = g.gateway.boundPorts();
  for (const [i, call] of c.calls.entries()) {
    const port = call.port ?? 8080;
    const r = await explainRequest(snapshot, {
      port,
      authority: call.authority ?? 'a.example.com',
      path: call.path ?? '/',
      ...(call.method !== undefined ? { method: call.method } : {}),
      ...(call.headers !== undefined ? { headers: call.headers } : {}),
      ...(call.sni !== undefined ? { sni: call.sni } : {}),
    });
    const want = explained(r);
    const why = `${c.name} › ${call.name}\n${r.lines.join('\n')}`;
    const boundPort = bound.get(port);
    const tls = snapshot.listeners.get(port)?.protocol === 'HTTPS';
    const answer = boundPort === undefined ? null : await send(boundPort, tls, call, String(i));
    const record = (): RequestContext | null =>
      done.find((d) => rawHeader(d.req.rawHeaders, 'x-sim-call') === String(i)) ?? null;
    if (answer === null) {
      expect({ outcome: '0', handled: record() !== null }, why).toEqual({
        outcome: want.outcome,
        handled: false,
      });
      continue;
    }
    const seen = (await until(record, { what: `the request record of ${call.name}` }))!;
    const outcome = seen.fwd !== null ? 'forward' : `${answer.status} ${seen.responseFlags}`;
    // A weighted pick can land on a destination explain lists as unknown: NC for this request.
    const pickedUnknown =
      outcome === '503 NC' &&
      want.outcome === 'forward' &&
      r.destinations.some((d) => d.cluster === seen.clusterName && !d.known);
    const real: Verdict = {
      table: seen.table?.name ?? null,
      vhost: seen.vhost?.name ?? null,
      route: seen.route?.name ?? null,
      outcome: pickedUnknown ? 'forward' : outcome,
      ...(answer.location !== undefined ? { location: answer.location } : {}),
    };
    const { clusters, ...verdict } = want;
    expect(real, why).toEqual(verdict);
    if (seen.clusterName !== null) expect(clusters, why).toContain(seen.clusterName);
  }
}

describe('explain and the data plane decide alike (every simulation case, as real requests)', () => {
  const all = [...GATEWAY_CASES, ...VIRTUALSERVICE_CASES, ...VIRTUALSERVICE_EDGE_CASES];
  it.each(all.map((c) => [c.name, c] as const))('%s', async (_n, c) => compare(c), 60_000);
});

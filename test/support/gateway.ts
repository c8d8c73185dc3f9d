/**
 * An in-process gateway for integration tests: real listeners on 127.0.0.1 with ephemeral
 * ports (configured port → bound port via `port()`), closed by `close()` in afterEach.
 */
import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { createRequestMetrics } from '../../src/observability/request-metrics.ts';
import { createRequestObserver } from '../../src/observability/request-observer.ts';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/control/reconcile.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import type { Snapshot } from '../../src/snapshot/types.ts';
import { loadResources } from '../../src/config/index.ts';
import { compile } from '../../src/compile/index.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';
import type { GatewayIdentity } from '../../src/model/sluice.ts';
import type { RequestContext } from '../../src/dataplane/request-context.ts';

export const TEST_IDENTITY: GatewayIdentity = {
  namespace: 'istio-system',
  labels: { istio: 'ingressgateway' },
  rootNamespace: 'istio-system',
};

/** YAML → loadResources → compile, failing loudly on any error diagnostic. */
export function snapshotFromYaml(yaml: string, identity: GatewayIdentity = TEST_IDENTITY): Snapshot {
  const loaded = loadResources([{ file: 'test.yaml', text: yaml }], { defaultNamespace: 'default' });
  const compiled = compile(loaded.resources, { ...identity, nowMs: Date.now() });
  const errors = [...loaded.diagnostics, ...compiled.diagnostics].filter((d) => d.level === 'error');
  if (errors.length > 0) throw new Error('config has errors:\n' + errors.map(formatDiagnostic).join('\n'));
  return compiled.snapshot;
}

/** The gateway in-process from a YAML string (Istio documents), listeners on ephemeral ports. */
export async function startGatewayFromYaml(
  yaml: string,
  opts: Partial<Omit<GatewayOptions, 'bind' | 'logger'>> & { identity?: GatewayIdentity } = {},
): Promise<TestGateway> {
  const { identity, ...rest } = opts;
  return startGatewayWithSnapshot(snapshotFromYaml(yaml, identity), rest);
}

/** startGatewayFromYaml recording the context of every finished request in `done`. */
export async function startRecordingGateway(yaml: string): Promise<TestGateway & { done: RequestContext[] }> {
  const done: RequestContext[] = [];
  const gw = await startGatewayFromYaml(yaml, { onRequestDone: (ctx) => done.push(ctx) });
  return { ...gw, done };
}

/** startRecordingGateway that also counts Istio's request metrics (DP-7) into its own `registry`. */
export async function startMeteredGateway(
  yaml: string,
): Promise<TestGateway & { done: RequestContext[]; registry: Registry }> {
  const m = metered();
  const gw = await startGatewayFromYaml(yaml, { onRequestDone: m.onRequestDone });
  return { ...gw, done: m.done, registry: m.registry };
}

/** A gateway option recording every finished request in `done` and counting its metrics in `registry`. */
export function metered(): {
  readonly done: RequestContext[];
  readonly registry: Registry;
  readonly onRequestDone: (ctx: RequestContext) => void;
} {
  const registry = new Registry();
  const metrics = createRequestMetrics({
    registry,
    workload: 'sluice',
    namespace: 'istio-system',
    labels: {},
  });
  const observe = createRequestObserver({ accessLog: null, metrics, tracing: null });
  const done: RequestContext[] = [];
  return {
    done,
    registry,
    onRequestDone: (ctx) => {
      observe(ctx);
      done.push(ctx);
    },
  };
}

export interface TestGateway {
  readonly gateway: Gateway;
  /** Bound port for a configured Gateway port (default: the only one). */
  port(configured?: number): number;
  url(path: string, configured?: number): string;
  close(): Promise<void>;
}

export async function startGatewayWithSnapshot(
  snapshot: Snapshot,
  opts: Partial<Omit<GatewayOptions, 'bind' | 'logger'>> = {},
): Promise<TestGateway> {
  const gateway = createGateway({ bind: '127.0.0.1', logger: silentLogger(), bindPortFor: () => 0, ...opts });
  await gateway.apply(snapshot);
  return wrap(gateway);
}

function wrap(gateway: Gateway): TestGateway {
  const port = (configured?: number): number => {
    const ports = gateway.boundPorts();
    if (configured === undefined) {
      if (ports.size !== 1) throw new Error(`gateway has ${ports.size} listeners; say which port`);
      return [...ports.values()][0]!;
    }
    const p = ports.get(configured);
    if (p === undefined) throw new Error(`no listener for configured port ${configured}`);
    return p;
  };
  return {
    gateway,
    port,
    url: (path, configured) => `http://127.0.0.1:${port(configured)}${path}`,
    close: () => gateway.close(),
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly raw: string;
}

/**
 * Writes exact bytes to the port and reads until the server closes or `timeoutMs` passes; parses
 * the first response. For hostile-input tests, where HTTP clients would refuse to send the bytes.
 */
export function sendRaw(port: number, bytes: string | Buffer, timeoutMs = 3000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      const parsed = parseFirstResponse(raw);
      if (parsed === null) reject(new Error(`no HTTP response; got ${JSON.stringify(raw.slice(0, 200))}`));
      else resolve(parsed);
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const raw = Buffer.concat(chunks).toString('latin1');
      const p = parseFirstResponse(raw);
      if (p !== null && p.complete) done();
    });
    s.on('error', () => done());
    s.on('close', () => done());
    s.write(bytes);
  });
}

function parseFirstResponse(raw: string): (RawResponse & { complete: boolean }) | null {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = raw.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = raw.slice(end + 4);
  const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : -1;
  const body = len >= 0 ? rest.slice(0, len) : rest;
  return { status: Number(m[1]), headers, body, raw, complete: len >= 0 && rest.length >= len };
}

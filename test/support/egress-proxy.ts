/**
 * The egress forward proxy in-process for tests: the gateway with `--egress-proxy-port`, a
 * resolver the test scripts (names → answers, counting every question), and the clients the
 * tests speak through it: curl -x, raw absolute-form requests, raw CONNECT tunnels.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { startGatewayFromYaml, TEST_IDENTITY, type TestGateway } from './gateway.ts';
import { createEgressLedger, type EgressLedger } from '../../src/observability/egress-ledger.ts';
import type { FinishedRequest } from '../../src/observability/finished-request.ts';
import type { GatewayOptions } from '../../src/control/reconcile.ts';
import type { EgressProxyTuning } from '../../src/dataplane/forward-proxy.ts';
import { setDnsResolverForTests, type DnsRecord } from '../../src/upstream/dns.ts';

export const PROXY_PORT = 3128;

export interface ServiceEntryShape {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly resolution: 'NONE' | 'STATIC' | 'DNS' | 'DYNAMIC_DNS';
  /** Each `[number, name, protocol, targetPort]`. */
  readonly ports: readonly (readonly [number, string, string, number])[];
  readonly addresses?: readonly string[];
  readonly endpoints?: readonly string[];
}

/** One ServiceEntry document in namespace `default`. */
export function serviceEntryYaml(e: ServiceEntryShape): string {
  const ports = e.ports.map(
    ([number, name, protocol, targetPort]) =>
      `{ number: ${number}, name: ${name}, protocol: ${protocol}, targetPort: ${targetPort} }`,
  );
  const lines = [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    `metadata: { name: ${e.name}, namespace: default }`,
    'spec:',
    `  hosts: ${JSON.stringify(e.hosts)}`,
    `  resolution: ${e.resolution}`,
    `  ports: [${ports.join(', ')}]`,
  ];
  if (e.addresses !== undefined) lines.push(`  addresses: ${JSON.stringify(e.addresses)}`);
  if (e.endpoints !== undefined)
    lines.push(`  endpoints: [${e.endpoints.map((a) => `{ address: ${a} }`).join(', ')}]`);
  return lines.join('\n') + '\n';
}

export interface EgressProxy {
  readonly gw: TestGateway;
  /** `http://127.0.0.1:<port>`, for curl -x and ProxyAgent. */
  readonly proxy: string;
  readonly port: number;
  /** Every name asked of the resolver once the gateway was up (by requests), in order. */
  readonly asked: string[];
  /** The names asked while the config was applied (DNS clusters resolve theirs ahead). */
  readonly warmed: readonly string[];
  readonly done: FinishedRequest[];
  readonly ledger: EgressLedger;
}

/**
 * `answers(name, n)`: the n-th (1-based) answer for `name`; undefined = does not resolve. Plain
 * addresses have no TTL (the cache keeps them 30 s); `{ address, ttl }` records carry theirs.
 */
export type Answers = (name: string, n: number) => readonly DnsRecord[] | undefined;

export async function startEgressProxy(
  yaml: string,
  answers: Answers,
  tuning: EgressProxyTuning = {},
  extra: Partial<Omit<GatewayOptions, 'bind' | 'logger'>> = {},
): Promise<EgressProxy> {
  const asked: string[] = [];
  const done: FinishedRequest[] = [];
  const ledger = createEgressLedger(null);
  // The process's one DNS cache asks this resolver, for clusters and the proxy alike.
  setDnsResolverForTests(async (name) => {
    asked.push(name);
    const a = answers(name, asked.filter((n) => n === name).length);
    if (a === undefined) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return a;
  });
  const gw = await startGatewayFromYaml(yaml, {
    identity: { ...TEST_IDENTITY, egressProxyPort: PROXY_PORT },
    onEgressDone: (r) => done.push(r),
    egressLedger: ledger,
    ...extra,
    egress: tuning,
  });
  const port = gw.port(PROXY_PORT);
  // The resolver is called synchronously when a lookup starts: these are all the warm-up's.
  const warmed = asked.splice(0);
  return { gw, proxy: `http://127.0.0.1:${port}`, port, asked, warmed, done, ledger };
}

export function curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `curl -x proxy url`'s status code only ('000' when there was no answer). */
export async function statusVia(proxy: string, url: string): Promise<string> {
  return (await curl(['-x', proxy, '-w', '%{http_code}', '-o', '/dev/null', url])).stdout;
}

/** One raw request to the proxy, exactly as written: status line and body. */
export function rawRequest(port: number, head: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    // Not half-closed: clients keep their side open until the answer is in.
    s.write(head);
  });
}

/** An absolute-form GET; Host is the target's authority exactly as written unless given. */
export function get(target: string, host: string | null = null): string {
  // URL would canonicalise an IP literal: take the authority as written.
  const h = host ?? /^http:\/\/([^/?#]*)/.exec(target)![1]!;
  return `GET ${target} HTTP/1.1\r\nhost: ${h}\r\nconnection: close\r\n\r\n`;
}

/**
 * CONNECT through the proxy; resolves once the proxy answered, with its status and the socket,
 * paused (bytes that came after the answer's head are put back): `resume()` it to read.
 */
export function openTunnel(
  port: number,
  target: string,
): Promise<{ status: number; socket: Socket; head: string }> {
  return sendHead(port, `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
}

/** Writes `request` to the proxy and resolves with the answer's head, as `openTunnel` does. */
export function sendHead(
  port: number,
  request: string,
): Promise<{ status: number; socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      s.pause();
      const head = buf.subarray(0, end + 4).toString('latin1');
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) s.unshift(rest);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, socket: s, head });
    };
    s.on('data', onData);
    s.on('error', reject);
    s.write(request);
  });
}

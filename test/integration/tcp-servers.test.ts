/**
 * Gateway servers with `protocol: TCP` (GW-5): every connection is piped to the port's bound
 * VirtualService `tcp` route; half-close passes through; a port without a route closes
 * connections; a reload re-routes new connections while an open one keeps its upstream.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Socket } from 'node:net';
import { snapshotFromYaml, startGatewayFromYaml } from '../support/gateway.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Answers `<tag>:<what the client sent>` once the client has finished sending, then closes. */
async function taggedEcho(tag: string): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (got += c));
    s.on('end', () => s.end(`${tag}:${got}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        server.close(() => r());
      }),
  );
  return (server.address() as { port: number }).port;
}

function yaml(upPort: number, routed = true): string {
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 5432, name: tcp-db, protocol: TCP }
      hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.internal]
  addresses: [240.0.0.1]
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tcp: ${upPort} } }]
${
  routed
    ? `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  tcp: [{ match: [{ port: 5432 }], route: [{ destination: { host: db.internal, port: { number: 5432 } } }] }]
`
    : ''
}`;
}

/** Sends `payload`, half-closes, and resolves with everything read until the gateway closes. */
function exchange(port: number, payload: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect({ host: '127.0.0.1', port }, () => s.end(payload));
    s.setEncoding('utf8');
    s.on('data', (c: string) => (got += c));
    s.once('error', (e: Error) => resolve(`error: ${e.message}`));
    s.once('close', () => resolve(got));
  });
}

describe('TCP servers (GW-5)', () => {
  it('GW-5 pipes each connection to the tcp route, half-close included', async () => {
    const up = await taggedEcho('db');
    const g = await startGatewayFromYaml(yaml(up));
    cleanups.push(() => g.close());
    expect(await exchange(g.port(5432), 'select 1')).toBe('db:select 1');
    const big = 'x'.repeat(256 * 1024);
    expect(await exchange(g.port(5432), big)).toBe(`db:${big}`);
  });

  it('GW-5 a TCP port with no bound tcp route closes connections without reaching an upstream', async () => {
    let reached = 0;
    const server = createServer((s) => {
      reached += 1;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    const g = await startGatewayFromYaml(yaml((server.address() as { port: number }).port, false));
    cleanups.push(() => g.close());
    expect(await exchange(g.port(5432), 'hello')).toBe('');
    expect(reached).toBe(0);
  });

  it('a reload sends new connections to the new route; an open connection keeps its upstream', async () => {
    const a = await taggedEcho('a');
    const b = await taggedEcho('b');
    const g = await startGatewayFromYaml(yaml(a));
    cleanups.push(() => g.close());
    const port = g.port(5432);
    // Opened before the reload, finished after it.
    const open: Socket = connect({ host: '127.0.0.1', port });
    let openGot = '';
    open.setEncoding('utf8');
    open.on('data', (c: string) => (openGot += c));
    const openClosed = new Promise<void>((r) => open.once('close', () => r()));
    await new Promise<void>((r) => open.once('connect', () => r()));
    open.write('before ');
    await g.gateway.apply(snapshotFromYaml(yaml(b)));
    expect(g.port(5432)).toBe(port);
    expect(await exchange(port, 'new')).toBe('b:new');
    open.end('after');
    await openClosed;
    expect(openGot).toBe('a:before after');
  });
});

describe('AuthorizationPolicy on TCP connections (AP-2, AP-8)', () => {
  const policy = (spec: string): string => `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: istio-system }
spec: ${spec}
`;

  it('a DENY on the client address closes the connection before anything reaches the upstream', async () => {
    const up = await taggedEcho('db');
    const g = await startGatewayFromYaml(
      yaml(up) + policy('{ action: DENY, rules: [{ from: [{ source: { ipBlocks: ["127.0.0.0/8"] } }] }] }'),
    );
    cleanups.push(() => g.close());
    expect(await exchange(g.port(5432), 'SELECT 1')).toBe('');
  });

  it('ALLOW on ports and addresses admits; a rule on HTTP attributes is dropped (stricter), so others are refused', async () => {
    const up = await taggedEcho('db');
    const g = await startGatewayFromYaml(
      yaml(up) +
        policy(
          '{ rules: [{ to: [{ operation: { ports: ["5432"] } }], from: [{ source: { ipBlocks: ["127.0.0.1"] } }] }, { to: [{ operation: { paths: ["/x"] } }] }] }',
        ),
    );
    cleanups.push(() => g.close());
    expect(await exchange(g.port(5432), 'SELECT 1')).toBe('db:SELECT 1');
    const strict = await startGatewayFromYaml(
      yaml(up) + policy('{ rules: [{ to: [{ operation: { methods: ["GET"] } }] }] }'),
    );
    cleanups.push(() => strict.close());
    expect(await exchange(strict.port(5432), 'SELECT 1')).toBe('');
  });
});

/**
 * The real `pebble` ACME test server (Debian package `pebble`, which also ships
 * `pebble-challtestsrv`) on loopback, one instance per test.
 *
 * Debian's package ships no config or certificates (upstream's test/ directory is not
 * installed), so this writes both: a throwaway CA and a 127.0.0.1/localhost certificate for the
 * directory's HTTPS (handed to the client as `caPem`), and a config whose `httpPort`/`tlsPort` are
 * the ports the caller's HTTP-01 / TLS-ALPN-01 responders already listen on. Pebble's validation
 * authority resolves the identifiers through `pebble-challtestsrv` as its DNS server, which
 * answers 127.0.0.1 for every name (its own challenge responders are turned off), so tests can
 * order for names like shop.example.test without touching /etc/hosts.
 *
 * PEBBLE_VA_NOSLEEP=1 (no random validation delay), PEBBLE_WFE_NONCEREJECT=0 (no random bad
 * nonces) and PEBBLE_AUTHZREUSE=0 (every order is validated afresh, so each test proves its
 * challenge) keep runs fast and deterministic.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeServerCert } from '../../src/tls/self-signed.ts';
import {
  ACME_TLS_ALPN_PROTOCOL,
  isAcmeChallengePath,
  resolveAcmeAlpnContext,
  selectAcmeAlpn,
  type AcmeTokens,
} from '../../src/tls/acme-tokens.ts';
import type { Resource } from '../../src/model/resource.ts';
import type { GatewaySpec } from '../../src/model/networking.ts';
import { until } from './until.ts';

export const PEBBLE_INSTALL = 'apt-get update && apt-get install -y pebble';

export interface Pebble {
  readonly directoryUrl: string;
  /** The CA of the directory's HTTPS certificate (pass as the issuer's caBundle). */
  readonly caPem: string;
  /** Pebble's issuing root for this run (from its management interface), to verify chains. */
  rootPem(): Promise<string>;
  output(): string;
  close(): Promise<void>;
}

export interface PebbleOptions {
  /** Port pebble's VA connects to for HTTP-01 (on 127.0.0.1, via the fake DNS). */
  readonly httpPort: number;
  /** Port pebble's VA connects to for TLS-ALPN-01. */
  readonly tlsPort: number;
  /** Lifetime of issued certificates in seconds (pebble's default is 5 years). */
  readonly certificateValiditySeconds?: number;
  /** Require external account binding with these key ids → base64url HMAC keys. */
  readonly eabKeys?: Readonly<Record<string, string>>;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim() !== '') return r.stdout.trim();
  return null;
}

/** Fails loudly (locally and in CI alike): the ACME tests are the only proof the protocol works. */
export function requirePebble(): { pebble: string; challtestsrv: string } {
  const pebble = which('pebble') ?? '/usr/bin/pebble';
  const challtestsrv = which('pebble-challtestsrv') ?? '/usr/bin/pebble-challtestsrv';
  const ok = (p: string) => spawnSync(p, ['-h'], { stdio: 'ignore' }).error === undefined;
  if (!ok(pebble) || !ok(challtestsrv)) {
    throw new Error(
      `pebble (the ACME test server) is not installed; the ACME integration tests need it. Install it with: ${PEBBLE_INSTALL}`,
    );
  }
  return { pebble, challtestsrv };
}

import { freePorts } from './free-port.ts';

export { freePort, freePorts } from './free-port.ts';

function httpsGet(url: string, caPem: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: caPem, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function startChild(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  sink: { out: string },
): ChildProcess {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const add = (d: Buffer) => {
    sink.out += d.toString();
    if (sink.out.length > 200_000) sink.out = sink.out.slice(-100_000);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const bins = requirePebble();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pebble-'));
  const ca = makeCa({ commonName: 'sluice pebble test CA' });
  const leaf = makeServerCert(ca, ['localhost', '127.0.0.1']);
  await writeFile(join(dir, 'cert.pem'), leaf.certPem);
  await writeFile(join(dir, 'key.pem'), leaf.keyPem);
  const [acmePort, mgmtPort, dnsPort, chMgmtPort] = (await freePorts(4)) as [number, number, number, number];
  await writeFile(
    join(dir, 'pebble-config.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: opts.eabKeys !== undefined,
        ...(opts.eabKeys !== undefined ? { externalAccountMACKeys: opts.eabKeys } : {}),
        ...(opts.certificateValiditySeconds !== undefined
          ? { certificateValidityPeriod: opts.certificateValiditySeconds }
          : {}),
      },
    }),
  );
  const sink = { out: '' };
  const dns = startChild(
    bins.challtestsrv,
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${chMgmtPort}`,
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    {},
    sink,
  );
  const pebble = startChild(
    bins.pebble,
    ['-config', join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
    { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    sink,
  );
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const close = async () => {
    await Promise.all([stopChild(pebble), stopChild(dns)]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(async () => (await httpsGet(directoryUrl, ca.certPem)).status === 200, {
      timeoutMs: 10_000,
      what: `pebble directory at ${directoryUrl}`,
    });
  } catch (err) {
    await close();
    throw new Error(`pebble did not start:\n${sink.out}`, { cause: err });
  }
  return {
    directoryUrl,
    caPem: ca.certPem,
    async rootPem() {
      const r = await httpsGet(`https://127.0.0.1:${mgmtPort}/roots/0`, ca.certPem);
      return r.body;
    },
    output: () => sink.out,
    close,
  };
}

export interface ChallengeResponders {
  readonly httpPort: number;
  readonly tlsPort: number;
  /** Requests the HTTP-01 responder answered (path → count), to prove pebble came. */
  readonly httpHits: Map<string, number>;
  /** TLS-ALPN-01 handshakes completed with acme-tls/1. */
  alpnHandshakes(): number;
  close(): Promise<void>;
}

/**
 * Minimal stand-ins for the gateway's hooks, answering from the token store exactly as the data
 * plane is to: HTTP-01 on a plaintext node:http server; TLS-ALPN-01 on a node:tls server whose
 * ALPNCallback picks acme-tls/1 (Node calls it before SNICallback, `this` being the TLSSocket) and
 * whose SNICallback then serves the challenge certificate.
 */
export async function startChallengeResponders(
  serve: AcmeTokens | (() => AcmeTokens),
): Promise<ChallengeResponders> {
  // A function lets a test swap which "replica" the validation requests reach.
  const current = typeof serve === 'function' ? serve : () => serve;
  const httpHits = new Map<string, number>();
  let alpnCount = 0;
  const http: HttpServer = createHttpServer((req, res) => {
    const path = req.url ?? '/';
    httpHits.set(path, (httpHits.get(path) ?? 0) + 1);
    if (!isAcmeChallengePath(path)) {
      res.writeHead(404).end();
      return;
    }
    current()
      .lookupHttpChallenge(path)
      .then(
        (answer) => {
          if (answer === null) res.writeHead(404).end();
          else res.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
        },
        () => res.writeHead(503).end(),
      );
  });
  const tls: TlsServer = createTlsServer(
    {
      ALPNCallback(this: TLSSocket, { servername, protocols }: { servername: string; protocols: string[] }) {
        return selectAcmeAlpn(current(), this, servername, protocols) ? ACME_TLS_ALPN_PROTOCOL : undefined;
      },
      SNICallback(
        this: TLSSocket,
        servername: string,
        cb: (err: Error | null, ctx?: import('node:tls').SecureContext) => void,
      ) {
        const pending = resolveAcmeAlpnContext(current(), this, servername);
        if (pending === undefined) {
          cb(new Error(`not an ACME handshake: ${servername}`));
          return;
        }
        pending.then(
          (ctx) =>
            ctx === null ? cb(new Error(`no TLS-ALPN-01 challenge for ${servername}`)) : cb(null, ctx),
          (err: Error) => cb(err),
        );
      },
    },
    (socket) => {
      alpnCount += 1;
      socket.end();
    },
  );
  tls.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  return {
    httpPort: (http.address() as AddressInfo).port,
    tlsPort: (tls.address() as AddressInfo).port,
    httpHits,
    alpnHandshakes: () => alpnCount,
    async close() {
      http.closeAllConnections();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => tls.close(r))]);
    },
  };
}

/** A Gateway annotated for `issuer` with one SIMPLE HTTPS server per credential. */
export function acmeGateway(
  name: string,
  issuer: string,
  servers: readonly { credentialName: string; hosts: readonly string[]; port?: number }[],
): Resource<'Gateway', GatewaySpec> {
  return {
    kind: 'Gateway',
    apiVersion: 'networking.istio.io/v1',
    namespace: 'istio-system',
    name,
    labels: {},
    annotations: { 'sluice.dev/acme-issuer': issuer },
    origin: { kind: 'file', file: `${name}.yaml`, doc: 1 },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [
        { port: { number: 8080, protocol: 'HTTP', name: 'http' }, hosts: ['*'] },
        ...servers.map((s, i) => ({
          port: { number: s.port ?? 8443, protocol: 'HTTPS' as const, name: `https-${i}` },
          hosts: s.hosts,
          tls: { mode: 'SIMPLE' as const, credentialName: s.credentialName },
        })),
      ],
    },
  };
}

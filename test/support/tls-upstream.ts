/**
 * HTTPS upstreams on loopback for TLS origination tests (DR-8): a node:https server presenting a
 * test certificate, optionally requiring a client certificate, recording the SNI it was asked
 * for and the client certificate it was shown. Plus a plain HTTP GET with any Host header.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { PemPair } from '../../src/tls/self-signed.ts';

export interface SeenTls {
  /** SNI the client sent ('' for none). */
  readonly servername: string;
  /** CN of the client certificate, '' when none was presented. */
  readonly clientCn: string;
  readonly host: string;
}

export interface TlsUpstream {
  readonly port: number;
  readonly seen: SeenTls[];
  close(): Promise<void>;
}

export async function startTlsUpstream(opts: {
  /** Chain (leaf first) and key the server presents. */
  readonly cert: PemPair;
  /** Require a client certificate signed by this CA. */
  readonly clientCaPem?: string;
}): Promise<TlsUpstream> {
  const seen: SeenTls[] = [];
  const server: Server = createServer(
    {
      cert: opts.cert.certPem,
      key: opts.cert.keyPem,
      ...(opts.clientCaPem !== undefined
        ? { ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: true }
        : {}),
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const name = socket.servername;
      seen.push({
        servername: typeof name === 'string' ? name : '',
        clientCn: String(socket.getPeerCertificate()?.subject?.CN ?? ''),
        host: req.headers.host ?? '',
      });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('tls ok');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** GET `path` from the gateway's plain HTTP port with `host` as the Host header. */
export function getWithHost(port: number, host: string, path = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A generic Secret document (`data` values in plain text, encoded here) in `namespace`. */
export function secretYaml(name: string, data: Record<string, string>, namespace = 'istio-system'): string {
  const lines = Object.entries(data)
    .map(([k, v]) => `  ${k}: ${b64(v)}`)
    .join('\n');
  return `apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: ${namespace} }
type: Opaque
data:
${lines}
`;
}

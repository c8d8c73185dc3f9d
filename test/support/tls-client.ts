/**
 * Real TLS clients for the TLS integration tests: one handshake, or one HTTPS request on a fresh
 * connection, against 127.0.0.1 with the test CA trusted. Failures resolve (never reject), so a
 * test can assert that a handshake was refused.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { connect, type ConnectionOptions } from 'node:tls';
import { testCa } from './certs.ts';

export interface HandshakeResult {
  readonly ok: boolean;
  /** SHA-256 fingerprint of the certificate the server presented (colon-separated), or ''. */
  readonly fingerprint256: string;
  readonly error: string | null;
}

/**
 * One handshake; `servername: ''` sends no SNI. With TLS 1.3 a client certificate is judged after
 * the client's side completes: use httpsGet to see a MUTUAL refusal.
 */
export function handshake(
  port: number,
  opts: ConnectionOptions & { servername: string },
): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const { servername, ...rest } = opts;
    const s = connect({
      host: '127.0.0.1',
      port,
      ca: testCa().certPem,
      ...(servername === '' ? { checkServerIdentity: () => undefined } : { servername }),
      ...rest,
    });
    s.once('secureConnect', () => {
      const fingerprint256 = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      // A graceful close: destroy() could reset the connection before the server has read the
      // client's Finished, and the server would count a failed handshake.
      s.once('close', () => resolve({ ok: true, fingerprint256, error: null }));
      s.end();
    });
    s.once('error', (err: Error) => resolve({ ok: false, fingerprint256: '', error: err.message }));
  });
}

export interface HttpsReply {
  readonly status: number | null;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly error: string | null;
}

/** GET `path` with SNI `host` (and Host `host`, unless `headers` say otherwise), on a fresh connection. */
export function httpsGet(
  port: number,
  host: string,
  opts: Partial<ConnectionOptions> & { path?: string; headers?: Record<string, string> } = {},
): Promise<HttpsReply> {
  return new Promise((resolve) => {
    const { path = '/', headers, ...tls } = opts;
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: host,
        path,
        headers: { host, ...headers },
        ca: testCa().certPem,
        agent: false,
        ...tls,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, error: null }),
        );
      },
    );
    req.on('error', (err: Error) => resolve({ status: null, headers: {}, body: '', error: err.message }));
    req.end();
  });
}

/**
 * One HTTP/1.1 request to a cluster beside the request path, outside its circuit breakers: the
 * authorization checks (Istio's envoyExtAuthzHttp, ingress-nginx's auth-url). The endpoint is
 * picked as for any request and counted as active while the check runs; one timeout covers
 * connecting, the answer's headers and its body, which is read up to a bound the caller sets per
 * status. What a failure means to the client is the caller's: this says only what failed.
 */
import type { Dispatcher } from 'undici';
import type { Cluster } from '../snapshot/types.ts';
import { hostSetOf, pickHost } from './endpoints.ts';
import { requestPool } from './pools.ts';

export interface SideRequest {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  /** Flat name/value list. */
  readonly headers: string[];
  readonly body: Buffer | null;
  readonly timeoutMs: number;
  /** Bytes of the answer's body kept for this status; 0 reads it to the end and keeps nothing. */
  readonly bodyLimit: (status: number) => number;
}

export type SideAnswer =
  | {
      readonly kind: 'answer';
      readonly status: number;
      readonly headers: Dispatcher.ResponseData['headers'];
      /** At most bodyLimit(status) bytes: a longer body is cut there and its stream dropped. */
      readonly body: Buffer;
    }
  /** The cluster has no endpoint to send to. */
  | { readonly kind: 'no_endpoint' }
  /** The endpoint takes no HTTP/1.1 (an HTTP/2 port) or its TLS credential is missing. */
  | { readonly kind: 'not_http1' }
  | { readonly kind: 'timeout' }
  /** Refused, reset or otherwise failed; `code` is the socket's or undici's error code when it has one. */
  | { readonly kind: 'error'; readonly code: string | undefined; readonly message: string };

const EMPTY = Buffer.alloc(0);

export async function requestOnCluster(cluster: Cluster, r: SideRequest): Promise<SideAnswer> {
  const host = pickHost(await hostSetOf(cluster), null);
  if (host === null) return { kind: 'no_endpoint' };
  const side = requestPool(host);
  if (side === null) return { kind: 'not_http1' };
  host.active += 1;
  try {
    // undici reads `servername` per request though its types leave it out (see pools.ts).
    const options: Dispatcher.RequestOptions<null> & { servername: string | undefined } = {
      method: r.method,
      path: r.path,
      headers: r.headers,
      servername: side.servername,
      body: r.body,
      headersTimeout: r.timeoutMs,
      bodyTimeout: r.timeoutMs,
      signal: AbortSignal.timeout(r.timeoutMs),
    };
    const res = await side.pool.request(options);
    const limit = r.bodyLimit(res.statusCode);
    if (limit <= 0) {
      await res.body.dump();
      return { kind: 'answer', status: res.statusCode, headers: res.headers, body: EMPTY };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      if (size + b.length > limit) {
        chunks.push(b.subarray(0, limit - size));
        res.body.destroy();
        break;
      }
      size += b.length;
      chunks.push(b);
    }
    return { kind: 'answer', status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  } catch (err) {
    const e = err as Error & { code?: string };
    return e.name === 'TimeoutError'
      ? { kind: 'timeout' }
      : { kind: 'error', code: e.code, message: e.message };
  } finally {
    host.active -= 1;
  }
}

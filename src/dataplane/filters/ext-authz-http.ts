/**
 * Istio `envoyExtAuthzHttp`: the check is the client's request re-sent to the authorizer through
 * the pooled upstream client (one undici Pool per endpoint, as for any destination): same method,
 * `pathPrefix` + path + query, Host kept, the headers Envoy always sends (Host, Method, Path,
 * Content-Length, Authorization) plus `includeRequestHeadersInCheck` and
 * `includeAdditionalHeadersInCheck`, and the body prefix when configured.
 */
import type { Dispatcher } from 'undici';
import type { ExtAuthzHttpProvider } from '../../snapshot/types.ts';
import { hostSetOf, pickHost } from '../../upstream/endpoints.ts';
import { requestPool } from '../../upstream/pools.ts';
import {
  HOP_BY_HOP,
  headerText,
  patternMatches,
  type CheckAnswer,
  type CheckInput,
} from './ext-authz-check.ts';

/** Largest authorizer response body passed on to a denied client. */
const MAX_DENY_BODY = 64 * 1024;

function checkHeaders(p: ExtAuthzHttpProvider, input: CheckInput): string[] {
  const req = input.req;
  const out: string[] = ['host', req.authority];
  const auth = headerText(req.headers, 'authorization');
  if (auth !== undefined) out.push('authorization', auth);
  if (p.includeRequestHeaders.length > 0) {
    for (const name of Object.keys(req.headers)) {
      if (name === 'host' || name === 'authorization' || name === 'content-length' || HOP_BY_HOP.has(name))
        continue;
      if (!patternMatches(p.includeRequestHeaders, name)) continue;
      const v = headerText(req.headers, name);
      if (v !== undefined) out.push(name, v);
    }
  }
  for (const [name, value] of p.includeAdditionalHeaders) out.push(name, value);
  out.push('content-length', String(input.body?.length ?? 0));
  return out;
}

/** Raw undici headers → lowercase name/value pairs. */
function pairs(raw: Record<string, string | string[] | undefined>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    const name = k.toLowerCase();
    if (Array.isArray(v)) for (const x of v) out.push([name, x]);
    else out.push([name, v]);
  }
  return out;
}

export async function checkOverHttp(p: ExtAuthzHttpProvider, input: CheckInput): Promise<CheckAnswer> {
  const set = await hostSetOf(p.cluster);
  const host = pickHost(set, null);
  if (host === null) return { kind: 'error', reason: `no endpoint for ${p.authority}` };
  const req = input.req;
  const path = p.pathPrefix + req.path + (req.query === '' ? '' : '?' + req.query);
  // The check is an HTTP/1.1 request: an HTTP/2 destination (a GRPC or HTTP2 port) or one whose
  // TLS credential is missing cannot take it.
  const side = requestPool(host);
  if (side === null)
    return {
      kind: 'error',
      reason: `${p.authority} is not reachable over HTTP/1.1 (HTTP/2 port or TLS not ready)`,
    };
  host.active += 1;
  try {
    // undici reads `servername` per request though its types leave it out (see pools.ts).
    const options: Dispatcher.RequestOptions<null> & { servername: string | undefined } = {
      method: req.method,
      path,
      headers: checkHeaders(p, input),
      servername: side.servername,
      body: input.body ?? null,
      headersTimeout: p.timeoutMs,
      bodyTimeout: p.timeoutMs,
      signal: AbortSignal.timeout(p.timeoutMs),
    };
    const res = await side.pool.request(options);
    const status = res.statusCode;
    const headers = pairs(res.headers as Record<string, string | string[] | undefined>);
    if (status === 200) {
      await res.body.dump();
      const set: [string, string][] = [];
      const remove: string[] = [];
      const responseHeaders: string[] = [];
      for (const [name, value] of headers) {
        // The authorizer names request headers to drop (Envoy's HTTP service convention).
        if (name === 'x-envoy-auth-headers-to-remove') {
          for (const h of value.split(',')) {
            const n = h.trim().toLowerCase();
            if (n !== '' && n !== 'host' && !n.startsWith(':')) remove.push(n);
          }
          continue;
        }
        if (HOP_BY_HOP.has(name)) continue;
        if (patternMatches(p.headersToUpstreamOnAllow, name)) set.push([name, value]);
        if (patternMatches(p.headersToDownstreamOnAllow, name)) responseHeaders.push(name, value);
      }
      return {
        kind: 'allow',
        edits: set.length > 0 || remove.length > 0 ? { remove, set } : null,
        responseHeaders: responseHeaders.length > 0 ? responseHeaders : null,
      };
    }
    // A 5xx is the authorizer failing, not a decision (Envoy's raw HTTP client).
    if (status >= 500) {
      await res.body.dump();
      return { kind: 'error', reason: `authorizer answered ${status}` };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      if (size + b.length > MAX_DENY_BODY) {
        chunks.push(b.subarray(0, MAX_DENY_BODY - size));
        res.body.destroy();
        break;
      }
      size += b.length;
      chunks.push(b);
    }
    const out: string[] = [];
    for (const [name, value] of headers) {
      if (HOP_BY_HOP.has(name)) continue;
      // Without headersToDownstreamOnDeny every authorizer header reaches the client (Envoy).
      if (p.headersToDownstreamOnDeny !== null && !patternMatches(p.headersToDownstreamOnDeny, name))
        continue;
      out.push(name, value);
    }
    return { kind: 'deny', status, headers: out, body: Buffer.concat(chunks) };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { kind: 'error', reason: e.name === 'TimeoutError' ? 'timeout' : (e.code ?? e.message) };
  } finally {
    host.active -= 1;
  }
}

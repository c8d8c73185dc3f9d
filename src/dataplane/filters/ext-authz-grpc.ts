/**
 * Istio `envoyExtAuthzGrpc`: `envoy.service.auth.v3.Authorization/Check` over gRPC (@grpc/grpc-js,
 * definitions in proto/ loaded with @grpc/proto-loader), so OPA-Envoy or any existing ext_authz
 * server answers unchanged. One client per authorizer endpoint, reused; the call has the
 * provider's timeout as its deadline. Loaded only when a gRPC provider is configured.
 */
import { status as grpcStatus, type Client, type ServiceError } from '@grpc/grpc-js';
import { grpcClients } from './grpc-clients.ts';
import type { ExtAuthzGrpcProvider } from '../../snapshot/types.ts';
import { hostSetOf, pickHost } from '../../upstream/endpoints.ts';
import { headerText, type CheckAnswer, type CheckInput } from './ext-authz-check.ts';

interface HeaderValueOption {
  readonly header?: { readonly key?: string; readonly value?: string; readonly rawValue?: Buffer };
  readonly append?: { readonly value?: boolean } | null;
  readonly appendAction?: number;
}

interface CheckResponse {
  readonly status?: { readonly code?: number; readonly message?: string } | null;
  readonly deniedResponse?: {
    readonly status?: { readonly code?: number } | null;
    readonly headers?: readonly HeaderValueOption[];
    readonly body?: string;
  } | null;
  readonly okResponse?: {
    readonly headers?: readonly HeaderValueOption[];
    readonly headersToRemove?: readonly string[];
    readonly responseHeadersToAdd?: readonly HeaderValueOption[];
  } | null;
}

type AuthorizationClient = Client & {
  Check(
    request: unknown,
    options: { deadline: Date },
    callback: (err: ServiceError | null, res?: CheckResponse) => void,
  ): unknown;
};

const authorizers = grpcClients<AuthorizationClient>(
  'envoy/service/auth/v3/external_auth.proto',
  'envoy.service.auth.v3.Authorization',
);

/** Closes clients of authorizers no live provider uses (called on apply). */
export function closeUnusedAuthorizerClients(liveAddresses: ReadonlySet<string>): void {
  authorizers.close(liveAddresses);
}

function peer(ip: string, port: number): unknown {
  return { address: { socketAddress: { address: ip, portValue: port } } };
}

function checkRequest(p: ExtAuthzGrpcProvider, input: CheckInput): unknown {
  const req = input.req;
  const headers: Record<string, string> = {};
  for (const name of Object.keys(req.headers)) {
    const v = headerText(req.headers, name);
    if (v !== undefined) headers[name] = v;
  }
  // Envoy sends the pseudo-headers too.
  headers[':authority'] = req.authority;
  headers[':method'] = req.method;
  headers[':path'] = req.query === '' ? req.path : `${req.path}?${req.query}`;
  headers[':scheme'] = req.scheme;
  const body = input.body;
  const http: Record<string, unknown> = {
    id: input.requestId,
    method: req.method,
    headers,
    path: headers[':path'],
    host: req.authority,
    scheme: req.scheme,
    size: body === null ? -1 : body.length,
    protocol: input.protocol,
  };
  if (body !== null) {
    if (p.body?.packAsBytes === true) http['rawBody'] = body;
    else http['body'] = body.toString('utf8');
  }
  const ms = input.startTimeMs;
  return {
    attributes: {
      source: {
        ...(peer(req.peerIp, 0) as object),
        ...(req.peerPrincipal !== null ? { principal: req.peerPrincipal } : {}),
      },
      destination: peer(req.localIp, req.port),
      request: { time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 }, http },
      ...(req.sni !== '' ? { tlsSession: { sni: req.sni } } : {}),
    },
  };
}

function headerPair(o: HeaderValueOption): [string, string] | null {
  const key = o.header?.key;
  if (key === undefined || key === '') return null;
  const raw = o.header?.rawValue;
  const value = raw !== undefined && raw.length > 0 ? raw.toString('latin1') : (o.header?.value ?? '');
  return [key.toLowerCase(), value];
}

function answerOf(res: CheckResponse): CheckAnswer {
  const code = res.status?.code ?? 0;
  if (code === grpcStatus.OK) {
    const ok = res.okResponse ?? null;
    const set: [string, string][] = [];
    for (const o of ok?.headers ?? []) {
      const h = headerPair(o);
      if (h !== null && h[0] !== 'host' && !h[0].startsWith(':')) set.push(h);
    }
    const remove = (ok?.headersToRemove ?? [])
      .map((h) => h.toLowerCase())
      .filter((h) => h !== 'host' && !h.startsWith(':'));
    const responseHeaders: string[] = [];
    for (const o of ok?.responseHeadersToAdd ?? []) {
      const h = headerPair(o);
      if (h !== null) responseHeaders.push(h[0], h[1]);
    }
    return {
      kind: 'allow',
      edits: set.length > 0 || remove.length > 0 ? { set, remove } : null,
      responseHeaders: responseHeaders.length > 0 ? responseHeaders : null,
    };
  }
  const denied = res.deniedResponse ?? null;
  const status = denied?.status?.code;
  const headers: string[] = [];
  for (const o of denied?.headers ?? []) {
    const h = headerPair(o);
    if (h !== null && h[0] !== 'content-length' && h[0] !== 'transfer-encoding') headers.push(h[0], h[1]);
  }
  // Envoy: a denial without an HTTP status is 403.
  return {
    kind: 'deny',
    status: status !== undefined && status >= 200 && status <= 599 ? status : 403,
    headers,
    body: Buffer.from(denied?.body ?? ''),
  };
}

export async function checkOverGrpc(p: ExtAuthzGrpcProvider, input: CheckInput): Promise<CheckAnswer> {
  const set = await hostSetOf(p.cluster);
  const host = pickHost(set, null);
  if (host === null) return { kind: 'error', reason: `no endpoint for ${p.authority}` };
  const client = authorizers.clientFor(host.hostPort);
  return new Promise<CheckAnswer>((resolve) => {
    client.Check(checkRequest(p, input), { deadline: new Date(Date.now() + p.timeoutMs) }, (err, res) => {
      if (err !== null) {
        // Any failed call is an authorizer error (UNAVAILABLE, DEADLINE_EXCEEDED …), never a denial.
        resolve({ kind: 'error', reason: `gRPC ${grpcStatus[err.code] ?? err.code}: ${err.details}` });
        return;
      }
      resolve(answerOf(res ?? {}));
    });
  });
}

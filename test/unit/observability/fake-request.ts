/** A FinishedRequest built from plain objects, for unit tests without sockets. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FinishedRequest, ObservedSettings } from '../../../src/observability/finished-request.ts';

export interface FakeOptions {
  readonly method?: string;
  readonly url?: string;
  readonly rawHeaders?: string[];
  readonly status?: number;
  readonly flags?: string;
  readonly details?: string;
  readonly cluster?: string | null;
  readonly settings?: Partial<ObservedSettings>;
  readonly responseHead?: string;
  readonly requestBytes?: number;
  readonly responseBytes?: number;
  readonly durationMs?: number;
  readonly forwarded?: string[] | null;
  readonly grpc?: FinishedRequest['grpc'];
  readonly transportFailureReason?: string | null;
}

export function fakeRequest(o: FakeOptions = {}): FinishedRequest {
  const rawHeaders = o.rawHeaders ?? ['Host', 'shop.example.com'];
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!;
  const url = o.url ?? '/';
  const q = url.indexOf('?');
  const req = {
    method: o.method ?? 'GET',
    url,
    httpVersion: '1.1',
    httpVersionMajor: 1,
    httpVersionMinor: 1,
    rawHeaders,
    headers,
    socket: {
      remoteAddress: '::ffff:10.0.0.7',
      remotePort: 50123,
      localAddress: '10.0.0.1',
      localPort: 8080,
    },
  } as unknown as IncomingMessage;
  const res = {
    _header: o.responseHead ?? 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n',
  } as unknown as ServerResponse;
  return {
    req,
    res,
    snapshot: { settings: { numTrustedProxies: 0, ...o.settings } },
    method: o.method ?? 'GET',
    scheme: 'http',
    authority: headers['host'] ?? '',
    host: (headers['host'] ?? '').split(':')[0]!,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    port: 8080,
    rawUrl: url,
    requestId: 'rid-1',
    startTimeMs: Date.UTC(2026, 10, 25, 1, 2, 3, 456),
    startMs: 1000,
    route: { name: 'default.shop.0.-1', source: { ruleName: 'r1' } },
    clusterName: o.cluster === undefined ? 'outbound|80||shop.default.svc.cluster.local' : o.cluster,
    upstreamHost: o.cluster === null ? null : { hostPort: '10.1.2.3:8080' },
    status: o.status ?? 200,
    responseFlags: o.flags ?? '-',
    responseDetails: o.details ?? '-',
    attempts: 1,
    upstreamServiceTimeMs: 7,
    fwd:
      o.forwarded === null
        ? null
        : { headers: o.forwarded ?? ['x-request-id', 'rid-1', 'x-forwarded-for', '10.0.0.7'] },
    trace: null,
    grpc: o.grpc ?? null,
    transportFailureReason: o.transportFailureReason ?? null,
    endMs: 1000 + (o.durationMs ?? 12.7),
    requestBytes: o.requestBytes ?? 0,
    responseBytes: o.responseBytes ?? 0,
  };
}

/** Per-request header work on the forward path: upstream request headers (DP-1) and response headers (DP-2). */
import type { IncomingMessage } from 'node:http';
import {
  buildResponseHeaders,
  buildUpstreamHeaders,
  type ForwardContext,
} from '../../src/upstream/forward.ts';
import { hostKeyOf } from '../../src/snapshot/route-request.ts';
import type { ForwardAction, Snapshot, WeightedCluster } from '../../src/snapshot/types.ts';
import { bench } from './timing.ts';

const req = {
  rawHeaders: [
    'Host',
    'svc-37.bench.test',
    'User-Agent',
    'wrk',
    'Accept',
    '*/*',
    'X-Tenant',
    'bench',
    'Connection',
    'keep-alive',
    'Accept-Encoding',
    'gzip, br',
    'Cookie',
    'session=abc123',
  ],
  socket: { remoteAddress: '127.0.0.1' },
} as unknown as IncomingMessage;
const snapshot = { settings: { numTrustedProxies: 0, serverHeader: 'istio-envoy' } } as unknown as Snapshot;
const ctx = {
  req,
  snapshot,
  scheme: 'http',
  authority: 'svc-37.bench.test',
  route: null,
} as unknown as ForwardContext;
const dest = { requestHeaders: null, responseHeaders: null } as unknown as WeightedCluster;
const action = { authority: null, destinations: [dest] } as unknown as ForwardAction;

bench('buildUpstreamHeaders (7 client headers)', () =>
  buildUpstreamHeaders(ctx, action, dest, null, {
    xff: null,
    xfp: null,
    connection: null,
    hasBody: false,
    grpc: false,
    grpcTimeout: null,
  }),
);

const raw = [
  'Server',
  'nginx',
  'Date',
  'Tue, 24 Nov 2026 00:00:00 GMT',
  'Content-Type',
  'text/plain',
  'Content-Length',
  '100',
  'Connection',
  'keep-alive',
].map((s) => Buffer.from(s));
bench('buildResponseHeaders (5 upstream headers)', () => buildResponseHeaders(raw, 'istio-envoy', 1));
bench('hostKeyOf Svc-37.bench.test:8080', () => hostKeyOf('Svc-37.bench.test:8080'));
bench('hostKeyOf svc-37.bench.test', () => hostKeyOf('svc-37.bench.test'));

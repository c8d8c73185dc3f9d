/**
 * Real external authorization servers on loopback: an HTTP one (the ingress-nginx auth-url /
 * oauth2-proxy style) and a gRPC one speaking envoy.service.auth.v3.Authorization/Check, each
 * answering with whatever the test's decide() returns and recording what it was asked.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  Server as GrpcServer,
  ServerCredentials,
  loadPackageDefinition,
  status,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export interface HttpCheck {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** Answer after this long (tests of the timeout). */
  readonly delayMs?: number;
}

export interface HttpAuthzServer {
  readonly port: number;
  readonly checks: HttpCheck[];
  decide: (c: HttpCheck) => HttpAnswer;
  close(): Promise<void>;
}

export async function startHttpAuthz(decide: (c: HttpCheck) => HttpAnswer): Promise<HttpAuthzServer> {
  const checks: HttpCheck[] = [];
  const state = { decide };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const c: HttpCheck = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      checks.push(c);
      const a = state.decide(c);
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(a.status, a.headers ?? {});
        res.end(a.body ?? '');
      };
      if (a.delayMs !== undefined) setTimeout(send, a.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    checks,
    get decide() {
      return state.decide;
    },
    set decide(d) {
      state.decide = d;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------- gRPC

/** The CheckRequest as proto-loader decodes it (camelCase fields). */
export interface GrpcCheck {
  readonly attributes: {
    readonly source?: { address?: { socketAddress?: { address?: string } }; principal?: string };
    readonly destination?: { address?: { socketAddress?: { address?: string; portValue?: number } } };
    readonly request?: {
      http?: {
        id?: string;
        method?: string;
        headers?: Record<string, string>;
        path?: string;
        host?: string;
        scheme?: string;
        body?: string;
        rawBody?: Buffer;
        protocol?: string;
      };
    };
    readonly tlsSession?: { sni?: string };
  };
}

/** A CheckResponse (camelCase) or a gRPC error status to fail the call with. */
export type GrpcAnswer =
  | { readonly response: Record<string, unknown>; readonly delayMs?: number }
  | { readonly error: number; readonly message?: string };

export interface GrpcAuthzServer {
  readonly port: number;
  readonly checks: GrpcCheck[];
  decide: (c: GrpcCheck) => GrpcAnswer;
  close(): Promise<void>;
}

const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));

export async function startGrpcAuthz(decide: (c: GrpcCheck) => GrpcAnswer): Promise<GrpcAuthzServer> {
  const def = loadSync('envoy/service/auth/v3/external_auth.proto', {
    includeDirs: [PROTO_ROOT],
    longs: Number,
    enums: Number,
    defaults: false,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: { service: ServiceDefinition } } } } };
  };
  const checks: GrpcCheck[] = [];
  const state = { decide };
  const server = new GrpcServer();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (
      call: { request: GrpcCheck },
      callback: (err: { code: number; details?: string } | null, res?: unknown) => void,
    ) => {
      checks.push(call.request);
      const a = state.decide(call.request);
      if ('error' in a) {
        callback({ code: a.error, details: a.message ?? 'refused by test' });
        return;
      }
      if (a.delayMs !== undefined) setTimeout(() => callback(null, a.response), a.delayMs).unref();
      else callback(null, a.response);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    checks,
    get decide() {
      return state.decide;
    },
    set decide(d) {
      state.decide = d;
    },
    close: () =>
      new Promise((resolve) => {
        server.tryShutdown(() => resolve());
        server.forceShutdown();
      }),
  };
}

export const GRPC_OK = status.OK;
export const GRPC_PERMISSION_DENIED = status.PERMISSION_DENIED;
export const GRPC_UNAVAILABLE = status.UNAVAILABLE;

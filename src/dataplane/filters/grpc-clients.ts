/**
 * gRPC clients of the services filters call (ext_authz, the rate limit service): the service's
 * definition loaded from proto/ with @grpc/proto-loader on first use, one client per endpoint
 * address, reused across requests and kept until closed.
 */
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, type Client } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** Where the .proto files live: `proto/` beside `src/` (and beside the compiled output). */
const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

type ClientCtor<C> = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C;

export interface GrpcClients<C extends Client> {
  clientFor(address: string): C;
  /** Closes the clients of addresses not in `live` (all of them without it). */
  close(live?: ReadonlySet<string>): void;
}

/** `protoFile` under proto/; `service` its full name, e.g. `envoy.service.auth.v3.Authorization`. */
export function grpcClients<C extends Client>(protoFile: string, service: string): GrpcClients<C> {
  let ctor: ClientCtor<C> | null = null;
  const clients = new Map<string, C>();
  const load = (): ClientCtor<C> => {
    const def = loadSync(protoFile, {
      includeDirs: [PROTO_ROOT],
      keepCase: false,
      longs: Number,
      enums: Number,
      defaults: false,
      oneofs: true,
    });
    let node: unknown = loadPackageDefinition(def);
    for (const part of service.split('.')) node = (node as Record<string, unknown>)[part];
    return node as ClientCtor<C>;
  };
  return {
    clientFor(address) {
      let c = clients.get(address);
      if (c === undefined) {
        ctor ??= load();
        c = new ctor(address, credentials.createInsecure());
        clients.set(address, c);
      }
      return c;
    },
    close(live) {
      for (const [address, c] of clients) {
        if (live?.has(address) === true) continue;
        c.close();
        clients.delete(address);
      }
    },
  };
}

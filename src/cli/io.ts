import type { Options } from './flags.ts';
import type { GatewayIdentity } from '../model/sluice.ts';

/** Where a command writes; tests pass collectors, main.ts passes the process streams. */
export interface CommandIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export const EXIT_OK = 0;
/** validate found errors; explain found no route. */
export const EXIT_FINDINGS = 1;
/** The command line is wrong. */
export const EXIT_USAGE = 2;
/** A process fault: a port could not be bound, a file could not be read at start. */
export const EXIT_FAULT = 3;

export function identityOf(opts: Options): GatewayIdentity {
  return {
    namespace: opts.namespace,
    labels: opts.labels,
    rootNamespace: opts.rootNamespace,
    ...(opts.egressProxyPort !== null ? { egressProxyPort: opts.egressProxyPort } : {}),
  };
}

/** What the Ingress translation takes from the command line (--ingress-*). */
export function ingressOptionsOf(opts: Options): {
  readonly ingressClass: string;
  readonly httpPort: number;
  readonly httpsPort: number;
} {
  return {
    ingressClass: opts.ingressClass,
    httpPort: opts.ingressHttpPort,
    httpsPort: opts.ingressHttpsPort,
  };
}

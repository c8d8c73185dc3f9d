/**
 * The connection to the API server: credentials from @kubernetes/client-node's KubeConfig
 * (--kubeconfig, else KUBECONFIG or ~/.kube/config, else the in-cluster service account), and
 * plain JSON requests made with them. client-node is imported here, on first use, so a gateway
 * that does not watch Kubernetes never loads it. Lists and discovery are read as raw JSON (the
 * watch stream is raw JSON too), not through client-node's typed models, so one object looks the
 * same whether it came from a list or an event.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import path from 'node:path';
import { SluiceError } from '../../errors/sluice-error.ts';
import type { KubeConfig, Watch } from '@kubernetes/client-node';

export type ClientNode = typeof import('@kubernetes/client-node');

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface KubeList {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items: KubeObject[];
}

/** A failed request, with the HTTP status the server gave (0: no answer). */
export class KubeRequestError extends Error {
  readonly statusCode: number;
  constructor(message: string, statusCode: number) {
    super(message);
    this.name = 'KubeRequestError';
    this.statusCode = statusCode;
  }
}

export interface KubeClient {
  readonly lib: ClientNode;
  readonly config: KubeConfig;
  readonly watch: Watch;
  /** The API server's address, for messages. */
  readonly server: string;
  request<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T>;
}

let loading: Promise<ClientNode> | null = null;

/** client-node, loaded once on first use. */
export function loadClientNode(): Promise<ClientNode> {
  loading ??= import('@kubernetes/client-node');
  return loading;
}

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Credentials as kubectl finds them: `kubeconfig` when given, else KUBECONFIG / ~/.kube/config,
 * else the pod's service account.
 */
export async function createKubeClient(kubeconfig: string | null): Promise<KubeClient> {
  const lib = await loadClientNode();
  const config = new lib.KubeConfig();
  const fromEnv = process.env.KUBECONFIG;
  const home = path.join(homedir(), '.kube', 'config');
  const inCluster = process.env.KUBERNETES_SERVICE_HOST !== undefined;
  // client-node falls back to http://localhost:8080 when it finds nothing: say so instead.
  if (kubeconfig === null && !fromEnv && !existsSync(home) && !inCluster)
    throw new SluiceError(
      'SLUICE_KUBE_CONFIG',
      '--kubernetes: no credentials found (no --kubeconfig, KUBECONFIG or ~/.kube/config, and not in a pod)',
    );
  try {
    if (kubeconfig !== null) config.loadFromFile(kubeconfig);
    else config.loadFromDefault();
  } catch (err) {
    throw new SluiceError(
      'SLUICE_KUBE_CONFIG',
      `--kubernetes: cannot load ${kubeconfig ?? 'the kubeconfig'}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const cluster = config.getCurrentCluster();
  if (cluster === null)
    throw new SluiceError('SLUICE_KUBE_CONFIG', '--kubernetes: the kubeconfig names no current cluster');
  const server = cluster.server.replace(/\/+$/, '');
  const request = async <T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> => {
    const url = new URL(server + path);
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await config.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload !== undefined)
      opts.headers = { ...opts.headers, 'content-type': contentType, 'content-length': payload.length };
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(url, { ...opts, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            let why = text.slice(0, 200);
            try {
              why = String((JSON.parse(text) as { message?: unknown }).message ?? why);
            } catch {
              // not a Status object
            }
            reject(new KubeRequestError(`${method} ${url.pathname}: ${status} ${why}`, status));
            return;
          }
          try {
            resolve(JSON.parse(text) as T);
          } catch {
            reject(new KubeRequestError(`${method} ${url.pathname}: the answer is not JSON`, status));
          }
        });
      });
      req.on('timeout', () => req.destroy(new KubeRequestError(`${method} ${url.pathname}: timed out`, 0)));
      req.on('error', (err) =>
        reject(
          err instanceof KubeRequestError
            ? err
            : new KubeRequestError(`${method} ${url.pathname}: ${err.message}`, 0),
        ),
      );
      req.end(payload);
    });
  };
  return { lib, config, watch: new lib.Watch(config), server, request };
}

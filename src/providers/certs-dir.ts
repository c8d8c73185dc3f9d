/**
 * Certificates from disk as Secret resources, so compile stays pure (DESIGN §2):
 * - `--certs-dir/<name>/{tls.crt,tls.key,ca.crt,ca.crl}` → Secret `<gateway namespace>/<name>` (GW-15:
 *   used when no config document defines that Secret; documents win);
 * - Gateway `serverCertificate`/`privateKey`/`caCertificates`/`caCrl` paths (GW-16) → Secrets in
 *   FILE_SECRET_NAMESPACE named by the path.
 * `createConfigSources` joins the config file provider with both and watches the certificate
 * directory and the named files, so a rotated certificate is a new ResourceSet within ~100 ms
 * and hot rotation goes through the ordinary reload path (a broken one is refused there).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from '../errors/diagnostic.ts';
import { FILE_SECRET_KEY, FILE_SECRET_NAMESPACE, type SecretSpec } from '../model/kube.ts';
import type { GatewaySpec } from '../model/networking.ts';
import { privateBytes, type PrivateBytes } from '../model/private-bytes.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import { createFileProvider } from './file.ts';
import type { Provider, ProviderUpdate } from './provider.ts';

type SecretResource = Resource<'Secret', SecretSpec>;

const CERT_FILES = ['tls.crt', 'tls.key', 'ca.crt', 'ca.crl'] as const;

function b64(buf: Buffer): PrivateBytes {
  return privateBytes(buf.toString('base64'));
}

/** Reads `<dir>/<name>/` credentials. A missing directory is no credentials, not an error. */
export async function readCertsDir(dir: string, namespace: string): Promise<SecretResource[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: SecretResource[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.') || !(e.isDirectory() || e.isSymbolicLink())) continue;
    const data: Record<string, PrivateBytes> = {};
    for (const f of CERT_FILES) {
      try {
        data[f] = b64(await readFile(path.join(dir, e.name, f)));
      } catch {
        // absent file: the Secret simply lacks that key (analysis says what is missing)
      }
    }
    if (Object.keys(data).length === 0) continue;
    out.push({
      kind: 'Secret',
      apiVersion: 'v1',
      namespace,
      name: e.name,
      labels: {},
      annotations: { 'sluice.dev/source': 'certs-dir' },
      origin: { kind: 'file', file: path.join(dir, e.name, 'tls.crt'), doc: 1 },
      spec: { type: 'kubernetes.io/tls', data },
    });
  }
  return out;
}

/** Every certificate file path the selected-or-not Gateways name (GW-16). */
export function certificatePathsOf(set: ResourceSet): string[] {
  const paths = new Set<string>();
  for (const r of set.resources) {
    if (r.kind !== 'Gateway') continue;
    for (const server of (r.spec as GatewaySpec).servers) {
      const tls = server.tls;
      if (!tls) continue;
      for (const p of [tls.serverCertificate, tls.privateKey, tls.caCertificates, tls.caCrl])
        if (p) paths.add(p);
      for (const c of tls.tlsCertificates ?? [])
        for (const p of [c.serverCertificate, c.privateKey, c.caCertificates]) if (p) paths.add(p);
    }
  }
  return [...paths].sort();
}

/** Reads each path into a FILE_SECRET_NAMESPACE Secret; unreadable ones are left out (compile reports them). */
export async function readCertificateFiles(paths: readonly string[]): Promise<SecretResource[]> {
  const out: SecretResource[] = [];
  for (const p of paths) {
    let buf: Buffer;
    try {
      buf = await readFile(p);
    } catch {
      continue;
    }
    out.push({
      kind: 'Secret',
      apiVersion: 'v1',
      namespace: FILE_SECRET_NAMESPACE,
      name: p,
      labels: {},
      annotations: { 'sluice.dev/source': 'file' },
      origin: { kind: 'file', file: p, doc: 1 },
      spec: { data: { [FILE_SECRET_KEY]: b64(buf) } },
    });
  }
  return out;
}

/** Config documents + certificates: documents' Secrets win over certs-dir ones of the same name. */
export function mergeCertificates(
  config: ResourceSet,
  certsDir: readonly SecretResource[],
  files: readonly SecretResource[],
): ResourceSet {
  const defined = new Set<string>();
  for (const r of config.resources) if (r.kind === 'Secret') defined.add(`${r.namespace}/${r.name}`);
  const extra = certsDir.filter((s) => !defined.has(`${s.namespace}/${s.name}`));
  return { resources: [...config.resources, ...extra, ...files] };
}

/**
 * One update with its certificates added: what `createConfigSources` emits, for callers that
 * read config themselves (SIGHUP's re-read in cli/serve.ts).
 */
export async function addCertificates(
  update: ProviderUpdate,
  opts: { certsDir: string; gatewayNamespace: string },
): Promise<ProviderUpdate> {
  const certs = await readCertsDir(opts.certsDir, opts.gatewayNamespace);
  const named = await readCertificateFiles(certificatePathsOf(update.resources));
  return { resources: mergeCertificates(update.resources, certs, named), diagnostics: update.diagnostics };
}

export interface ConfigSourcesOptions {
  /** --config paths. */
  readonly paths: readonly string[];
  /** --config-namespace. */
  readonly defaultNamespace: string;
  /** --certs-dir. */
  readonly certsDir: string;
  /** --namespace: the gateway's own namespace, where credentialName Secrets live (GW-15). */
  readonly gatewayNamespace: string;
}

/** Coalesce bursts (a cert and key written one after the other). */
const COALESCE_MS = 50;

/**
 * The config file provider joined with the certificate sources. Emits one full set whenever
 * either changes (config files, anything under --certs-dir, or a named certificate file).
 */
export function createConfigSources(opts: ConfigSourcesOptions): Provider {
  const files = createFileProvider({ paths: opts.paths, defaultNamespace: opts.defaultNamespace });
  let last: ProviderUpdate | null = null;
  let onChange: ((u: ProviderUpdate) => void) | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  const watchers = new Map<string, FSWatcher>();
  let lastKey = '';

  const addWatcher = (target: string, recursive: boolean): void => {
    if (stopped || watchers.has(target)) return;
    try {
      const w = watch(target, { recursive, persistent: false }, () => schedule());
      w.on('error', () => {
        w.close();
        watchers.delete(target);
        schedule();
      });
      watchers.set(target, w);
    } catch {
      // not there yet: the parent watch sees it appear
    }
  };

  const emit = async (): Promise<void> => {
    if (stopped || last === null) return;
    const certs = await readCertsDir(opts.certsDir, opts.gatewayNamespace);
    const paths = certificatePathsOf(last.resources);
    const named = await readCertificateFiles(paths);
    const abs = path.resolve(opts.certsDir);
    addWatcher(abs, true);
    addWatcher(path.dirname(abs), false);
    for (const p of paths) addWatcher(path.dirname(path.resolve(p)), false);
    const merged = mergeCertificates(last.resources, certs, named);
    const key = JSON.stringify([
      merged.resources.length,
      certs.map((c) => c.spec.data),
      named.map((n) => n.spec.data),
      last,
    ]);
    if (key === lastKey || stopped) return;
    lastKey = key;
    const diagnostics: Diagnostic[] = [...last.diagnostics];
    onChange?.({ resources: merged, diagnostics });
  };
  const run = (): Promise<void> => (chain = chain.then(emit).catch(() => undefined));
  const schedule = (): void => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void run();
    }, COALESCE_MS);
  };

  return {
    async start(cb) {
      onChange = cb;
      stopped = false;
      await files.start((u) => {
        last = u;
        void run();
      });
      await run();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await files.stop();
      for (const w of watchers.values()) w.close();
      watchers.clear();
      await chain;
      onChange = undefined;
    },
  };
}

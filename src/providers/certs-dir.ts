/**
 * Certificates from disk as Secret resources, so compile stays pure (DESIGN §2):
 * - `--certs-dir/<name>/{tls.crt,tls.key,ca.crt,ca.crl}` → Secret `<gateway namespace>/<name>` (GW-15:
 *   used when no config document defines that Secret; documents win);
 * - Gateway `serverCertificate`/`privateKey`/`caCertificates`/`caCrl` paths (GW-16) and
 *   DestinationRule `tls` `clientCertificate`/`privateKey`/`caCertificates`/`caCrl` paths (DR-8)
 *   → Secrets in FILE_SECRET_NAMESPACE named by the path.
 * `createConfigSources` joins the config files with both and watches the certificate directory
 * and the named files, so a rotated certificate is a new ResourceSet within ~100 ms and hot
 * rotation goes through the ordinary reload path (a broken one is refused there).
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { FILE_SECRET_KEY, FILE_SECRET_NAMESPACE, type SecretSpec } from '../model/kube.ts';
import type {
  ClientTlsSettings,
  DestinationRuleSpec,
  GatewaySpec,
  TrafficPolicy,
} from '../model/networking.ts';
import { privateBytes, type PrivateBytes } from '../model/private-bytes.ts';
import type { Resource, ResourceSet } from '../model/resource.ts';
import type { LoadCache } from '../config/index.ts';
import { DEFAULT_INGRESS_OPTIONS, withIngresses, type IngressOptions } from '../config/ingress/index.ts';
import { readConfigUpdate } from './file.ts';
import type { Provider, ProviderUpdate } from './provider.ts';
import { createWatchedProvider, isVolumeSwap, type PathWatch } from './watch.ts';

type SecretResource = Resource<'Secret', SecretSpec>;

const CERT_FILES: readonly string[] = ['tls.crt', 'tls.key', 'ca.crt', 'ca.crl'];

/** Credential directories (not hidden files) and Secret-volume `..data` swaps. */
const credentialEntry = (name: string): boolean => isVolumeSwap(name) || !name.startsWith('.');
/** The certificate files of a credential directory and Secret-volume `..data` swaps. */
const certificateEntry = (name: string): boolean => isVolumeSwap(name) || CERT_FILES.includes(name);

function b64(buf: Buffer): PrivateBytes {
  return privateBytes(buf.toString('base64'));
}

/** Reads `<dir>/<name>/` credentials. A missing directory is no credentials, not an error. */
export async function readCertsDir(
  dir: string,
  namespace: string,
  watch: PathWatch | null = null,
): Promise<SecretResource[]> {
  let entries;
  watch?.dir(dir, credentialEntry);
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    watch?.entry(dir); // it may be created later (an ACME order writes it)
    return [];
  }
  const out: SecretResource[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.') || !(e.isDirectory() || e.isSymbolicLink())) continue;
    watch?.dir(path.join(dir, e.name), certificateEntry);
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

/** DR-3's places for a `tls` block in a DestinationRule. */
function clientTlsBlocks(spec: DestinationRuleSpec): ClientTlsSettings[] {
  const out: ClientTlsSettings[] = [];
  const fromPolicy = (tp: TrafficPolicy | undefined): void => {
    if (tp?.tls) out.push(tp.tls);
    for (const pl of tp?.portLevelSettings ?? []) if (pl.tls) out.push(pl.tls);
  };
  fromPolicy(spec.trafficPolicy);
  for (const s of spec.subsets ?? []) fromPolicy(s.trafficPolicy);
  return out;
}

/**
 * Every certificate file path the Gateways name (GW-16) and the DestinationRules name for TLS
 * origination (DR-8), whether or not they apply to this gateway.
 */
export function certificatePathsOf(set: ResourceSet): string[] {
  const paths = new Set<string>();
  for (const r of set.resources) {
    if (r.kind === 'DestinationRule') {
      for (const tls of clientTlsBlocks(r.spec as DestinationRuleSpec))
        for (const p of [tls.clientCertificate, tls.privateKey, tls.caCertificates, tls.caCrl])
          if (p) paths.add(p);
      continue;
    }
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
export async function readCertificateFiles(
  paths: readonly string[],
  watch: PathWatch | null = null,
): Promise<SecretResource[]> {
  const out: SecretResource[] = [];
  for (const p of paths) {
    let buf: Buffer;
    try {
      // A Secret volume's files are symlinks into `..data`, swapped as a whole.
      if ((await lstat(p)).isSymbolicLink()) watch?.entry(p);
      watch?.file(p);
      buf = await readFile(p);
    } catch {
      watch?.entry(p);
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

export interface ConfigSourcesOptions {
  /** --config paths. */
  readonly paths: readonly string[];
  /** --config-namespace. */
  readonly defaultNamespace: string;
  /** --certs-dir. */
  readonly certsDir: string;
  /** --namespace: the gateway's own namespace, where credentialName Secrets live (GW-15). */
  readonly gatewayNamespace: string;
  /** Kept from read to read by a provider that reads again on every change. */
  readonly cache?: LoadCache;
  /** --ingress-class, --ingress-http-port, --ingress-https-port (ingress-nginx's defaults when absent). */
  readonly ingress?: Omit<IngressOptions, 'gatewayNamespace'>;
  /**
   * False when another provider's objects join these files: the Ingresses are then translated
   * once, over the combined set (withIngressTranslation), not here.
   */
  readonly translateIngresses?: boolean;
}

/**
 * The config files with their certificates added: what `serve` reads on each change and the
 * offline commands read once, so both see the same set.
 */
export async function readConfigSources(
  opts: ConfigSourcesOptions,
  watch: PathWatch | null = null,
): Promise<ProviderUpdate> {
  const update = await readConfigUpdate(opts, watch);
  const certs = await readCertsDir(opts.certsDir, opts.gatewayNamespace, watch);
  const named = await readCertificateFiles(certificatePathsOf(update.resources), watch);
  const merged = { ...update, resources: mergeCertificates(update.resources, certs, named) };
  return opts.translateIngresses === false ? merged : translated(merged, ingressOptionsOf(opts));
}

function ingressOptionsOf(opts: ConfigSourcesOptions): IngressOptions {
  return { ...(opts.ingress ?? DEFAULT_INGRESS_OPTIONS), gatewayNamespace: opts.gatewayNamespace };
}

/** The update with the Istio resources its Ingresses translate to, and what the translation said. */
function translated(update: ProviderUpdate, opts: IngressOptions): ProviderUpdate {
  const ingress = withIngresses(update.resources, opts);
  return {
    ...update,
    resources: ingress.resources,
    diagnostics:
      ingress.diagnostics.length === 0 ? update.diagnostics : [...update.diagnostics, ...ingress.diagnostics],
  };
}

/**
 * A provider whose whole set (files and API objects together) has its Ingresses translated, so an
 * Ingress from the Kubernetes API is served as one from a file is.
 */
export function withIngressTranslation(provider: Provider, opts: ConfigSourcesOptions): Provider {
  const ingress = ingressOptionsOf(opts);
  return {
    ...provider,
    read: async () => {
      const update = await provider.read();
      // A half-synced read is never compiled: nothing to translate.
      return update.incomplete === undefined ? translated(update, ingress) : update;
    },
  };
}

/**
 * The config files joined with the certificate sources, as one provider: a change to either
 * (config files, anything under --certs-dir, or a named certificate file) says "changed".
 */
export function createConfigSources(opts: ConfigSourcesOptions): Provider {
  return createWatchedProvider((watch) => readConfigSources(opts, watch));
}

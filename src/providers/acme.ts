/**
 * ACME issuance and renewal for Gateways annotated `sluice.dev/acme-issuer: NAME`.
 *
 * For each terminating server with `tls.credentialName`, the non-wildcard hosts of the servers
 * sharing that credential get one certificate (one order, one SAN list). It is ordered when the
 * credential has no certificate, does not cover those hosts, or is past two thirds of its lifetime
 * (what Let's Encrypt and cert-manager recommend). Wildcards need DNS-01, which sluice does not
 * do: they are skipped with a warning.
 *
 * The result is written where the credential lives: in file mode `--certs-dir/<credentialName>/`
 * `tls.key` then `tls.crt`, each through a temp file in `--certs-dir/.acme/tmp/` and a rename, so
 * the certs-dir watcher sees whole files and rotates hitlessly; every replica picks the new files
 * up the same way. Only the replica holding the lock (acme-lock.ts: Redis when configured, else a
 * lock file in --certs-dir) orders. Failures back off exponentially with jitter (1 min → 1 h by
 * default) per credential and never touch the files, so the existing certificate keeps serving.
 */
import { X509Certificate } from 'node:crypto';
import { Agent } from 'node:https';
import { createRequire } from 'node:module';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type * as AcmeClient from 'acme-client';
import type { Resource, ResourceSet } from '../model/resource.ts';
import type { GatewaySpec } from '../model/networking.ts';
import type { AcmeChallengeType, AcmeIssuerSpec, MeshConfigSpec } from '../model/sluice.ts';
import type { AcmeTokens } from '../tls/acme-tokens.ts';
import type { Logger } from '../observability/logger.ts';
import type { AcmeLock } from './acme-lock.ts';

export { ACME_ISSUER_ANNOTATION } from '../model/sluice.ts';
import { ACME_ISSUER_ANNOTATION } from '../model/sluice.ts';

export type AcmeOrderResult = 'issued' | 'failed' | 'locked';

/** Counters the metrics module turns into prom-client series (e.g. sluice_acme_orders_total{issuer,result}). */
export interface AcmeMetrics {
  orderResult(issuer: string, credential: string, result: AcmeOrderResult): void;
}

/** What reconcile() acts on: one credential, its issuer and the hosts its certificate must name. */
export interface AcmeTarget {
  readonly issuer: string;
  readonly credential: string;
  readonly hosts: readonly string[];
}

export interface AcmeTargetState extends AcmeTarget {
  readonly failures: number;
  /** Epoch ms before which no order is tried (back-off or lock held elsewhere); 0 when none. */
  readonly nextAttemptAtMs: number;
  readonly lastError?: string;
  /** Epoch ms at which the current certificate reaches 2/3 of its lifetime, when known. */
  readonly renewAtMs?: number;
}

export interface AcmeManager {
  /**
   * Called after each accepted config with the Gateways this process serves (selector already
   * matched, or pass `labels` to createAcmeManager) and optionally the PEM of each credential's
   * current certificate, used when --certs-dir has none for it. Resolves when the check pass it
   * started is over, orders included; never rejects, so callers need not await it.
   */
  reconcile(
    gateways: readonly Resource<'Gateway', GatewaySpec>[],
    currentCerts?: ReadonlyMap<string, string>,
  ): Promise<void>;
  /** Per-credential state, for the admin port and tests. */
  targets(): AcmeTargetState[];
  /**
   * A new MeshConfig's `acme.issuers`: takes effect from the next reconcile(); an issuer whose
   * settings changed gets a new ACME client (account, CA bundle) on its next order.
   */
  setIssuers(issuers: readonly AcmeIssuerSpec[]): void;
  stop(): Promise<void>;
}

export interface AcmeManagerOptions {
  readonly issuers: readonly AcmeIssuerSpec[];
  readonly certsDir: string;
  readonly logger: Logger;
  readonly lock: AcmeLock;
  readonly tokens: AcmeTokens;
  /** Clock for renewal decisions (epoch ms); tests move it forward. */
  readonly now?: () => number;
  readonly metrics?: AcmeMetrics;
  /** Workload labels: when given, Gateways whose selector does not match are ignored. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** Re-check after this long when another replica holds the lock; default 30 s. */
  readonly lockRetryMs?: number;
  readonly lockTtlMs?: number;
  /** Longest sleep of the renewal timer; files are re-read at least this often. Default 1 h. */
  readonly recheckMaxMs?: number;
  /** First interval when polling an order/authorization for a final status; default 2 s. */
  readonly pollMinMs?: number;
  /** Per HTTP request to the ACME server; default 30 s. */
  readonly requestTimeoutMs?: number;
  /** acme-client's retries of one request on 5xx/429/network errors; default 3. */
  readonly requestRetries?: number;
  /** Back-off jitter source in [0, 1); tests pin it. */
  readonly random?: () => number;
}

interface TargetState {
  target: AcmeTarget;
  failures: number;
  nextAttemptAtMs: number;
  lastError?: string;
  renewAtMs?: number;
}

const DEFAULTS = {
  backoffMinMs: 60_000,
  backoffMaxMs: 3_600_000,
  lockRetryMs: 30_000,
  lockTtlMs: 120_000,
  recheckMaxMs: 3_600_000,
  pollMinMs: 2_000,
  requestTimeoutMs: 30_000,
  requestRetries: 3,
};

const TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL']);

/** Exponential back-off with "equal jitter": half fixed, half random, so replicas spread out. */
export function backoffDelayMs(
  failures: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/** `[ns/]host` → host; '*' and '*.x' are wildcards. */
function bareHost(h: string): string {
  const slash = h.indexOf('/');
  return (slash === -1 ? h : h.slice(slash + 1)).toLowerCase();
}

function selectorMatches(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * The credentials to manage, from annotated Gateways. Problems (unknown issuer, wildcard host,
 * credential claimed by two issuers) come back as warnings; the rest still proceeds.
 */
export function acmeTargets(
  gateways: readonly Resource<'Gateway', GatewaySpec>[],
  issuers: ReadonlySet<string>,
  labels?: Readonly<Record<string, string>>,
): { targets: AcmeTarget[]; warnings: string[] } {
  const byCredential = new Map<string, { issuer: string; hosts: Set<string> }>();
  const warnings: string[] = [];
  for (const gw of gateways) {
    const issuer = gw.annotations[ACME_ISSUER_ANNOTATION];
    if (issuer === undefined) continue;
    const who = `Gateway ${gw.namespace}/${gw.name}`;
    if (labels !== undefined && !selectorMatches(gw.spec.selector, labels)) continue;
    if (!issuers.has(issuer)) {
      warnings.push(
        `${who}: ACME issuer ${JSON.stringify(issuer)} is not declared in MeshConfig acme.issuers; no certificates are ordered for it`,
      );
      continue;
    }
    for (const server of gw.spec.servers) {
      const tls = server.tls;
      if (tls?.credentialName === undefined || !TERMINATING.has(tls.mode ?? 'PASSTHROUGH')) continue;
      const credential = tls.credentialName;
      let entry = byCredential.get(credential);
      if (entry === undefined) {
        entry = { issuer, hosts: new Set() };
        byCredential.set(credential, entry);
      } else if (entry.issuer !== issuer) {
        warnings.push(
          `${who}: credential ${credential} is already issued by ${entry.issuer}; ${issuer} is ignored for it`,
        );
        continue;
      }
      for (const raw of server.hosts) {
        const host = bareHost(raw);
        if (host === '*' || host.startsWith('*.')) {
          warnings.push(
            `${who}: host ${host} of credential ${credential} is a wildcard; ACME needs DNS-01 for it, which sluice does not support, so it is left out`,
          );
          continue;
        }
        entry.hosts.add(host);
      }
    }
  }
  const targets: AcmeTarget[] = [];
  for (const [credential, { issuer, hosts }] of [...byCredential].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    if (hosts.size > 0) targets.push({ issuer, credential, hosts: [...hosts].sort() });
  }
  return { targets, warnings };
}

/**
 * What the manager needs from an accepted ResourceSet: the issuers of the first MeshConfig that
 * declares `acme` (MeshConfigs merge first-wins per field) and every Gateway (the manager skips
 * unannotated ones and, given `labels`, those selecting another workload).
 */
export function acmeInputsOf(set: ResourceSet): {
  issuers: readonly AcmeIssuerSpec[];
  gateways: Resource<'Gateway', GatewaySpec>[];
} {
  let issuers: readonly AcmeIssuerSpec[] | undefined;
  const gateways: Resource<'Gateway', GatewaySpec>[] = [];
  for (const r of set.resources) {
    if (r.kind === 'Gateway') gateways.push(r as Resource<'Gateway', GatewaySpec>);
    else if (r.kind === 'MeshConfig' && issuers === undefined) {
      const acme = (r.spec as MeshConfigSpec).acme;
      if (acme !== undefined) issuers = acme.issuers ?? [];
    }
  }
  return { issuers: issuers ?? [], gateways };
}

export type RenewalDecision =
  | { readonly due: true; readonly reason: 'missing' | 'unreadable' | 'hosts' | 'renew' }
  | { readonly due: false; readonly renewAtMs: number };

/** Order when there is no readable certificate, it does not name every host, or it is past 2/3 of its lifetime. */
export function renewalDecision(
  certPem: string | undefined,
  hosts: readonly string[],
  nowMs: number,
): RenewalDecision {
  if (certPem === undefined) return { due: true, reason: 'missing' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return { due: true, reason: 'unreadable' };
  }
  if (hosts.some((h) => cert.checkHost(h) === undefined)) return { due: true, reason: 'hosts' };
  const fromMs = cert.validFromDate.getTime();
  const toMs = cert.validToDate.getTime();
  const renewAtMs = fromMs + Math.floor(((toMs - fromMs) * 2) / 3);
  return nowMs >= renewAtMs ? { due: true, reason: 'renew' } : { due: false, renewAtMs };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Write via a temp file in the same file system and rename, so readers never see half a file. */
async function writeAtomically(certsDir: string, path: string, data: string, mode: number): Promise<void> {
  const tmpDir = join(certsDir, '.acme', 'tmp');
  await mkdir(tmpDir, { recursive: true });
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(tmpDir, `${randomBytes(8).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * acme-client talks through one process-wide axios instance. Per-issuer CA bundles and the
 * request timeout are applied by a request interceptor keyed by URL origin (ejected on stop);
 * its retry count (for 5xx and 429 answers) is a process-wide default, set by the last manager
 * created (there is one per process).
 */
interface AxiosLikeConfig {
  url?: string;
  method?: string;
  httpsAgent?: unknown;
  timeout?: number;
  adapter?: unknown;
}
type AxiosAdapter = (config: AxiosLikeConfig) => Promise<unknown>;

/**
 * acme-client's retry interceptor turns any error without a response (refused, reset, timeout)
 * into "Cannot read properties of undefined" once it stops retrying. Network errors are raised by
 * this adapter wrapper as plain errors without `config`, which that interceptor passes through
 * untouched, so logs say what happened; sluice's own back-off does the retrying. The adapter comes
 * from the axios copy acme-client itself loads.
 */
function loadHttpAdapter(): AxiosAdapter {
  const fromAcme = createRequire(createRequire(import.meta.url).resolve('acme-client'));
  const axios = fromAcme('axios') as { getAdapter(name: string): AxiosAdapter };
  const http = axios.getAdapter('http');
  return async (config) => {
    try {
      return await http(config);
    } catch (err) {
      if ((err as { response?: unknown }).response !== undefined) throw err;
      throw new Error(`${errorText(err)} (${(config.method ?? 'get').toUpperCase()} ${config.url ?? '?'})`, {
        cause: err,
      });
    }
  };
}
/**
 * acme-client (with axios under it) adds about 40 MiB to the process: it is loaded when the first
 * manager is created, so gateways that declare no issuer never pay for it.
 */
function loadAcmeClient(): typeof AcmeClient {
  return createRequire(import.meta.url)('acme-client') as typeof AcmeClient;
}

function installHttpOptions(
  acme: typeof AcmeClient,
  agents: ReadonlyMap<string, Agent>,
  timeoutMs: number,
  retries: number,
): () => void {
  const axios = acme.axios as unknown as {
    defaults: { acmeSettings?: { retryMaxAttempts: number; retryDefaultDelay: number } };
    interceptors: {
      request: { use(fn: (c: AxiosLikeConfig) => AxiosLikeConfig): number; eject(id: number): void };
    };
  };
  if (axios.defaults.acmeSettings !== undefined) {
    axios.defaults.acmeSettings.retryMaxAttempts = retries;
    axios.defaults.acmeSettings.retryDefaultDelay = 2;
  }
  const adapter = loadHttpAdapter();
  const id = axios.interceptors.request.use((config) => {
    config.adapter = adapter;
    if (config.timeout === undefined || config.timeout === 0) config.timeout = timeoutMs;
    if (config.url !== undefined && agents.size > 0) {
      let origin: string | undefined;
      try {
        origin = new URL(config.url).origin;
      } catch {
        origin = undefined;
      }
      const agent = origin === undefined ? undefined : agents.get(origin);
      if (agent !== undefined) config.httpsAgent = agent;
    }
    return config;
  });
  return () => axios.interceptors.request.eject(id);
}

async function readCaBundle(caBundle: string): Promise<string> {
  return caBundle.includes('-----BEGIN') ? caBundle : readFile(caBundle, 'utf8');
}

export function createAcmeManager(opts: AcmeManagerOptions): AcmeManager {
  const acme = loadAcmeClient();
  const cfg = { ...DEFAULTS, ...stripUndefined(opts) };
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const log = opts.logger.child({ component: 'acme' });
  const issuers = new Map(opts.issuers.map((i) => [i.name, i]));
  let issuerNames = new Set(issuers.keys());
  const states = new Map<string, TargetState>();
  const clients = new Map<string, Promise<AcmeClient.Client>>();
  const agents = new Map<string, Agent>();
  const warned = new Set<string>();
  let currentCerts: ReadonlyMap<string, string> = new Map();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let rerun = false;
  let stopped = false;
  const uninstall = installHttpOptions(acme, agents, cfg.requestTimeoutMs, cfg.requestRetries);
  acme.setLogger((message) => log.trace({ acme: message }, 'acme-client'));

  function stateKey(t: AcmeTarget): string {
    return `${t.issuer}/${t.credential}`;
  }

  /**
   * The account key, made (ECDSA P-256) on first use when its file is absent, as cert-manager
   * does for its account Secret. It lives in --certs-dir unless a file is named, so every replica
   * and the next start use one account; O_EXCL so replicas starting together agree on one key.
   */
  async function accountKey(issuer: AcmeIssuerSpec): Promise<string> {
    const path =
      issuer.accountKeyFile ??
      (issuer.accountKeySecret !== undefined
        ? join(opts.certsDir, issuer.accountKeySecret, 'tls.key')
        : join(opts.certsDir, '.acme', `${issuer.name.replace(/[^A-Za-z0-9._-]/g, '_')}.account.key`));
    const existing = await readIfExists(path);
    if (existing !== undefined && existing.trim() !== '') return existing;
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    await mkdir(dirname(path), { recursive: true });
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(key);
      await fh.close();
      log.info({ issuer: issuer.name, path }, 'created ACME account key');
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFile(path, 'utf8');
      throw err;
    }
  }

  function clientFor(issuer: AcmeIssuerSpec): Promise<AcmeClient.Client> {
    let client = clients.get(issuer.name);
    if (client === undefined) {
      client = (async () => {
        if (issuer.caBundle !== undefined) {
          const ca = await readCaBundle(issuer.caBundle);
          agents.set(
            new URL(issuer.directoryUrl).origin,
            new Agent({ ca: [...rootCertificates, ca], keepAlive: true }),
          );
        }
        const c = new acme.Client({
          directoryUrl: issuer.directoryUrl,
          accountKey: await accountKey(issuer),
          ...(issuer.eab !== undefined
            ? { externalAccountBinding: { kid: issuer.eab.kid, hmacKey: issuer.eab.hmacKey } }
            : {}),
          backoffMin: cfg.pollMinMs,
          backoffMax: Math.max(cfg.pollMinMs, 10_000),
          backoffAttempts: 10,
        });
        const contact = [
          ...(issuer.contact ?? []),
          ...(issuer.email !== undefined ? [`mailto:${issuer.email}`] : []),
        ];
        // The operator chose this CA by configuring it; its terms are agreed on their behalf.
        await c.createAccount({ termsOfServiceAgreed: true, ...(contact.length > 0 ? { contact } : {}) });
        return c;
      })();
      clients.set(issuer.name, client);
      // A failed start (directory down, bad key) is retried on the next attempt, not cached.
      const started = client;
      started.catch(() => {
        if (clients.get(issuer.name) === started) clients.delete(issuer.name);
      });
    }
    return client;
  }

  async function order(
    issuer: AcmeIssuerSpec,
    target: AcmeTarget,
  ): Promise<{ certPem: string; keyPem: string }> {
    const client = await clientFor(issuer);
    const challenge: AcmeChallengeType = issuer.challenge ?? 'http-01';
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: target.hosts[0] as string, altNames: [...target.hosts] },
      issuer.keyType === 'RSA'
        ? await acme.crypto.createPrivateRsaKey(2048)
        : await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    const certPem = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      skipChallengeVerification: true,
      challengePriority: [challenge],
      // acme-client's types list only http-01 and dns-01; tls-alpn-01 arrives as the same shape.
      challengeCreateFn: async (authz, ch, keyAuthorization) => {
        const type: string = ch.type;
        if (type !== challenge) {
          throw new Error(
            `the CA offers no ${challenge} challenge for ${authz.identifier.value} (got ${type})`,
          );
        }
        if (type === 'http-01') await opts.tokens.setHttpToken(ch.token, keyAuthorization);
        else await opts.tokens.setAlpnChallenge(authz.identifier.value, keyAuthorization);
      },
      challengeRemoveFn: async (authz, ch) => {
        const type: string = ch.type;
        if (type === 'http-01') await opts.tokens.deleteHttpToken(ch.token);
        else if (type === 'tls-alpn-01') await opts.tokens.deleteAlpnChallenge(authz.identifier.value);
      },
    });
    return { certPem, keyPem: key.toString() };
  }

  /** File mode: the file is the truth (another replica may have renewed it); the caller's copy is the fallback. */
  async function currentCert(credential: string): Promise<string | undefined> {
    return (await readIfExists(join(opts.certsDir, credential, 'tls.crt'))) ?? currentCerts.get(credential);
  }

  async function check(state: TargetState): Promise<void> {
    const { target } = state;
    const issuer = issuers.get(target.issuer);
    if (issuer === undefined || now() < state.nextAttemptAtMs) return;
    const decision = renewalDecision(await currentCert(target.credential), target.hosts, now());
    if (!decision.due) {
      state.renewAtMs = decision.renewAtMs;
      return;
    }
    const lockName = `${target.issuer}:${target.credential}`;
    const handle = await opts.lock.tryAcquire(lockName, cfg.lockTtlMs);
    if (handle === null) {
      log.info(
        { issuer: target.issuer, credential: target.credential, lock: opts.lock.kind },
        'another replica is ordering this certificate; will pick it up from the certs dir',
      );
      opts.metrics?.orderResult(target.issuer, target.credential, 'locked');
      state.nextAttemptAtMs = now() + cfg.lockRetryMs;
      return;
    }
    try {
      // Another replica may have finished between our read and the lock: read again.
      const again = renewalDecision(await currentCert(target.credential), target.hosts, now());
      if (!again.due) {
        state.renewAtMs = again.renewAtMs;
        return;
      }
      log.info(
        {
          issuer: target.issuer,
          credential: target.credential,
          hosts: target.hosts,
          reason: again.reason,
          challenge: issuer.challenge ?? 'http-01',
        },
        'ordering certificate',
      );
      const { certPem, keyPem } = await order(issuer, target);
      const dir = join(opts.certsDir, target.credential);
      // Key first: a watcher that reacts to the certificate finds the matching key already there.
      await writeAtomically(opts.certsDir, join(dir, 'tls.key'), keyPem, 0o600);
      await writeAtomically(opts.certsDir, join(dir, 'tls.crt'), certPem, 0o644);
      const issued = renewalDecision(certPem, target.hosts, now());
      state.renewAtMs = issued.due ? undefined : issued.renewAtMs;
      state.failures = 0;
      state.nextAttemptAtMs = 0;
      delete state.lastError;
      opts.metrics?.orderResult(target.issuer, target.credential, 'issued');
      log.info(
        { issuer: target.issuer, credential: target.credential, hosts: target.hosts },
        'certificate issued and written',
      );
    } catch (err) {
      state.failures += 1;
      const delayMs = backoffDelayMs(state.failures, cfg.backoffMinMs, cfg.backoffMaxMs, random);
      state.nextAttemptAtMs = now() + delayMs;
      state.lastError = errorText(err);
      opts.metrics?.orderResult(target.issuer, target.credential, 'failed');
      log.error(
        {
          issuer: target.issuer,
          credential: target.credential,
          hosts: target.hosts,
          failures: state.failures,
          retryInMs: delayMs,
          err: state.lastError,
        },
        'certificate order failed; the current certificate (if any) keeps serving',
      );
    } finally {
      await handle
        .release()
        .catch((err: unknown) =>
          log.warn({ err: errorText(err) }, 'releasing the ACME lock failed; it expires by itself'),
        );
    }
  }

  async function pass(): Promise<void> {
    for (const state of states.values()) {
      if (stopped) return;
      try {
        await check(state);
      } catch (err) {
        // Lock store or file system trouble: treat as a failed attempt so it backs off too.
        state.failures += 1;
        state.nextAttemptAtMs =
          now() + backoffDelayMs(state.failures, cfg.backoffMinMs, cfg.backoffMaxMs, random);
        state.lastError = errorText(err);
        opts.metrics?.orderResult(state.target.issuer, state.target.credential, 'failed');
        log.error({ credential: state.target.credential, err: state.lastError }, 'certificate check failed');
      }
    }
  }

  function schedule(): void {
    if (stopped) return;
    if (timer !== undefined) clearTimeout(timer);
    const t = now();
    let wakeMs = cfg.recheckMaxMs;
    for (const s of states.values()) {
      if (s.nextAttemptAtMs > t) wakeMs = Math.min(wakeMs, s.nextAttemptAtMs - t);
      if (s.renewAtMs !== undefined) wakeMs = Math.min(wakeMs, Math.max(0, s.renewAtMs - t));
    }
    timer = setTimeout(() => void run(), Math.max(1000, wakeMs));
    timer.unref();
  }

  function run(): Promise<void> {
    if (running !== null) {
      rerun = true;
      return running;
    }
    running = (async () => {
      do {
        rerun = false;
        await pass();
      } while (rerun && !stopped);
    })().finally(() => {
      running = null;
      schedule();
    });
    return running;
  }

  return {
    reconcile(gateways, certs) {
      if (stopped) return Promise.resolve();
      if (certs !== undefined) currentCerts = certs;
      const { targets, warnings } = acmeTargets(gateways, issuerNames, opts.labels);
      for (const w of warnings) {
        if (warned.has(w)) continue;
        warned.add(w);
        log.warn(w);
      }
      const next = new Map<string, TargetState>();
      for (const target of targets) {
        const key = stateKey(target);
        const prev = states.get(key);
        const sameHosts = prev !== undefined && prev.target.hosts.join(',') === target.hosts.join(',');
        // A changed host list is a new request: forget the back-off earned by the old one.
        next.set(
          key,
          sameHosts && prev !== undefined ? { ...prev, target } : { target, failures: 0, nextAttemptAtMs: 0 },
        );
      }
      states.clear();
      for (const [k, v] of next) states.set(k, v);
      return run();
    },
    setIssuers(next) {
      const byName = new Map(next.map((i) => [i.name, i]));
      for (const [name, old] of issuers) {
        const spec = byName.get(name);
        if (spec !== undefined && JSON.stringify(spec) === JSON.stringify(old)) continue;
        clients.delete(name);
        agents.get(new URL(old.directoryUrl).origin)?.destroy();
        agents.delete(new URL(old.directoryUrl).origin);
      }
      issuers.clear();
      for (const [name, spec] of byName) issuers.set(name, spec);
      issuerNames = new Set(issuers.keys());
    },
    targets() {
      return [...states.values()].map((s) => ({
        ...s.target,
        failures: s.failures,
        nextAttemptAtMs: s.nextAttemptAtMs,
        ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
        ...(s.renewAtMs !== undefined ? { renewAtMs: s.renewAtMs } : {}),
      }));
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      // An order in flight cannot be aborted (acme-client has no signal); wait a little for it to
      // release its lock, then leave it: the lock expires by itself.
      if (running !== null) await Promise.race([running, new Promise((r) => setTimeout(r, 5000).unref())]);
      uninstall();
      for (const agent of agents.values()) agent.destroy();
    },
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * networking.k8s.io/v1 Ingress + ingress-nginx annotations → the Istio model (one Gateway, a
 * VirtualService per host, a DestinationRule per backend Service), so compile, explain, metrics
 * and the access log treat an Ingress as they treat Istio resources. Pure: the same set always
 * gives the same resources and diagnostics.
 *
 * ingress-nginx's meaning is kept where it differs from Istio's (internal/ingress/controller,
 * template.go buildLocation and updateServerLocations):
 * - locations are grouped by host across every Ingress of the class; when any path of a host uses
 *   `use-regex` or `rewrite-target`, EVERY path of that host becomes a case-insensitive regex
 *   anchored at the start only (`~* "^path"`), so it is a prefix match, Exact paths included;
 * - otherwise Exact paths win, then the longest prefix; a Prefix path `/p` matches `/p` and `/p/…`
 *   (not `/px`), ImplementationSpecific `/p` is a plain string prefix;
 * - regex locations are tried longest path first (ties: the greater string first);
 * - `rewrite-target` replaces the whole path with the target (`$n` = capture n), query kept;
 * - hosts with `tls` redirect plain HTTP with 308 unless `ssl-redirect: "false"`;
 * - request bodies over `proxy-body-size` (1m by default) get 413; upstream connect timeout 5 s.
 */
import type { Diagnostic } from '../../errors/diagnostic.ts';
import type { IngressBackend, IngressSpec, SecretSpec, ServiceSpec } from '../../model/kube.ts';
import { privateBytes, type PrivateBytes } from '../../model/private-bytes.ts';
import type {
  ClientTlsSettings,
  ConsistentHashLB,
  Destination,
  DestinationRuleSpec,
  GatewayServer,
  GatewaySpec,
  HTTPMatchRequest,
  HTTPRoute,
  IngressNginxRoute,
  StringMatch,
  TLSRoute,
  VirtualServiceSpec,
} from '../../model/networking.ts';
import { subjectOfResource, type Resource, type ResourceSet } from '../../model/resource.ts';
import type { MeshConfigSpec } from '../../model/sluice.ts';
import { compileRe2 } from '../../util/re2.ts';
import {
  annotationKey,
  readAnnotations,
  LIMIT_STORAGE_ANNOTATION,
  NGINX_PREFIX,
  type CanarySettings,
  type HashSetting,
  type AnnotationProblem,
  type IngressAnnotations,
  type IngressRateLimit,
} from './annotations.ts';

export interface IngressOptions {
  /** --ingress-class: the class this gateway serves. */
  readonly ingressClass: string;
  /** --ingress-http-port / --ingress-https-port. */
  readonly httpPort: number;
  readonly httpsPort: number;
  /** The gateway's own namespace: the generated Gateway lives there. */
  readonly gatewayNamespace: string;
  /**
   * False for `convert`, which only writes YAML: a Global sluice.dev/limit-storage is then taken
   * without the MeshConfig `redis` a serving gateway needs (default true).
   */
  readonly requireLimitStore?: boolean;
}

export const DEFAULT_INGRESS_OPTIONS: Omit<IngressOptions, 'gatewayNamespace'> = {
  ingressClass: 'sluice',
  httpPort: 80,
  httpsPort: 443,
};

/** Name of the Gateway every served Ingress is bound to. */
export const INGRESS_GATEWAY_NAME = 'sluice-ingress';
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
/** On a generated server-and-client-CA Secret: the Secrets it joins (convert names them instead). */
export const MTLS_CREDENTIAL = 'sluice.dev/ingress-server-credential';
export const MTLS_CLIENT_CA = 'sluice.dev/ingress-client-ca';
export const MTLS_VERIFY = 'sluice.dev/ingress-client-verify';
/** Marks generated resources: the value says which Ingresses they came from. */
export const GENERATED_FROM = 'sluice.dev/generated-from-ingress';

type IngressResource = Resource<'Ingress', IngressSpec>;

/** An Ingress's annotations with what they name resolved (the basic-auth Secret's users). */
type ServedAnnotations = IngressAnnotations & {
  readonly basicAuthUsers: { readonly realm: string; readonly htpasswd: PrivateBytes } | null;
  /** proxy-ssl-* as the backend's DestinationRule tls; null = ingress-nginx's unverified TLS. */
  readonly upstreamTls: ClientTlsSettings | null;
  /** default-backend resolved: its Service's first port, as ingress-nginx uses; null = none. */
  readonly defaultBackend: Destination | null;
};

/**
 * ssl-passthrough: TLS for the host goes by SNI, still encrypted, to the backend of the
 * passthrough Ingress's `/` path (its defaultBackend, else its first path), as ingress-nginx's
 * TCP proxy does in front of nginx; null (with a warning) when there is no such backend.
 */
function passthroughRoute(
  entry: HostEntry,
  opts: IngressOptions,
  services: ReadonlyMap<string, Resource<'Service', ServiceSpec>>,
  diagnostics: Diagnostic[],
): TLSRoute | null {
  const ing = entry.passthrough!;
  const own = entry.locations.filter((l) => l.ingress === ing);
  const root = own.find((l) => !l.isDefault && l.path === '/') ?? own.find((l) => l.isDefault) ?? own[0];
  const dest = root === undefined ? null : destinationOf(root, services, diagnostics);
  if (dest === null) {
    diagnostics.push({
      level: 'warning',
      code: 'SLUICE_INGRESS_ANNOTATION',
      subject: subjectOf(ing),
      path: `metadata.annotations[${NGINX_PREFIX}ssl-passthrough]`,
      message: `host ${entry.host} has no Service backend to pass TLS through to; its TLS is not served`,
    });
    return null;
  }
  return {
    match: [{ port: opts.httpsPort, sniHosts: [entry.host] }],
    route: [{ destination: { host: serviceHost(dest.service, ing.namespace), port: { number: dest.port } } }],
  };
}

/**
 * The server certificate of `credential` with the auth-tls-secret's ca.crt (and ca.crl) beside
 * it, as one Secret in the gateway's namespace: a Gateway server reads its client CA from its
 * credential, and the two Secrets of an Ingress are separate.
 */
function clientCredential(
  credential: string,
  caSecret: string,
  verify: string,
  secrets: ReadonlyMap<string, Resource<'Secret', SecretSpec>>,
  namespace: string,
  name: string,
  owner: IngressResource,
): Resource {
  const data: Record<string, PrivateBytes> = {};
  const server = secrets.get(credential)?.spec.data ?? {};
  const ca = secrets.get(caSecret)?.spec.data ?? {};
  for (const k of ['tls.crt', 'tls.key'] as const) if (server[k] !== undefined) data[k] = server[k];
  for (const k of ['ca.crt', 'ca.crl'] as const) if (ca[k] !== undefined) data[k] = ca[k];
  return {
    kind: 'Secret',
    apiVersion: 'v1',
    namespace,
    name,
    labels: {},
    annotations: {
      [GENERATED_FROM]: `${owner.namespace}/${owner.name}`,
      [MTLS_CREDENTIAL]: credential,
      [MTLS_CLIENT_CA]: caSecret,
      [MTLS_VERIFY]: verify,
    },
    origin: owner.origin,
    spec: { type: 'kubernetes.io/tls', data } satisfies SecretSpec,
  };
}

/**
 * proxy-ssl-* as DestinationRule tls, for HTTPS and GRPCS backends only (nginx's proxy_ssl_*
 * act on `proxy_pass https://`). The Secret's tls.crt/tls.key make it MUTUAL; its ca.crt is the
 * CA. With proxy-ssl-verify on, nginx checks the name proxy-ssl-name, and without one
 * `$proxy_host`, which in ingress-nginx is `upstream_balancer`; the SNI is proxy-ssl-name only
 * with proxy-ssl-server-name on.
 */
function proxySslOf(
  ann: IngressAnnotations,
  secrets: ReadonlyMap<string, Resource<'Secret', SecretSpec>>,
  problems: AnnotationProblem[],
): ClientTlsSettings | null {
  const p = ann.proxySsl!;
  if (ann.backendProtocol !== 'HTTPS' && ann.backendProtocol !== 'GRPCS') {
    problems.push({
      level: 'warning',
      annotation: 'proxy-ssl-secret',
      message: `backend-protocol is ${ann.backendProtocol}, so no TLS is spoken to the backend and proxy-ssl-* have no effect (as in ingress-nginx)`,
    });
    return null;
  }
  const secret = secrets.get(p.secret);
  if (secret === undefined) {
    problems.push({
      level: 'error',
      annotation: 'proxy-ssl-secret',
      message: `Secret ${p.secret} is not in the config; the config is refused rather than connecting without it`,
    });
    return null;
  }
  const mutual = secret.spec.data['tls.crt'] !== undefined && secret.spec.data['tls.key'] !== undefined;
  const name = p.name ?? 'upstream_balancer';
  return {
    mode: mutual ? 'MUTUAL' : 'SIMPLE',
    credentialName: p.secret,
    ...(p.verify ? { subjectAltNames: [name] } : { insecureSkipVerify: true }),
    ...(p.serverName && p.name !== null ? { sni: p.name } : {}),
  };
}

/**
 * auth-secret as htpasswd text: the `auth` key of an auth-file Secret, or `user:hash` lines of an
 * auth-map Secret's keys. A missing Secret or key is an error: the paths would otherwise be open.
 */
function basicAuthUsers(
  auth: NonNullable<IngressAnnotations['basicAuth']>,
  secrets: ReadonlyMap<string, Resource<'Secret', SecretSpec>>,
  problems: AnnotationProblem[],
): { realm: string; htpasswd: PrivateBytes } | null {
  const secret = secrets.get(auth.secret);
  const refuse = (message: string): null => {
    problems.push({
      level: 'error',
      annotation: 'auth-secret',
      message: `${message}; the config is refused rather than serving the paths open`,
    });
    return null;
  };
  if (secret === undefined) return refuse(`Secret ${auth.secret} is not in the config`);
  const data = secret.spec.data;
  if (auth.secretType === 'auth-file') {
    const file = data['auth'];
    return file === undefined
      ? refuse(`Secret ${auth.secret} has no "auth" key (auth-secret-type auth-file)`)
      : { realm: auth.realm, htpasswd: file };
  }
  const lines = Object.entries(data).map(
    ([user, hash]) => `${user}:${Buffer.from(hash.base64, 'base64').toString('utf8').trim()}`,
  );
  if (lines.length === 0) return refuse(`Secret ${auth.secret} has no users (auth-secret-type auth-map)`);
  return { realm: auth.realm, htpasswd: privateBytes(Buffer.from(lines.join('\n')).toString('base64')) };
}

/** The Ingresses of a set whose class (annotation, ingressClassName, else the default IngressClass) is `ingressClass`. */
export function ingressesOfClass(set: ResourceSet, ingressClass: string): IngressResource[] {
  const defaultClass = defaultClassOf(set);
  return set.resources.filter(
    (r): r is IngressResource =>
      r.kind === 'Ingress' && classOf(r as IngressResource, defaultClass).name === ingressClass,
  );
}

/**
 * The Secrets the Ingresses of the served class name, as `namespace/name` → those Ingresses:
 * `spec.tls[].secretName`, the basic-auth `auth-secret`, the client-certificate `auth-tls-secret`
 * and the upstream `proxy-ssl-secret`, each in the Ingress's namespace unless it names one. A
 * Kubernetes provider watches exactly these (never every Secret of a namespace).
 */
export function ingressSecretRefs(set: ResourceSet, ingressClass: string): Map<string, Resource[]> {
  const refs = new Map<string, Resource[]>();
  const add = (ref: string, ing: Resource): void => {
    const list = refs.get(ref);
    if (list === undefined) refs.set(ref, [ing]);
    else if (!list.includes(ing)) list.push(ing);
  };
  for (const ing of ingressesOfClass(set, ingressClass)) {
    for (const t of ing.spec.tls ?? [])
      if (t.secretName !== undefined && t.secretName !== '') add(`${ing.namespace}/${t.secretName}`, ing);
    const ann = readAnnotations(ing.annotations, ing.namespace).value;
    // Annotation Secrets are `namespace/name` already.
    if (ann.basicAuth !== null) add(ann.basicAuth.secret, ing);
    if (ann.authTls !== null) add(ann.authTls.secret, ing);
    if (ann.proxySsl !== null) add(ann.proxySsl.secret, ing);
  }
  return refs;
}

export interface IngressTranslation {
  /** Generated Istio resources, in a stable order. */
  readonly resources: readonly Resource[];
  readonly diagnostics: readonly Diagnostic[];
}

interface Location {
  readonly ingress: IngressResource;
  readonly ann: ServedAnnotations;
  readonly path: string;
  readonly pathType: 'Exact' | 'Prefix' | 'ImplementationSpecific';
  readonly backend: IngressBackend;
  readonly field: string;
  /** The Ingress's defaultBackend standing in for `/` on this host. */
  readonly isDefault: boolean;
  /** A canary Ingress's alternative backend for this host and path. */
  canary?: {
    readonly settings: CanarySettings;
    readonly ingress: IngressResource;
    readonly backend: IngressBackend;
    readonly field: string;
  };
}

interface CanaryPath {
  readonly host: string;
  readonly path: string;
  readonly ingress: IngressResource;
  readonly settings: CanarySettings;
  readonly backend: IngressBackend;
  readonly field: string;
}

interface HostEntry {
  readonly host: string;
  readonly locations: Location[];
  /** The first Ingress that named the host: owns server-level annotations. */
  readonly owner: IngressResource;
  readonly ownerAnn: ServedAnnotations;
  tls: { readonly credential: string } | null;
  /** auth-tls-* of the first Ingress of the host that set them (ingress-nginx's server CertificateAuth). */
  clientAuth: {
    readonly settings: NonNullable<IngressAnnotations['authTls']>;
    readonly ingress: IngressResource;
  } | null;
  /** ssl-passthrough of the first Ingress of the host that set it: TLS to it is piped, not terminated. */
  passthrough: IngressResource | null;
}

const subjectOf = subjectOfResource;

/** ingress-nginx's order: oldest Ingress first, then namespace/name. */
function byAge(a: Resource, b: Resource): number {
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The class an Ingress names: the legacy annotation first (as ingress-nginx reads it), then ingressClassName. */
function classOf(ing: IngressResource, defaultClass: string | null): { name: string | null; how: string } {
  const legacy = ing.annotations[LEGACY_CLASS_ANNOTATION];
  if (legacy !== undefined && legacy !== '')
    return { name: legacy, how: `annotation ${LEGACY_CLASS_ANNOTATION}` };
  if (ing.spec.ingressClassName !== undefined)
    return { name: ing.spec.ingressClassName, how: 'spec.ingressClassName' };
  if (defaultClass !== null) return { name: defaultClass, how: `the default IngressClass ${defaultClass}` };
  return { name: null, how: 'no class' };
}

function defaultClassOf(set: ResourceSet): string | null {
  const defaults = set.resources
    .filter((r) => r.kind === 'IngressClass' && r.annotations[DEFAULT_CLASS_ANNOTATION] === 'true')
    .map((r) => r.name)
    .sort();
  return defaults[0] ?? null;
}

export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.cluster.local`;
}

/** The rule name `routes` and `explain` print: which Ingress and path a route came from. */
function ruleName(l: Location): string {
  const where = `Ingress ${l.ingress.namespace}/${l.ingress.name}`;
  return l.isDefault ? `${where} defaultBackend` : `${where} path ${l.path}`;
}

/** `$1` → `\1` (RE2 rewrite syntax); null when the target uses nginx variables sluice cannot fill. */
function toRe2Rewrite(target: string): string | null {
  let out = '';
  for (let i = 0; i < target.length; i++) {
    const c = target[i]!;
    if (c === '\\') out += '\\\\';
    else if (c === '$') {
      const d = target[i + 1];
      if (d === undefined || d < '0' || d > '9') return null;
      out += '\\' + d;
      i++;
    } else out += c;
  }
  return out;
}

export function translateIngresses(set: ResourceSet, opts: IngressOptions): IngressTranslation {
  const diagnostics: Diagnostic[] = [];
  const ingresses = set.resources.filter((r): r is IngressResource => r.kind === 'Ingress').sort(byAge);
  if (ingresses.length === 0) return { resources: [], diagnostics };
  const secrets = new Map<string, Resource<'Secret', SecretSpec>>();
  for (const r of set.resources)
    if (r.kind === 'Secret') secrets.set(`${r.namespace}/${r.name}`, r as Resource<'Secret', SecretSpec>);
  const services = new Map<string, Resource<'Service', ServiceSpec>>();
  for (const r of set.resources)
    if (r.kind === 'Service') services.set(`${r.namespace}/${r.name}`, r as Resource<'Service', ServiceSpec>);
  const defaultClass = defaultClassOf(set);
  // MeshConfigs merge first-wins per field, so some MeshConfig's redis is the merged one.
  const limitStore =
    opts.requireLimitStore === false ||
    set.resources.some(
      (r) => r.kind === 'MeshConfig' && (r.spec as MeshConfigSpec | null)?.redis !== undefined,
    );

  const hosts = new Map<string, HostEntry>();
  const served: IngressResource[] = [];
  const canaries: CanaryPath[] = [];
  const backendPorts = new Map<string, { ann: ServedAnnotations; ingress: IngressResource; port: number }>();

  for (const ing of ingresses) {
    const subject = subjectOf(ing);
    const cls = classOf(ing, defaultClass);
    if (cls.name !== opts.ingressClass) {
      diagnostics.push({
        level: 'info',
        code: 'SLUICE_CONFIG_NOT_APPLICABLE',
        subject,
        message:
          cls.name === null
            ? `no ingress class (no ${LEGACY_CLASS_ANNOTATION} annotation, no spec.ingressClassName, no default IngressClass); ingress-nginx ignores such an Ingress too, so it is not served`
            : `class "${cls.name}" (from ${cls.how}) is not this gateway's (--ingress-class ${opts.ingressClass}); it is not served`,
      });
      continue;
    }
    const { value: read, problems } = readAnnotations(ing.annotations, ing.namespace);
    const users = read.basicAuth === null ? null : basicAuthUsers(read.basicAuth, secrets, problems);
    const upstreamTls = read.proxySsl === null ? null : proxySslOf(read, secrets, problems);
    const limits = read.rateLimit;
    if (limits?.storage === 'Global' && (limits.rps > 0 || limits.rpm > 0) && !limitStore)
      problems.push({
        level: 'error',
        annotation: LIMIT_STORAGE_ANNOTATION,
        message:
          'Global needs a MeshConfig with redis (url, sentinel or cluster) to count in; the config is refused rather than counting per gateway process',
      });
    if (read.authTls !== null && read.authTls.verify !== 'off') {
      const ca = secrets.get(read.authTls.secret)?.spec.data['ca.crt'];
      if (ca === undefined)
        problems.push({
          level: 'error',
          annotation: 'auth-tls-secret',
          message: `Secret ${read.authTls.secret} is not in the config or has no ca.crt; the config is refused rather than serving the host without client certificates`,
        });
    }
    const defaultBackend =
      read.errorPages === null ? null : defaultBackendOf(ing, read.errorPages, services, problems);
    const ann: ServedAnnotations = { ...read, basicAuthUsers: users, upstreamTls, defaultBackend };
    let refused = false;
    for (const p of problems) {
      if (p.level === 'error') refused = true;
      diagnostics.push({
        level: p.level,
        code: p.level === 'error' ? 'SLUICE_INGRESS_REFUSED' : 'SLUICE_INGRESS_ANNOTATION',
        subject,
        path: `metadata.annotations[${annotationKey(p.annotation)}]`,
        message: p.message,
        ...(p.level === 'warning' ? { unsupported: p.annotation } : {}),
      });
    }
    if (refused) continue;
    served.push(ing);
    if (ann.canary !== null) {
      const settings = ann.canary;
      (ing.spec.rules ?? []).forEach((rule, ri) =>
        (rule.http?.paths ?? []).forEach((p, pi) =>
          canaries.push({
            host: (rule.host ?? '*').toLowerCase(),
            path: p.path ?? '/',
            ingress: ing,
            settings,
            backend: p.backend,
            field: `spec.rules[${ri}].http.paths[${pi}]`,
          }),
        ),
      );
      continue;
    }
    const entryFor = (host: string): HostEntry => {
      let e = hosts.get(host);
      if (e === undefined)
        hosts.set(
          host,
          (e = {
            host,
            locations: [],
            owner: ing,
            ownerAnn: ann,
            tls: null,
            clientAuth: null,
            passthrough: null,
          }),
        );
      if (e.clientAuth === null && ann.authTls !== null && ann.authTls.verify !== 'off')
        e.clientAuth = { settings: ann.authTls, ingress: ing };
      return e;
    };
    const spec = ing.spec;
    const rules = spec.rules ?? [];
    rules.forEach((rule, ri) => {
      const host = (rule.host ?? '*').toLowerCase();
      const entry = entryFor(host);
      (rule.http?.paths ?? []).forEach((p, pi) => {
        const field = `spec.rules[${ri}].http.paths[${pi}]`;
        const path = p.path ?? '/';
        if (!path.startsWith('/')) {
          diagnostics.push({
            level: 'error',
            code: 'SLUICE_CONFIG_INVALID',
            subject,
            path: `${field}.path`,
            message: `must start with "/", got "${path}"`,
          });
          return;
        }
        const dup = entry.locations.find((l) => !l.isDefault && l.path === path && l.pathType === p.pathType);
        if (dup !== undefined) {
          diagnostics.push({
            level: 'warning',
            code: 'SLUICE_HOST_CONFLICT',
            subject,
            path: field,
            related: subjectOf(dup.ingress),
            message: `host ${host} path ${path} (${p.pathType}) is already served by Ingress ${dup.ingress.namespace}/${dup.ingress.name}; as in ingress-nginx the older one wins and this path is ignored`,
          });
          return;
        }
        entry.locations.push({
          ingress: ing,
          ann,
          path,
          pathType: p.pathType,
          backend: p.backend,
          field,
          isDefault: false,
        });
      });
    });
    // ingress-nginx: the Ingress's defaultBackend answers `/` of every host it creates and of the catch-all server.
    if (spec.defaultBackend !== undefined) {
      const targets = new Set<string>(rules.map((r) => (r.host ?? '*').toLowerCase()));
      targets.add('*');
      for (const host of targets) {
        const entry = entryFor(host);
        if (entry.locations.some((l) => l.isDefault)) continue;
        entry.locations.push({
          ingress: ing,
          ann,
          path: '/',
          pathType: 'Prefix',
          backend: spec.defaultBackend,
          field: 'spec.defaultBackend',
          isDefault: true,
        });
      }
    }
    if (ann.sslPassthrough)
      for (const r of rules) {
        const entry = entryFor((r.host ?? '*').toLowerCase());
        entry.passthrough ??= ing;
      }
    (spec.tls ?? []).forEach((t, ti) => {
      if (t.secretName === undefined || t.secretName === '') {
        diagnostics.push({
          level: 'warning',
          code: 'SLUICE_TLS_CONFIG',
          subject,
          path: `spec.tls[${ti}].secretName`,
          message:
            'no secretName: ingress-nginx would present its default certificate; sluice serves these hosts on plain HTTP only',
        });
        return;
      }
      for (const h of t.hosts ?? []) {
        const entry = entryFor(h.toLowerCase());
        if (entry.tls === null) entry.tls = { credential: `${ing.namespace}/${t.secretName}` };
      }
    });
  }
  if (served.length === 0) return { resources: [], diagnostics };
  // mergeAlternativeBackends: a canary joins the location of another Ingress with its host and path.
  for (const c of canaries) {
    const main = hosts
      .get(c.host)
      ?.locations.find((l) => !l.isDefault && l.path === c.path && l.canary === undefined);
    if (main === undefined) {
      diagnostics.push({
        level: 'warning',
        code: 'SLUICE_INGRESS_ANNOTATION',
        subject: subjectOf(c.ingress),
        path: c.field,
        message: `canary for host ${c.host} path ${c.path}, but no other Ingress serves that host and path; as in ingress-nginx it is not served`,
      });
      continue;
    }
    main.canary = { settings: c.settings, ingress: c.ingress, backend: c.backend, field: c.field };
  }

  const gwNamespace = opts.gatewayNamespace;
  const gatewayRef = `${gwNamespace}/${INGRESS_GATEWAY_NAME}`;
  const resources: Resource[] = [];
  const allHosts: string[] = [];
  const passthroughHosts: string[] = [];
  const tlsServers = new Map<
    string,
    { credential: string; clientAuth: HostEntry['clientAuth']; hosts: string[] }
  >();
  const hostList = [...hosts.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));

  for (const entry of hostList) {
    if (entry.locations.length === 0) continue;
    const vsHosts = [entry.host, ...entry.ownerAnn.serverAliases.filter((h) => h !== entry.host)];
    allHosts.push(...vsHosts);
    const piped = entry.passthrough === null ? null : passthroughRoute(entry, opts, services, diagnostics);
    if (piped !== null) passthroughHosts.push(entry.host);
    else if (entry.tls !== null) {
      // Hosts verifying clients differently cannot share a server: each gets the SNI's own settings.
      const ca = entry.clientAuth?.settings;
      const key = `${entry.tls.credential}|${ca === undefined ? '' : `${ca.secret}|${ca.verify}`}`;
      const server = tlsServers.get(key) ?? {
        credential: entry.tls.credential,
        clientAuth: entry.clientAuth,
        hosts: [],
      };
      server.hosts.push(entry.host);
      tlsServers.set(key, server);
    }
    const http = hostRoutes(entry, opts, services, diagnostics, backendPorts);
    if (http.length === 0 && piped === null) continue;
    const spec: VirtualServiceSpec = {
      hosts: vsHosts,
      gateways: [gatewayRef],
      ...(http.length > 0 ? { http } : {}),
      ...(piped !== null ? { tls: [piped] } : {}),
    };
    resources.push(
      generated(
        'VirtualService',
        entry.owner.namespace,
        `ingress-${hostSlug(entry.host)}`,
        entry.owner,
        entry.locations,
        spec,
      ),
    );
    if (entry.ownerAnn.fromToWwwRedirect && entry.host !== '*') {
      const other = entry.host.startsWith('www.') ? entry.host.slice(4) : `www.${entry.host}`;
      if (!hosts.has(other)) {
        allHosts.push(other);
        const redirect: VirtualServiceSpec = {
          hosts: [other],
          gateways: [gatewayRef],
          http: [
            {
              name: `Ingress ${entry.owner.namespace}/${entry.owner.name} from-to-www-redirect`,
              redirect: { authority: entry.host, redirectCode: 308 },
            },
          ],
        };
        resources.push(
          generated(
            'VirtualService',
            entry.owner.namespace,
            `ingress-${hostSlug(other)}`,
            entry.owner,
            entry.locations,
            redirect,
          ),
        );
      }
    }
  }

  const servers: GatewayServer[] = [
    {
      port: { number: opts.httpPort, name: 'http-ingress', protocol: 'HTTP' },
      hosts: [...new Set(allHosts)].sort(),
    },
  ];
  if (passthroughHosts.length > 0)
    servers.push({
      port: { number: opts.httpsPort, name: 'tls-passthrough-ingress', protocol: 'TLS' },
      hosts: passthroughHosts,
      tls: { mode: 'PASSTHROUGH' },
    });
  const mtlsSecrets: Resource[] = [];
  [...tlsServers.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .forEach(([, { credential, clientAuth, hosts: list }], i) => {
      let tls: GatewayServer['tls'] = { mode: 'SIMPLE', credentialName: credential };
      if (clientAuth !== null) {
        const secret = clientCredential(
          credential,
          clientAuth.settings.secret,
          clientAuth.settings.verify,
          secrets,
          gwNamespace,
          `ingress-mtls-${i}`,
          clientAuth.ingress,
        );
        mtlsSecrets.push(secret);
        // The handshake asks for a certificate and admits none; the route answers 400 as nginx.
        tls = { mode: 'OPTIONAL_MUTUAL', credentialName: `${gwNamespace}/${secret.name}` };
      }
      servers.push({
        port: { number: opts.httpsPort, name: `https-ingress-${i}`, protocol: 'HTTPS' },
        hosts: list,
        tls,
      });
    });
  resources.push(...mtlsSecrets);
  const gateway: GatewaySpec = { servers };
  resources.unshift(generated('Gateway', gwNamespace, INGRESS_GATEWAY_NAME, served[0]!, [], gateway, served));

  // One DestinationRule per backend Service port: ingress-nginx's connect timeout and backend protocol.
  const drs = new Map<
    string,
    { host: string; ns: string; ports: { port: number; ann: ServedAnnotations }[]; ingress: IngressResource }
  >();
  for (const [key, v] of backendPorts) {
    const [ns, name] = key.split('/') as [string, string];
    const host = serviceHost(name.split(':')[0]!, ns);
    const dr = drs.get(host) ?? { host, ns, ports: [], ingress: v.ingress };
    dr.ports.push({ port: v.port, ann: v.ann });
    drs.set(host, dr);
  }
  const userDrHosts = new Set(
    set.resources
      .filter((r) => r.kind === 'DestinationRule')
      .map((r) => (r.spec as DestinationRuleSpec).host),
  );
  for (const dr of [...drs.values()].sort((a, b) => (a.host < b.host ? -1 : 1))) {
    if (userDrHosts.has(dr.host) || userDrHosts.has(dr.host.split('.')[0]!)) {
      diagnostics.push({
        level: 'warning',
        code: 'SLUICE_INGRESS_ANNOTATION',
        subject: subjectOf(dr.ingress),
        message: `a DestinationRule for ${dr.host} exists, so ingress-nginx's connect timeout and backend-protocol are not applied to it (the DestinationRule's traffic policy is)`,
      });
      continue;
    }
    const spec: DestinationRuleSpec = {
      host: dr.host,
      trafficPolicy: {
        portLevelSettings: dr.ports
          .sort((a, b) => a.port - b.port)
          .map(({ port, ann }) => ({
            port: { number: port },
            connectionPool: {
              tcp: { connectTimeout: `${ann.connectTimeoutSeconds}s` },
              ...(ann.backendProtocol === 'GRPC' || ann.backendProtocol === 'GRPCS'
                ? { http: { h2UpgradePolicy: 'UPGRADE' as const } }
                : {}),
            },
            ...(ann.hash !== null ? { loadBalancer: { consistentHash: consistentHashOf(ann.hash) } } : {}),
            // ingress-nginx does not verify upstream certificates unless proxy-ssl-verify is on.
            ...(ann.backendProtocol === 'HTTPS' || ann.backendProtocol === 'GRPCS'
              ? { tls: ann.upstreamTls ?? { mode: 'SIMPLE' as const, insecureSkipVerify: true } }
              : {}),
          })),
      },
    };
    resources.push(
      generated('DestinationRule', dr.ns, `ingress-${dr.host.split('.')[0]}`, dr.ingress, [], spec),
    );
  }
  return { resources, diagnostics };
}

/** affinity cookie / upstream-hash-by as Istio's consistent hash (ttl 0s: a session cookie, as nginx's). */
function consistentHashOf(h: HashSetting): ConsistentHashLB {
  switch (h.kind) {
    case 'cookie':
      return {
        httpCookie: { name: h.name, ttl: `${h.ttlSeconds}s`, ...(h.path !== null ? { path: h.path } : {}) },
      };
    case 'header':
      return { httpHeaderName: h.name };
    case 'query':
      return { httpQueryParameterName: h.name };
    case 'source-ip':
      return { useSourceIp: true };
  }
}

function hostSlug(host: string): string {
  return host === '*' ? 'catch-all' : host.replace(/^\*\./, 'wildcard.');
}

function generated<K extends 'Gateway' | 'VirtualService' | 'DestinationRule'>(
  kind: K,
  namespace: string,
  name: string,
  owner: IngressResource,
  locations: readonly Location[],
  spec: unknown,
  from: readonly IngressResource[] = [],
): Resource {
  const names = new Set<string>([`${owner.namespace}/${owner.name}`]);
  for (const l of locations) names.add(`${l.ingress.namespace}/${l.ingress.name}`);
  for (const f of from) names.add(`${f.namespace}/${f.name}`);
  return {
    kind,
    apiVersion:
      kind === 'Gateway' || kind === 'VirtualService' || kind === 'DestinationRule'
        ? 'networking.istio.io/v1'
        : '',
    namespace,
    name,
    labels: {},
    annotations: { [GENERATED_FROM]: [...names].sort().join(',') },
    ...(owner.creationTimestamp !== undefined ? { creationTimestamp: owner.creationTimestamp } : {}),
    origin: owner.origin,
    spec,
  };
}

/** ingress-nginx's location order for one host, then each location as Istio rules. */
function hostRoutes(
  entry: HostEntry,
  opts: IngressOptions,
  services: ReadonlyMap<string, Resource<'Service', ServiceSpec>>,
  diagnostics: Diagnostic[],
  backendPorts: Map<string, { ann: ServedAnnotations; ingress: IngressResource; port: number }>,
): HTTPRoute[] {
  // use-regex and rewrite-target on any path of a host turn every path of it into a regex (enforceRegexModifier).
  const regexMode = entry.locations.some((l) => !l.isDefault && (l.ann.useRegex || needsRewrite(l)));
  const ordered = [...entry.locations].sort((a, b) => {
    if (!regexMode) {
      const ea = a.pathType === 'Exact' ? 0 : 1;
      const eb = b.pathType === 'Exact' ? 0 : 1;
      if (ea !== eb) return ea - eb;
    }
    if (a.path.length !== b.path.length) return b.path.length - a.path.length;
    if (a.isDefault !== b.isDefault) return a.isDefault ? 1 : -1;
    return a.path < b.path ? 1 : a.path > b.path ? -1 : 0;
  });
  const out: HTTPRoute[] = [];
  if (entry.ownerAnn.appRoot !== null) {
    out.push({
      name: `Ingress ${entry.owner.namespace}/${entry.owner.name} app-root`,
      match: [{ uri: { exact: '/' } }],
      redirect: { uri: entry.ownerAnn.appRoot, redirectCode: 302 },
    });
  }
  const hasTls = entry.tls !== null;
  for (const l of ordered) {
    // A path `/` is written by the user: the defaultBackend only fills `/` when nobody did.
    if (l.isDefault && ordered.some((o) => !o.isDefault && o.path === '/')) continue;
    const subject = subjectOf(l.ingress);
    const matches = matchesOf(l, regexMode);
    if (matches === null) {
      diagnostics.push({
        level: 'error',
        code: 'SLUICE_REGEX_INVALID',
        subject,
        path: `${l.field}.path`,
        message: `"${l.path}" is used as a regex (use-regex or rewrite-target on this host) but is not valid RE2 (no lookaround or back-references)`,
      });
      continue;
    }
    const name = ruleName(l);
    if ((hasTls && l.ann.sslRedirect) || l.ann.forceSslRedirect) {
      out.push({
        name: `${name} ssl-redirect`,
        match: matches.map((m) => ({ ...m, port: opts.httpPort })),
        redirect: {
          scheme: 'https',
          redirectCode: 308,
          ...(opts.httpsPort !== 443 ? { port: opts.httpsPort } : {}),
        },
      });
    }
    const base: HTTPRoute = {
      name,
      match: matches,
      ingressNginx: {
        maxBodyBytes: l.ann.maxBodyBytes,
        readTimeoutMs: l.ann.readTimeoutSeconds * 1000,
        sendTimeoutMs: l.ann.sendTimeoutSeconds * 1000,
        ...(l.ann.allowSourceRanges.length > 0 ? { allowSourceRanges: l.ann.allowSourceRanges } : {}),
        ...(l.ann.denySourceRanges.length > 0 ? { denySourceRanges: l.ann.denySourceRanges } : {}),
        ...(l.ann.basicAuthUsers !== null ? { basicAuth: l.ann.basicAuthUsers } : {}),
        ...(l.ann.rateLimit !== null ? { rateLimit: rateLimitOf(l.ingress, l.ann.rateLimit) } : {}),
        ...(l.ann.externalAuth !== null ? { externalAuth: l.ann.externalAuth } : {}),
        ...(l.ann.errorPages !== null ? { errorPages: errorPagesOf(l, l.ann.errorPages) } : {}),
        ...(entry.clientAuth !== null && entry.tls !== null
          ? {
              clientCertificate: {
                required: entry.clientAuth.settings.verify === 'on',
                errorPage: entry.clientAuth.settings.errorPage,
                passCertificate: entry.clientAuth.settings.passCert,
              },
            }
          : {}),
      },
    };
    if (l.ann.redirect !== null && !l.isDefault) {
      const target = redirectOf(l.ann.redirect.url);
      if (target === null) {
        diagnostics.push({
          level: 'warning',
          code: 'SLUICE_INGRESS_ANNOTATION',
          subject,
          path: `metadata.annotations[${NGINX_PREFIX}${l.ann.redirect.annotation}]`,
          message: `"${l.ann.redirect.url}" is not an absolute http(s) URL; the path is routed to its backend instead`,
        });
      } else {
        out.push({ ...base, redirect: { ...target, redirectCode: l.ann.redirect.code } });
        continue;
      }
    }
    const dest = destinationOf(l, services, diagnostics);
    if (dest === null) {
      out.push({ ...base, directResponse: { status: 503 } });
      continue;
    }
    const common = {
      ...base,
      // proxy-next-upstream, or ingress-nginx's default (error timeout, 3 tries), never Istio's.
      retries:
        l.ann.retries.attempts === 0
          ? { attempts: 0 }
          : { attempts: l.ann.retries.attempts, retryOn: l.ann.retries.retryOn },
      ...rewriteOf(l, diagnostics),
      ...(l.ann.xForwardedPrefix !== null
        ? { headers: { request: { set: { 'x-forwarded-prefix': l.ann.xForwardedPrefix } } } }
        : {}),
      ...(l.ann.cors !== null ? { corsPolicy: corsPolicyOf(l.ann.cors) } : {}),
    };
    const target = (d: { service: string; port: number }, ing: IngressResource) => {
      const key = `${ing.namespace}/${d.service}:${d.port}`;
      if (!backendPorts.has(key)) backendPorts.set(key, { ann: l.ann, ingress: ing, port: d.port });
      return { host: serviceHost(d.service, ing.namespace), port: { number: d.port } };
    };
    const main = target(dest, l.ingress);
    const c = l.canary;
    const canaryDest =
      c === undefined
        ? null
        : destinationOf(
            { ...l, ingress: c.ingress, backend: c.backend, field: c.field },
            services,
            diagnostics,
          );
    if (c === undefined || canaryDest === null) {
      out.push({ ...common, route: [{ destination: main }] });
      continue;
    }
    const alt = target(canaryDest, c.ingress);
    for (const rule of canaryRules(c.settings, matches, name, diagnostics, subjectOf(c.ingress)))
      out.push({
        ...common,
        name: rule.name,
        match: rule.match,
        route: [{ destination: rule.canary ? alt : main }],
      });
    const share = Math.round((100 * c.settings.weight) / c.settings.weightTotal);
    out.push({
      ...common,
      route:
        share === 0
          ? [{ destination: main }]
          : share === 100
            ? [{ destination: alt }]
            : [
                { destination: main, weight: 100 - share },
                { destination: alt, weight: share },
              ],
    });
  }
  return out;
}

/**
 * default-backend as a destination: the Service in the Ingress's namespace on its first port
 * (controller.go takes `Spec.Ports[0]`). A Service ingress-nginx cannot read leaves the location
 * without one; so does a missing Service here, and listed statuses then get the built-in 404.
 */
function defaultBackendOf(
  ing: IngressResource,
  pages: NonNullable<IngressAnnotations['errorPages']>,
  services: ReadonlyMap<string, Resource<'Service', ServiceSpec>>,
  problems: AnnotationProblem[],
): Destination | null {
  const name = pages.defaultBackend;
  const without =
    'listed statuses are answered 404, as ingress-nginx answers them with no default backend (sluice has no global --default-backend-service)';
  if (name === null) {
    problems.push({
      level: 'warning',
      annotation: 'custom-http-errors',
      message: `no default-backend: ${without}`,
    });
    return null;
  }
  const port = services.get(`${ing.namespace}/${name}`)?.spec.ports[0]?.port;
  if (port === undefined) {
    problems.push({
      level: 'warning',
      annotation: 'default-backend',
      message: `Service ${ing.namespace}/${name} is not in the config or has no ports, so it cannot be used (as in ingress-nginx)${pages.codes.length > 0 ? `; ${without}` : ''}`,
    });
    return null;
  }
  return { host: serviceHost(name, ing.namespace), port: { number: port } };
}

/** The error pages of a location: X-Service-Name and -Port name its own backend as written. */
function errorPagesOf(
  l: Location,
  pages: NonNullable<Location['ann']['errorPages']>,
): NonNullable<IngressNginxRoute['errorPages']> {
  const svc = l.backend.service;
  return {
    codes: pages.codes,
    upstreamResponses: pages.upstreamResponses,
    backend: l.ann.defaultBackend,
    namespace: l.ingress.namespace,
    ingress: l.ingress.name,
    service: svc?.name ?? '',
    servicePort: svc?.port?.number !== undefined ? String(svc.port.number) : (svc?.port?.name ?? ''),
  };
}

/**
 * ingress-nginx's zones (annotations/ratelimit, template buildRateLimit): `limit_req … burst=
 * limit×multiplier nodelay` admits burst + 1 at once (a new client's excess starts at 0 and a
 * request is refused only when it would pass burst), then one per 1/rate: a token bucket of
 * burst + 1 tokens refilled at the rate.
 */
function rateLimitOf(ing: IngressResource, r: IngressRateLimit): NonNullable<IngressNginxRoute['rateLimit']> {
  const bucket = (requests: number) =>
    requests === 0 ? null : { requests, burst: requests * r.burstMultiplier + 1 };
  return {
    ingress: `${ing.namespace}/${ing.name}`,
    storage: r.storage,
    perSecond: bucket(r.rps),
    perMinute: bucket(r.rpm),
    connections: r.connections,
    exempt: r.exempt,
  };
}

function corsPolicyOf(cors: NonNullable<IngressAnnotations['cors']>): NonNullable<HTTPRoute['corsPolicy']> {
  return {
    allowOrigins: cors.allowOrigins.map((o) => (o === '*' ? { regex: '.*' } : { exact: o })),
    allowMethods: [...cors.allowMethods],
    allowHeaders: [...cors.allowHeaders],
    ...(cors.exposeHeaders.length > 0 ? { exposeHeaders: [...cors.exposeHeaders] } : {}),
    allowCredentials: cors.allowCredentials,
    maxAge: `${cors.maxAgeSeconds}s`,
  };
}

/**
 * ingress-nginx's canary order: by header, then by cookie, then by weight (the caller's last
 * rule). A header or cookie "never" pins the request to the main backend before the weight.
 */
function canaryRules(
  c: CanarySettings,
  matches: readonly HTTPMatchRequest[],
  name: string,
  diagnostics: Diagnostic[],
  subject: ReturnType<typeof subjectOf>,
): { name: string; match: HTTPMatchRequest[]; canary: boolean }[] {
  const out: { name: string; match: HTTPMatchRequest[]; canary: boolean }[] = [];
  const withHeader = (h: string, sm: StringMatch): HTTPMatchRequest[] =>
    matches.map((m) => ({ ...m, headers: { ...m.headers, [h]: sm } }));
  const later = c.cookie !== null || c.weight > 0;
  if (c.header !== null) {
    const h = c.header.toLowerCase();
    if (c.headerValue !== null)
      out.push({
        name: `${name} canary-by-header`,
        match: withHeader(h, { exact: c.headerValue }),
        canary: true,
      });
    else if (c.headerPattern !== null) {
      if (compileRe2(c.headerPattern).ok)
        out.push({
          name: `${name} canary-by-header`,
          match: withHeader(h, { regex: c.headerPattern }),
          canary: true,
        });
      else
        diagnostics.push({
          level: 'warning',
          code: 'SLUICE_INGRESS_ANNOTATION',
          subject,
          path: `metadata.annotations[${NGINX_PREFIX}canary-by-header-pattern]`,
          message: `"${c.headerPattern}" is not valid RE2; no header-based canary`,
        });
    } else {
      out.push({ name: `${name} canary-by-header`, match: withHeader(h, { exact: 'always' }), canary: true });
      if (later)
        out.push({
          name: `${name} canary-by-header never`,
          match: withHeader(h, { exact: 'never' }),
          canary: false,
        });
    }
  }
  if (c.cookie !== null) {
    const cookie = (v: string): StringMatch => ({ regex: `(.*;\\s*)?${escapeRegex(c.cookie!)}=${v}(;.*)?` });
    out.push({
      name: `${name} canary-by-cookie`,
      match: withHeader('cookie', cookie('always')),
      canary: true,
    });
    if (c.weight > 0)
      out.push({
        name: `${name} canary-by-cookie never`,
        match: withHeader('cookie', cookie('never')),
        canary: false,
      });
  }
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function needsRewrite(l: Location): boolean {
  return l.ann.rewriteTarget !== null && l.ann.rewriteTarget !== l.path;
}

/** The location's Istio matches: regex mode `(?i)^path` as a prefix, else nginx's exact/prefix. */
function matchesOf(l: Location, regexMode: boolean): HTTPMatchRequest[] | null {
  if (regexMode) {
    const regex = `(?i)(?:${l.path}).*`;
    if (!compileRe2(regex).ok) return null;
    return [{ uri: { regex } }];
  }
  if (l.pathType === 'Exact') return [{ uri: { exact: l.path } }];
  if (l.pathType === 'ImplementationSpecific' || l.path === '/' || l.isDefault)
    return [{ uri: { prefix: l.path } }];
  // updateServerLocations: Prefix `/p` is the location `/p/` plus an exact `/p`.
  if (l.path.endsWith('/')) return [{ uri: { prefix: l.path } }, { uri: { exact: l.path } }];
  return [{ uri: { prefix: `${l.path}/` } }, { uri: { exact: l.path } }];
}

function rewriteOf(l: Location, diagnostics: Diagnostic[]): Pick<HTTPRoute, 'rewrite'> | object {
  const vhost = l.ann.upstreamVhost;
  if (!needsRewrite(l) || l.isDefault) return vhost === null ? {} : { rewrite: { authority: vhost } };
  const target = toRe2Rewrite(l.ann.rewriteTarget!);
  if (target === null) {
    diagnostics.push({
      level: 'warning',
      code: 'SLUICE_INGRESS_ANNOTATION',
      subject: subjectOf(l.ingress),
      path: `metadata.annotations[${NGINX_PREFIX}rewrite-target]`,
      message: `"${l.ann.rewriteTarget}" uses nginx variables other than $1..$9; the path is forwarded unchanged`,
    });
    return vhost === null ? {} : { rewrite: { authority: vhost } };
  }
  // nginx's `rewrite "(?i)path" target break;` replaces the whole path; the location matched `^path`.
  return {
    rewrite: {
      uriRegexRewrite: { match: `(?i)^(?:${l.path}).*`, rewrite: target },
      ...(vhost !== null ? { authority: vhost } : {}),
    },
  };
}

function redirectOf(url: string): { scheme: string; authority: string; uri: string } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return { scheme: u.protocol.slice(0, -1), authority: u.host, uri: `${u.pathname}${u.search}` };
}

function destinationOf(
  l: Location,
  services: ReadonlyMap<string, Resource<'Service', ServiceSpec>>,
  diagnostics: Diagnostic[],
): { service: string; port: number } | null {
  const subject = subjectOf(l.ingress);
  const svc = l.backend.service;
  if (svc === undefined) {
    diagnostics.push({
      level: 'warning',
      code: 'SLUICE_INGRESS_ANNOTATION',
      subject,
      path: `${l.field}.backend`,
      message: 'only Service backends are served (a resource backend is not); requests get 503',
    });
    return null;
  }
  const known = services.get(`${l.ingress.namespace}/${svc.name}`);
  if (svc.port?.number !== undefined) {
    if (known === undefined)
      diagnostics.push({
        level: 'warning',
        code: 'SLUICE_REF_NOT_FOUND',
        subject,
        path: `${l.field}.backend.service.name`,
        message: `Service ${l.ingress.namespace}/${svc.name} is not in the config; its name is resolved by DNS`,
      });
    return { service: svc.name, port: svc.port.number };
  }
  const portName = svc.port?.name;
  const byName = portName === undefined ? undefined : known?.spec.ports.find((p) => p.name === portName);
  if (byName === undefined) {
    diagnostics.push({
      level: 'warning',
      code: 'SLUICE_REF_NOT_FOUND',
      subject,
      path: `${l.field}.backend.service.port`,
      message:
        known === undefined
          ? `Service ${l.ingress.namespace}/${svc.name} is not in the config, so port "${portName ?? ''}" cannot be resolved; requests get 503 as in ingress-nginx`
          : `Service ${l.ingress.namespace}/${svc.name} has no port named "${portName ?? ''}"; requests get 503 as in ingress-nginx`,
    });
    return null;
  }
  return { service: svc.name, port: byName.port };
}

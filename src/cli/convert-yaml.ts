/**
 * The Istio resources an Ingress translation produced → reviewable Istio YAML: each block says
 * which Ingress (and annotation) it came from, every place Istio's meaning differs from
 * ingress-nginx's is a comment, and what Istio cannot say at all is a comment and a note.
 * Pure: resources in, text and notes out.
 */
import { Document, YAMLMap, YAMLSeq, isMap } from 'yaml';
import { NGINX_PREFIX, parseNginxSize } from '../config/ingress/annotations.ts';
import { GENERATED_FROM, MTLS_CLIENT_CA, MTLS_CREDENTIAL, MTLS_VERIFY } from '../config/ingress/index.ts';
import type {
  DestinationRuleSpec,
  GatewaySpec,
  HTTPMatchRequest,
  HTTPRoute,
  IngressExternalAuth,
  IngressNginxRoute,
  VirtualServiceSpec,
} from '../model/networking.ts';
import type { Resource } from '../model/resource.ts';

/** The annotation each converted resource carries: the Ingress (`namespace/name`) it came from. */
export const CONVERTED_FROM = 'sluice.dev/converted-from-ingress';

/** ingress-nginx's per-operation upstream timeouts, which Istio has no field for. */
const NGINX_TIMEOUTS = [
  {
    annotation: 'proxy-read-timeout',
    field: 'readTimeoutMs',
    notExpressed: 'Istio has no per-read upstream timeout (its route timeout bounds the whole response)',
    byDefault: '(504 when the upstream is silent that long) has no Istio equivalent',
  },
  {
    annotation: 'proxy-send-timeout',
    field: 'sendTimeoutMs',
    notExpressed:
      'Istio has no per-write upstream timeout (its route timeout bounds the whole exchange, and connectionPool idleTimeout only idle connections)',
    byDefault: '(504 when the upstream takes no request bytes that long) has no Istio equivalent',
  },
] as const;

export interface ConvertNote {
  /** `namespace/name` of the Ingress the note is about. */
  readonly ingress: string;
  /** `difference`: expressed, but Istio's behaviour differs as said; `not-expressed`: lost in Istio. */
  readonly kind: 'difference' | 'not-expressed';
  readonly text: string;
}

export interface ConvertOptions {
  /** The gateway workload's labels: the Gateway's and AuthorizationPolicies' selector. */
  readonly selector: Readonly<Record<string, string>>;
  /** Where the Gateway and its credentials live (Istio reads credentialName Secrets there). */
  readonly gatewayNamespace: string;
}

export interface ConvertOutput {
  /** Multi-document Istio YAML. */
  readonly yaml: string;
  /** The same resources as plain objects (what --verify serves). */
  readonly documents: readonly Record<string, unknown>[];
  readonly notes: readonly ConvertNote[];
}

const INGRESS_OF_RULE = /^Ingress (\S+\/\S+)/;

function ingressOfRule(rule: HTTPRoute, fallback: string): string {
  return INGRESS_OF_RULE.exec(rule.name ?? '')?.[1] ?? fallback;
}

/** Istio AuthorizationPolicy `paths` for a rule's uri matches; null when one is a regex. */
function policyPaths(matches: readonly HTTPMatchRequest[]): string[] | null {
  const out: string[] = [];
  for (const m of matches) {
    const u = m.uri;
    if (u === undefined) out.push('*');
    else if ('exact' in u) out.push(u.exact);
    else if ('prefix' in u) out.push(`${u.prefix}*`);
    else return null;
  }
  return out;
}

interface Block {
  readonly doc: Record<string, unknown>;
  readonly comment: string;
  readonly ruleComments: ReadonlyMap<number, string>;
}

export function renderConversion(
  generated: readonly Resource[],
  ingresses: ReadonlyMap<string, Resource>,
  opts: ConvertOptions,
): ConvertOutput {
  const notes: ConvertNote[] = [];
  const said = new Set<string>();
  const note = (ingress: string, kind: ConvertNote['kind'], text: string): string => {
    const key = `${ingress}\u0000${text}`;
    if (!said.has(key)) notes.push({ ingress, kind, text });
    said.add(key);
    return `${kind === 'not-expressed' ? 'NOT EXPRESSED' : 'differs'}: ${text}`;
  };
  const blocks: Block[] = [];
  const policies: { doc: Record<string, unknown>; comment: string }[] = [];
  const providers = new Map<string, Record<string, unknown>>();
  const rateLimits = new Map<
    string,
    {
      namespace: string;
      limits: NonNullable<IngressNginxRoute['rateLimit']>;
      targets: { kind: string; name: string; sectionName: string }[];
    }
  >();
  // Generated Secrets join an Ingress's server certificate and client CA: named, never printed.
  const mtls = new Map<string, { credential: string; ca: string; required: boolean }>();
  for (const r of generated)
    if (r.kind === 'Secret')
      mtls.set(`${r.namespace}/${r.name}`, {
        credential: r.annotations[MTLS_CREDENTIAL] ?? '',
        ca: r.annotations[MTLS_CLIENT_CA] ?? '',
        required: r.annotations[MTLS_VERIFY] === 'on',
      });
  for (const r of generated) {
    if (r.kind === 'Secret') continue;
    const from = r.annotations[GENERATED_FROM] ?? '';
    const firstIngress = from.split(',')[0] ?? '';
    /** `ns/name` → `name`: Istio reads credentialName Secrets from the gateway's namespace. */
    const localCredential = (cred: string, lines: string[]): string => {
      const [ns, name] = cred.split('/') as [string, string];
      if (ns !== opts.gatewayNamespace)
        lines.push(
          note(
            firstIngress,
            'difference',
            `Istio reads credentialName from the gateway's namespace: copy Secret ${ns}/${name} to ${opts.gatewayNamespace} (ingress-nginx read it from the Ingress's namespace)`,
          ),
        );
      return name;
    };
    const meta = {
      name: r.name,
      namespace: r.namespace,
      annotations: { [CONVERTED_FROM]: from },
    };
    if (r.kind === 'Gateway') {
      const spec = r.spec as GatewaySpec;
      const lines = [
        `Gateway for the Ingresses ${from.split(',').join(', ')}: port 80 plain HTTP, 443 HTTPS for their tls hosts.`,
      ];
      const servers = spec.servers.map((s) => {
        const cred = s.tls?.credentialName;
        if (s.tls === undefined || cred === undefined || !cred.includes('/')) return s;
        const joined = mtls.get(cred);
        if (joined === undefined)
          return { ...s, tls: { ...s.tls, credentialName: localCredential(cred, lines) } };
        // auth-tls: Istio reads the client CA from <credentialName>-cacert.
        const name = localCredential(joined.credential, lines);
        lines.push(
          note(
            firstIngress,
            'difference',
            `auth-tls-secret ${joined.ca}: create Secret ${opts.gatewayNamespace}/${name}-cacert with its ca.crt (Istio reads a server's client CA there); hosts ${s.hosts.join(', ')} then verify clients per SNI`,
          ),
          note(
            firstIngress,
            'difference',
            `auth-tls-verify-client ${joined.required ? 'on → MUTUAL: Istio refuses the TLS handshake where nginx answers HTTP 400 (auth-tls-error-page cannot be expressed)' : 'optional → OPTIONAL_MUTUAL'}`,
          ),
        );
        return {
          ...s,
          tls: {
            ...s.tls,
            mode: joined.required ? ('MUTUAL' as const) : ('OPTIONAL_MUTUAL' as const),
            credentialName: name,
          },
        };
      });
      blocks.push({
        doc: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'Gateway',
          metadata: meta,
          spec: { selector: { ...opts.selector }, servers },
        },
        comment: lines.join('\n'),
        ruleComments: new Map(),
      });
      continue;
    }
    if (r.kind === 'VirtualService') {
      const spec = r.spec as VirtualServiceSpec;
      const ruleComments = new Map<number, string>();
      const http = (spec.http ?? []).map((rule, i) => {
        const ing = ingressOfRule(rule, firstIngress);
        const lines: string[] = [`from ${rule.name ?? `Ingress ${ing}`}`];
        const annotations = ingresses.get(ing)?.annotations ?? {};
        const { ingressNginx, ...istio } = rule;
        if (rule.match?.some((m) => m.uri !== undefined && 'regex' in m.uri) === true)
          lines.push(
            note(
              ing,
              'difference',
              `ingress-nginx regex location ~* "^path" (case-insensitive, a prefix) written as an RE2 full match (?i)(?:path).* — the same requests match; PCRE-only syntax would not`,
            ),
          );
        if (rule.redirect?.scheme === 'https' && rule.redirect.redirectCode === 308)
          lines.push(
            'ssl-redirect: plain HTTP → HTTPS with 308 as ingress-nginx does (a Gateway tls.httpsRedirect would answer 301)',
          );
        if (rule.rewrite?.uriRegexRewrite !== undefined)
          lines.push(
            `rewrite-target ${annotations[`${NGINX_PREFIX}rewrite-target`] ?? ''}: nginx rewrite replaces the whole path ($n → \\n); the query is kept`,
          );
        if (rule.corsPolicy !== undefined)
          lines.push(
            note(
              ing,
              'difference',
              'enable-cors: Envoy answers preflights 200 (nginx 204) and echoes the allowed Origin (nginx sends "*" for a "*" origin)',
            ),
          );
        if (ingressNginx !== undefined) {
          const explicit = annotations[`${NGINX_PREFIX}proxy-body-size`];
          const size = explicit === undefined ? null : parseNginxSize(explicit);
          if (ingressNginx.maxBodyBytes > 0 && explicit !== undefined && size !== 0)
            lines.push(
              note(
                ing,
                'not-expressed',
                `proxy-body-size ${explicit}: Istio has no request body limit (sluice serving the Ingress answers 413)`,
              ),
            );
          else if (ingressNginx.maxBodyBytes > 0 && i === 0)
            lines.push(
              note(
                ing,
                'difference',
                "ingress-nginx's default proxy-body-size 1m (413 above it) has no Istio equivalent: bodies are not limited",
              ),
            );
          if (ingressNginx.basicAuth !== undefined)
            lines.push(
              note(
                ing,
                'not-expressed',
                'auth-type basic: Istio has no basic authentication, so this rule lets every request through; put a CUSTOM (ext-authz) or JWT policy in front before applying it',
              ),
            );
          for (const t of NGINX_TIMEOUTS) {
            const set = annotations[NGINX_PREFIX + t.annotation];
            if (set !== undefined)
              lines.push(note(ing, 'not-expressed', `${t.annotation} ${set}: ${t.notExpressed}`));
            else if (ingressNginx[t.field] !== undefined && i === 0)
              lines.push(
                note(ing, 'difference', `ingress-nginx's default ${t.annotation} 60 s ${t.byDefault}`),
              );
          }
          const pages = ingressNginx.errorPages;
          if (pages !== undefined) {
            const backend = annotations[`${NGINX_PREFIX}default-backend`];
            if (pages.codes.length > 0)
              lines.push(
                note(
                  ing,
                  'not-expressed',
                  `custom-http-errors ${pages.codes.join(',')}: Istio cannot replace an upstream's error answer with another backend's, so clients get the upstream's own (sluice serving the Ingress sends ${backend === undefined ? 'a built-in 404' : `default-backend ${backend}'s answer to a request with X-Code, X-Format, X-Original-URI …`})`,
                ),
              );
            if (backend !== undefined)
              lines.push(
                note(
                  ing,
                  'not-expressed',
                  `default-backend ${backend}: Istio has no fallback for a Service without endpoints, so such requests get 503 (sluice serving the Ingress forwards them to ${backend} with X-Code 503)`,
                ),
              );
          }
          const limits = ingressNginx.rateLimit;
          if (limits !== undefined && rule.name !== undefined) {
            const key = `${r.namespace}/${limits.ingress}`;
            const entry = rateLimits.get(key) ?? { namespace: r.namespace, limits, targets: [] };
            entry.targets.push({ kind: 'VirtualService', name: r.name, sectionName: rule.name });
            rateLimits.set(key, entry);
            lines.push(
              note(
                ing,
                'difference',
                `limit-rps/limit-rpm/limit-connections → a RateLimitPolicy on this rule (${limits.storage}, per client IP): over the limit Istio-style answers 429 with Retry-After where ingress-nginx answers 503, and the count comes after authorization policies (nginx counts before auth)`,
              ),
            );
          }
          // An AuthorizationPolicy on the gateway for this rule's hosts and paths (regex paths cannot be said).
          const operationOf = (what: string, lost: string): { hosts: string[]; paths: string[] } | null => {
            const paths = policyPaths(rule.match ?? []);
            if (paths !== null) return { hosts: spec.hosts.flatMap((h) => [h, `${h}:*`]), paths };
            lines.push(
              note(
                ing,
                'not-expressed',
                `${what} on a regex path: AuthorizationPolicy paths cannot be regexes; ${lost}`,
              ),
            );
            return null;
          };
          const addPolicy = (prefix: string, comment: string, policy: Record<string, unknown>): string => {
            const name = `${prefix}-${policies.length}`;
            policies.push({
              comment,
              doc: {
                apiVersion: 'security.istio.io/v1',
                kind: 'AuthorizationPolicy',
                metadata: {
                  name,
                  namespace: opts.gatewayNamespace,
                  annotations: { [CONVERTED_FROM]: ing },
                },
                spec: { selector: { matchLabels: { ...opts.selector } }, ...policy },
              },
            });
            return `${opts.gatewayNamespace}/${name}`;
          };
          const cc = ingressNginx.clientCertificate;
          if (cc !== undefined) {
            lines.push(
              note(
                ing,
                'difference',
                'auth-tls: Istio sends no ssl-client-verify / ssl-client-subject-dn / ssl-client-issuer-dn headers (its gateway can forward X-Forwarded-Client-Cert instead: meshConfig gatewayTopology.forwardClientCertDetails)',
              ),
            );
            if (cc.passCertificate)
              lines.push(
                note(
                  ing,
                  'not-expressed',
                  'auth-tls-pass-certificate-to-upstream: Istio has no ssl-client-cert header; the upstream gets the certificate only through X-Forwarded-Client-Cert (forwardClientCertDetails APPEND_FORWARD with the Cert detail)',
                ),
              );
            if (cc.errorPage !== null)
              lines.push(
                note(
                  ing,
                  'not-expressed',
                  `auth-tls-error-page ${cc.errorPage}: Istio refuses the handshake and cannot redirect`,
                ),
              );
          }
          if (ingressNginx.externalAuth !== undefined) {
            const ext = ingressNginx.externalAuth;
            const provider = extAuthzProviderOf(ext, providers);
            const operation = operationOf(
              'auth-url',
              'this rule is NOT checked by the auth service; add a CUSTOM policy by hand before applying it',
            );
            if (operation !== null) {
              const name = addPolicy(
                'ingress-auth',
                `auth-url ${ext.url} as a CUSTOM policy with the ext_authz provider ${provider}.`,
                {
                  action: 'CUSTOM',
                  provider: { name: provider },
                  rules: [{ to: [{ operation }] }],
                },
              );
              lines.push(`auth-url → AuthorizationPolicy ${name} (CUSTOM, provider ${provider})`);
            }
            for (const text of externalAuthDifferences(ext)) lines.push(note(ing, 'difference', text));
            if (ext.signin !== null)
              lines.push(
                note(
                  ing,
                  'not-expressed',
                  `auth-signin ${ext.signin}: Istio's ext_authz passes the auth service's 401 to the client; it cannot turn it into a 302 to the sign-in page (have the auth service answer the redirect itself)`,
                ),
              );
          }
          const allow = ingressNginx.allowSourceRanges ?? [];
          const deny = ingressNginx.denySourceRanges ?? [];
          const operation =
            allow.length > 0 || deny.length > 0
              ? operationOf('whitelist/denylist-source-range', 'the range is not enforced')
              : null;
          if (operation !== null) {
            const to = [{ operation }];
            const rules = [
              ...(allow.length > 0 ? [{ from: [{ source: { notRemoteIpBlocks: allow } }], to }] : []),
              ...(deny.length > 0 ? [{ from: [{ source: { remoteIpBlocks: deny } }], to }] : []),
            ];
            const name = addPolicy(
              'ingress-source-range',
              'whitelist/denylist-source-range as a DENY policy on the gateway.',
              {
                action: 'DENY',
                rules,
              },
            );
            lines.push(
              `whitelist/denylist-source-range → AuthorizationPolicy ${name} (DENY, 403 "RBAC: access denied" where nginx answers 403 Forbidden)`,
            );
          }
        }
        ruleComments.set(i, lines.join('\n'));
        return istio;
      });
      blocks.push({
        doc: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: meta,
          spec: spec.http === undefined ? spec : { ...spec, http },
        },
        comment: `Host ${spec.hosts.join(', ')}: every path of the Ingresses ${from.split(',').join(', ')}, in ingress-nginx's location order.`,
        ruleComments,
      });
      continue;
    }
    const dr = r.spec as DestinationRuleSpec;
    const lines = [
      `Backend ${dr.host}: ingress-nginx's proxy-connect-timeout (5 s unless set), backend-protocol, proxy-ssl-* and session affinity, from ${from}.`,
    ];
    const portLevelSettings = (dr.trafficPolicy?.portLevelSettings ?? []).map((p) => {
      const cred = p.tls?.credentialName;
      if (p.tls === undefined || cred === undefined || !cred.includes('/')) return p;
      const name = localCredential(cred, lines);
      if (p.tls.sni === undefined)
        lines.push(
          note(
            firstIngress,
            'difference',
            "proxy-ssl-server-name off: nginx sends no SNI to the backend, Istio sends the request's Host",
          ),
        );
      return { ...p, tls: { ...p.tls, credentialName: name } };
    });
    blocks.push({
      doc: {
        apiVersion: 'networking.istio.io/v1',
        kind: r.kind,
        metadata: meta,
        spec:
          dr.trafficPolicy === undefined
            ? dr
            : { ...dr, trafficPolicy: { ...dr.trafficPolicy, portLevelSettings } },
      },
      comment: lines.join('\n'),
      ruleComments: new Map(),
    });
  }
  if (providers.size > 0)
    blocks.push({
      doc: {
        apiVersion: 'sluice.dev/v1alpha1',
        kind: 'MeshConfig',
        metadata: { name: 'mesh', namespace: opts.gatewayNamespace },
        spec: { extensionProviders: [...providers.values()] },
      },
      comment:
        'auth-url services as ext_authz providers. In Istio these entries go under meshConfig.extensionProviders (the istio ConfigMap or IstioOperator), not in a resource of their own.',
      ruleComments: new Map(),
    });
  for (const p of policies) blocks.push({ doc: p.doc, comment: p.comment, ruleComments: new Map() });
  for (const { namespace, limits, targets } of rateLimits.values())
    for (const p of rateLimitPoliciesOf(namespace, limits, targets))
      blocks.push({ doc: p.doc, comment: p.comment, ruleComments: new Map() });
  const text = blocks.map(renderBlock).join('---\n');
  return { yaml: text, documents: blocks.map((b) => b.doc), notes };
}

/**
 * auth-url as an `envoyExtAuthzHttp` provider (one per distinct auth service setting, named in
 * order); returns its name. What Istio's check cannot say is in externalAuthDifferences.
 */
function extAuthzProviderOf(
  ext: IngressExternalAuth,
  providers: Map<string, Record<string, unknown>>,
): string {
  const u = new URL(ext.url);
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  const http = {
    service: u.hostname,
    port,
    ...(u.pathname !== '/' ? { pathPrefix: u.pathname.replace(/\/$/, '') } : {}),
    timeout: '60s',
    // nginx answers 500 when the auth service fails; Istio's default would be 403.
    statusOnError: '500',
    includeRequestHeadersInCheck: ['cookie', 'authorization', 'x-*'],
    includeAdditionalHeadersInCheck: { 'x-sent-from': 'nginx-ingress-controller' },
    ...(ext.responseHeaders.length > 0
      ? { headersToUpstreamOnAllow: ext.responseHeaders.map((h) => h.toLowerCase()) }
      : {}),
    headersToDownstreamOnAllow: ['set-cookie'],
    headersToDownstreamOnDeny: ['www-authenticate', ...(ext.alwaysSetCookie ? ['set-cookie'] : [])],
  };
  const key = JSON.stringify(http);
  const known = providers.get(key);
  if (known !== undefined) return String(known['name']);
  const name = `ingress-auth-${providers.size}`;
  providers.set(key, { name, envoyExtAuthzHttp: http });
  return name;
}

/** Where Istio's ext_authz check differs from nginx's auth_request for this auth-url. */
function externalAuthDifferences(ext: IngressExternalAuth): string[] {
  const out = [
    `auth-url: Istio sends the client's method and path (after pathPrefix) and only cookie, authorization and x-* headers; nginx sends ${ext.method ?? 'GET'} to the auth URL's own path with every client header plus X-Original-URL, X-Original-Method, X-Real-IP, X-Forwarded-For and X-Auth-Request-Redirect (the auth service must not rely on those)`,
    'auth-url: Istio allows only a 200 and passes any other 2xx-4xx answer (with its body) to the client; nginx allows any 2xx, passes 401/403 with its own page and answers 500 for the rest',
  ];
  if (ext.responseHeaders.length > 0)
    out.push(
      `auth-response-headers ${ext.responseHeaders.join(', ')}: Istio sets them when the auth service sends them but lets a client-sent value through when it does not (nginx removes it): have the auth service always send them, or strip them in front`,
    );
  if (ext.url.startsWith('https:'))
    out.push(
      `auth-url is https: Istio needs a DestinationRule with tls mode SIMPLE for ${new URL(ext.url).hostname} (nginx does not verify the auth service's certificate)`,
    );
  return out;
}

/**
 * ingress-nginx's zones as RateLimitPolicy rules, the token buckets as the translation sized them.
 * Global (sluice.dev/limit-storage) puts the rates in a policy of their own: an inFlight rule
 * has no Global storage, so limit-connections stays in a Local one.
 */
function rateLimitPoliciesOf(
  namespace: string,
  limits: NonNullable<IngressNginxRoute['rateLimit']>,
  targetRefs: readonly { kind: string; name: string; sectionName: string }[],
): { doc: Record<string, unknown>; comment: string }[] {
  const key = [{ remoteAddress: {} }];
  const exempt = limits.exempt.length > 0 ? { exempt: { remoteIpBlocks: [...limits.exempt] } } : {};
  const local: Record<string, unknown>[] = [];
  const rules: Record<string, unknown>[] = limits.storage === 'Global' ? [] : local;
  if (limits.connections > 0)
    local.push({ name: 'limit-connections', key, limit: { inFlight: limits.connections }, ...exempt });
  for (const [name, bucket, unit] of [
    ['limit-rps', limits.perSecond, 'Second'],
    ['limit-rpm', limits.perMinute, 'Minute'],
  ] as const)
    if (bucket !== null)
      rules.push({
        name,
        algorithm: 'TokenBucket',
        key,
        limit: { requests: bucket.requests, unit, burst: bucket.burst },
        ...exempt,
      });
  const [ns, name] = limits.ingress.split('/') as [string, string];
  const base = `ingress-limits-${ns === namespace ? name : `${ns}-${name}`}`;
  const policy = (suffix: string, storage: string, list: Record<string, unknown>[]) => ({
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'RateLimitPolicy',
    metadata: {
      name: base + suffix,
      namespace,
      annotations: { [CONVERTED_FROM]: limits.ingress },
    },
    spec: { targetRefs: [...targetRefs], storage, rules: list },
  });
  const about = `limit-* of Ingress ${limits.ingress}: per client IP, shared by its paths (one bucket set per Ingress, as ingress-nginx's zones)`;
  const perProcess = 'counted in each gateway process as ingress-nginx counts per replica.';
  if (limits.storage === 'Local')
    return [{ doc: policy('', 'Local', local), comment: `${about}, ${perProcess}` }];
  const out = [
    {
      doc: policy('', 'Global', rules),
      comment: `${about}, counted in Redis and shared by every gateway replica (sluice.dev/limit-storage: Global); the gateway serving it needs a MeshConfig with redis.`,
    },
  ];
  if (local.length > 0)
    out.push({
      doc: policy('-connections', 'Local', local),
      comment: `limit-connections of Ingress ${limits.ingress}: requests in flight have no Global storage, so they are ${perProcess}`,
    });
  return out;
}

function renderBlock(b: Block): string {
  const doc = new Document(b.doc);
  doc.commentBefore = ` ${b.comment.split('\n').join('\n ')}`;
  const http = doc.getIn(['spec', 'http'], true);
  if (http instanceof YAMLSeq) {
    http.items.forEach((item, i) => {
      const c = b.ruleComments.get(i);
      if (c !== undefined && isMap(item)) (item as YAMLMap).commentBefore = ` ${c.split('\n').join('\n ')}`;
    });
  }
  return doc.toString({ lineWidth: 0 });
}

/** The summary: per Ingress, what differs and what could not be expressed. */
export function renderSummary(notes: readonly ConvertNote[], extra: readonly string[]): string {
  const lines: string[] = [];
  const lost = notes.filter((n) => n.kind === 'not-expressed');
  for (const n of notes)
    lines.push(
      `${n.kind === 'not-expressed' ? 'NOT EXPRESSED' : 'differs      '} Ingress ${n.ingress}: ${n.text}`,
    );
  lines.push(...extra);
  lines.push(
    lost.length === 0 && extra.length === 0
      ? 'everything was expressed in Istio YAML'
      : `${lost.length + extra.length} thing(s) could not be expressed; see above`,
  );
  return lines.join('\n') + '\n';
}

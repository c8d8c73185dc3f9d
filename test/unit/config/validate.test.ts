import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import type { Diagnostic } from '../../../src/errors/diagnostic.ts';

function load(text: string) {
  return loadResources([{ file: 'v.yaml', text }], { defaultNamespace: 'default' });
}

function found(ds: readonly Diagnostic[], level: string) {
  return ds.filter((d) => d.level === level).map((d) => `${d.code} ${d.path ?? ''}: ${d.message}`);
}

const gw = (servers: string, name = 'gw') => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}}
spec:
  servers:
${servers}`;

const vs = (spec: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
${spec}`;

const route = '  http:\n  - route: [{destination: {host: a}}]\n';

const dr = (spec: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d}
spec:
${spec}`;

const se = (spec: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
${spec}`;

const ra = (spec: string) => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra}
spec:
${spec}`;

const ap = (spec: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ap}
spec:
${spec}`;

const HTTP80 = '  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*.example.com"]\n';

/** [name, document, expected error text (code path: message substring)] */
const ERRORS: [string, string, string][] = [
  [
    'GW-4 at least one server',
    'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {servers: []}\n',
    'SLUICE_CONFIG_INVALID spec.servers: gateway must have at least one server',
  ],
  [
    'GW-4 port names unique',
    gw(HTTP80 + HTTP80),
    'SLUICE_CONFIG_INVALID spec.servers[1].port.name: port names in servers must be unique: duplicate name http',
  ],
  [
    'GW-4 gateway name is a DNS label',
    gw(HTTP80, 'my.gw'),
    'SLUICE_CONFIG_INVALID metadata.name: invalid gateway name "my.gw"',
  ],
  [
    'GW-4 hosts required',
    gw('  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: []\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].hosts: server config must contain at least one host',
  ],
  [
    'GW-7 short host',
    gw('  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [shop]\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].hosts[0]: short names (non FQDN) are not allowed',
  ],
  [
    'GW-7 bad namespace',
    gw('  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["Bad_NS/a.example.com"]\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].hosts[0]: invalid namespace value "Bad_NS" in gateway',
  ],
  [
    'GW-7 wildcard not leftmost',
    gw('  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["a.*.example.com"]\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].hosts[0]: domain name "a.*.example.com" invalid',
  ],
  [
    'GW-4 HTTPS needs tls',
    gw('  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].tls: server must have TLS settings for HTTPS',
  ],
  [
    'GW-4 HTTP tls only httpsRedirect',
    gw(
      '  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["a.example.com"]\n    tls: {mode: SIMPLE, credentialName: c}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.servers[0].tls: server cannot have TLS settings for plain text HTTP ports',
  ],
  [
    'GW-4 TCP no tls',
    gw(
      '  - port: {number: 31400, name: tcp, protocol: TCP}\n    hosts: ["a.example.com"]\n    tls: {httpsRedirect: true}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.servers[0].tls: server cannot have TLS settings for non HTTPS/TLS ports',
  ],
  [
    'GW-16 SIMPLE needs a certificate',
    gw(
      '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: SIMPLE}\n',
    ),
    'SLUICE_TLS_CONFIG spec.servers[0].tls.serverCertificate: SIMPLE TLS requires a server certificate',
  ],
  [
    'GW-13 ISTIO_MUTUAL takes no files',
    gw(
      '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: ISTIO_MUTUAL, privateKey: /k}\n',
    ),
    'SLUICE_TLS_CONFIG spec.servers[0].tls.privateKey: ISTIO_MUTUAL TLS cannot have an associated privateKey',
  ],
  [
    'GW-15 one certificate source',
    gw(
      '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: SIMPLE, credentialName: a, credentialNames: [b]}\n',
    ),
    'SLUICE_TLS_CONFIG spec.servers[0].tls: only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates may be set',
  ],
  [
    'VS-3 hosts required unless delegate (gateways)',
    vs('  hosts: []\n  gateways: [gw]\n' + route),
    'SLUICE_CONFIG_INVALID spec.gateways: a delegate VirtualService (no hosts) must have no gateways',
  ],
  [
    'VS-3 * not with mesh',
    vs('  hosts: ["*"]\n' + route),
    'SLUICE_CONFIG_INVALID spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway',
  ],
  [
    'VS-3 overlapping hosts',
    vs('  hosts: ["*.example.com", a.example.com]\n  gateways: [gw]\n' + route),
    'SLUICE_CONFIG_INVALID spec.hosts[1]: duplicate hosts in virtual service: *.example.com & a.example.com',
  ],
  [
    'VS-3 http, tcp or tls',
    vs('  hosts: [a.example.com]\n  gateways: [gw]\n'),
    'SLUICE_CONFIG_INVALID spec: http, tcp or tls must be provided in virtual service',
  ],
  [
    'VS one action per route',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: a}}]\n    redirect: {uri: /x}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].redirect: HTTP route may have only one of route, redirect, directResponse, delegate; got route and redirect',
  ],
  [
    'VS an action is required',
    vs('  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - timeout: 1s\n'),
    'SLUICE_CONFIG_INVALID spec.http[0]: HTTP route, redirect, directResponse or delegate is required',
  ],
  [
    'VS-15 redirect codes',
    vs('  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - redirect: {uri: /x, redirectCode: 305}\n'),
    'SLUICE_CONFIG_INVALID spec.http[0].redirect.redirectCode: redirect code must be 301, 302, 303, 307 or 308, got 305',
  ],
  [
    'VS-20 weights not all zero',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - route:\n    - {destination: {host: a}, weight: 0}\n    - {destination: {host: b}, weight: 0}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].route: total destination weight is 0',
  ],
  [
    'VS-20 weights not negative',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - route:\n    - {destination: {host: a}, weight: -5}\n    - {destination: {host: b}, weight: 10}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].route[0].weight: weight must not be negative, got -5',
  ],
  [
    'VS-8 regex must be RE2',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - match: [{uri: {regex: "/a(?=b)"}}]\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_REGEX_INVALID spec.http[0].match[0].uri.regex: not a valid RE2 regex',
  ],
  [
    'VS-8 regex at most 1024 characters',
    vs(
      `  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - match: [{headers: {x: {regex: "${'a'.repeat(1025)}"}}}]\n    route: [{destination: {host: a}}]\n`,
    ),
    'SLUICE_REGEX_INVALID spec.http[0].match[0].headers.x.regex: regex is 1025 characters long',
  ],
  [
    'VS-8 empty regex',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - match: [{authority: {regex: ""}}]\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_REGEX_INVALID spec.http[0].match[0].authority.regex: regex must not be empty',
  ],
  [
    'VS-8 empty prefix (not on uri)',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - match: [{method: {prefix: ""}}]\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].match[0].method.prefix: prefix must not be empty',
  ],
  [
    'VS-13 uri and uriRegexRewrite exclusive',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - rewrite: {uri: /b, uriRegexRewrite: {match: "^/a", rewrite: /b}}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].rewrite: rewrite may only contain one of uri and uriRegexRewrite',
  ],
  [
    'VS-13 rewrite refers to a missing group',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - rewrite: {uriRegexRewrite: {match: "^/(a)", rewrite: "/\\\\2"}}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_REGEX_INVALID spec.http[0].rewrite.uriRegexRewrite.rewrite: rewrite refers to group \\2',
  ],
  [
    'VS-17 direct response status',
    vs('  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - directResponse: {status: 600}\n'),
    'SLUICE_CONFIG_INVALID spec.http[0].directResponse.status: status must be in 200..599, got 600',
  ],
  [
    'VS-17 direct response body at most 1 MB',
    vs(
      `  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - directResponse: {status: 200, body: {string: "${'x'.repeat(1024 * 1024 + 1)}"}}\n`,
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].directResponse.body: body is 1048577 bytes; at most 1 MB is allowed',
  ],
  [
    'VS destination host required',
    vs('  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: ""}}]\n'),
    'SLUICE_CONFIG_INVALID spec.http[0].route[0].destination.host: destination host is required',
  ],
  [
    'VS-30 sniHosts within hosts',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  tls:\n  - match: [{sniHosts: [b.example.com]}]\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.tls[0].match[0].sniHosts[0]: SNI host "b.example.com" is not a compatible subset',
  ],
  [
    'VS-26 exponentialDelay',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - fault: {delay: {exponentialDelay: 1s}}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].fault.delay.exponentialDelay: exponentialDelay is not supported',
  ],
  [
    'VS-24 retryOn',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - retries: {attempts: 2, retryOn: "5xx,sometimes"}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].retries.retryOn: "sometimes" is not a valid retryOn policy',
  ],
  [
    'VS-27 mirror and mirrors',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - mirror: {host: m}\n    mirrors: [{destination: {host: n}}]\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].mirrors: mirror and mirrors cannot both be set',
  ],
  ['DR host required', dr('  host: ""\n'), 'SLUICE_CONFIG_INVALID spec.host: host is required'],
  [
    'DR warmup minimumPercent',
    dr('  host: a\n  trafficPolicy: {loadBalancer: {warmup: {duration: 10s, minimumPercent: 150}}}\n'),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy.loadBalancer.warmup.minimumPercent: minimumPercent must be in 0..100, got 150',
  ],
  [
    'DR warmup duration required',
    dr('  host: a\n  trafficPolicy: {loadBalancer: {warmup: {aggression: 2}}}\n'),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy.loadBalancer.warmup.duration: warmup duration is required',
  ],
  [
    'DR warmup aggression',
    dr('  host: a\n  trafficPolicy: {loadBalancer: {warmup: {duration: 1s, aggression: 0.5}}}\n'),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy.loadBalancer.warmup.aggression: aggression must be at least 1, got 0.5',
  ],
  [
    'DR-1 subset names unique',
    dr(
      '  host: a\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v1, labels: {version: v2}}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.subsets[1].name: duplicate subset name "v1"',
  ],
  [
    'DR-8 MUTUAL needs a client certificate',
    dr('  host: a\n  trafficPolicy: {tls: {mode: MUTUAL, privateKey: /k}}\n'),
    'SLUICE_TLS_CONFIG spec.trafficPolicy.tls.clientCertificate: client certificate required for mutual tls',
  ],
  [
    'SE-1 hosts required',
    se('  hosts: []\n'),
    'SLUICE_CONFIG_INVALID spec.hosts: service entry must have at least one host',
  ],
  ['SE-1 not *', se('  hosts: ["*"]\n'), 'SLUICE_CONFIG_INVALID spec.hosts[0]: invalid host *'],
  [
    'SE-1 wildcard leftmost only',
    se('  hosts: ["foo*"]\n'),
    'SLUICE_CONFIG_INVALID spec.hosts[0]: domain name "foo*" invalid',
  ],
  [
    'SE-1 ports unique by number',
    se('  hosts: [a.com]\n  ports: [{number: 80, name: a}, {number: 80, name: b}]\n'),
    'SLUICE_CONFIG_INVALID spec.ports[1].number: port number cannot be duplicated: 80',
  ],
  [
    'SE-1 ports unique by name',
    se('  hosts: [a.com]\n  ports: [{number: 80, name: a}, {number: 81, name: a}]\n'),
    'SLUICE_CONFIG_INVALID spec.ports[1].name: duplicate port name "a"',
  ],
  [
    'SE-1 port range',
    se('  hosts: [a.com]\n  ports: [{number: 70000, name: a}]\n'),
    'SLUICE_CONFIG_INVALID spec.ports[0].number: port must be between 1-65535, got 70000',
  ],
  [
    'SE-1 targetPort range',
    se('  hosts: [a.com]\n  ports: [{number: 80, name: a, targetPort: 0}]\n'),
    'SLUICE_CONFIG_INVALID spec.ports[0].targetPort: targetPort must be between 1-65535, got 0',
  ],
  [
    'SE-3 workloadSelector xor endpoints',
    se(
      '  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector: {labels: {app: a}}\n  endpoints: [{address: 1.2.3.4}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.workloadSelector: only one of workloadSelector or endpoints can be set',
  ],
  [
    'SE-2 NONE with endpoints',
    se('  hosts: [a.com]\n  endpoints: [{address: 1.2.3.4}]\n'),
    'SLUICE_CONFIG_INVALID spec.endpoints: NONE resolution cannot set endpoints',
  ],
  [
    'SE-3 CIDR only with NONE/STATIC',
    se('  hosts: [a.com]\n  addresses: [10.0.0.0/8]\n  resolution: DNS\n'),
    'SLUICE_CONFIG_INVALID spec.addresses[0]: CIDR addresses are allowed only for NONE/STATIC resolution types, not DNS',
  ],
  [
    'SE-2 DNS_ROUND_ROBIN at most one endpoint',
    se(
      '  hosts: [a.com]\n  resolution: DNS_ROUND_ROBIN\n  endpoints: [{address: a.com}, {address: b.com}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.endpoints: DNS_ROUND_ROBIN resolution cannot have multiple endpoints (got 2)',
  ],
  [
    'SE-2 DNS without endpoints needs FQDN hosts',
    se('  hosts: ["*.a.com"]\n  resolution: DNS\n'),
    'SLUICE_CONFIG_INVALID spec.hosts[0]: hosts must be FQDNs without wildcards when no endpoints are given for DNS resolution',
  ],
  [
    'SE selector label values',
    se('  hosts: [a.com]\n  workloadSelector: {labels: {app: "*"}}\n'),
    'SLUICE_CONFIG_INVALID spec.workloadSelector.labels.app: wildcard is not supported in selector',
  ],
  [
    'RA targetRef xor selector',
    ra('  selector: {matchLabels: {a: b}}\n  targetRef: {kind: Service, group: "", name: foo}\n'),
    'SLUICE_CONFIG_INVALID spec.targetRef: only one of targetRef, targetRefs or selector can be set',
  ],
  [
    'RA targetRef name',
    ra('  targetRef: {kind: Service, group: ""}\n'),
    'SLUICE_CONFIG_INVALID spec.targetRef.name: targetRef name is required',
  ],
  [
    'RA targetRef namespace',
    ra('  targetRef: {kind: Service, group: "", name: a, namespace: other}\n'),
    'SLUICE_CONFIG_INVALID spec.targetRef.namespace: cross namespace referencing is not currently supported',
  ],
  [
    'RA targetRef group',
    ra('  targetRef: {kind: Service, group: "__", name: a}\n'),
    'SLUICE_CONFIG_INVALID spec.targetRef.group: targetRef group "__" is not a valid API group',
  ],
  [
    'RA targetRef kind',
    ra('  targetRef: {kind: Serv_ice, group: "", name: a}\n'),
    'SLUICE_CONFIG_INVALID spec.targetRef.kind: targetRef kind "Serv_ice" is not a valid kind name',
  ],
  [
    'RA-6 jwks must parse',
    ra('  jwtRules: [{issuer: a, jwks: "{nope"}]\n'),
    'SLUICE_CONFIG_INVALID spec.jwtRules[0].jwks: jwks is not a JSON Web Key Set',
  ],
  [
    'RA-6 jwksUri needs a scheme',
    ra('  jwtRules: [{issuer: a, jwksUri: "example.com/keys"}]\n'),
    'SLUICE_CONFIG_INVALID spec.jwtRules[0].jwksUri: jwksUri must be an http or https URL',
  ],
  [
    'RA-2 fromHeaders name',
    ra('  jwtRules: [{issuer: a, fromHeaders: [{name: "", prefix: "x"}]}]\n'),
    'SLUICE_CONFIG_INVALID spec.jwtRules[0].fromHeaders[0].name: header name is required',
  ],
  [
    'RA-7 claimToHeaders header',
    ra('  jwtRules: [{issuer: a, outputClaimToHeaders: [{header: ":authority", claim: sub}]}]\n'),
    'SLUICE_CONFIG_INVALID spec.jwtRules[0].outputClaimToHeaders[0].header: header must match',
  ],
  [
    'RA-5 issuer present',
    ra('  jwtRules: [{issuer: ""}]\n'),
    'SLUICE_CONFIG_INVALID spec.jwtRules[0].issuer: issuer or jwksUri must be a non-empty string',
  ],
  [
    'RA timeout at least 1ms',
    ra('  jwtRules: [{issuer: a, timeout: 0s}]\n'),
    'SLUICE_CONFIG_INVALID spec.jwtRules[0].timeout: duration must be at least 1ms',
  ],
  [
    'AP-5 serviceAccounts not with namespaces',
    ap('  rules:\n  - from:\n    - source: {serviceAccounts: [a/b], namespaces: [a]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].from[0].source.serviceAccounts: Cannot set serviceAccounts with namespaces or principals',
  ],
  [
    'AP-1 CUSTOM needs a provider',
    ap('  action: CUSTOM\n  rules: [{}]\n'),
    'SLUICE_CONFIG_INVALID spec.provider: CUSTOM action needs provider.name',
  ],
  [
    'AP-1 provider only with CUSTOM',
    ap('  action: DENY\n  provider: {name: x}\n  rules: [{}]\n'),
    'SLUICE_CONFIG_INVALID spec.provider: provider is only allowed with action CUSTOM, not DENY',
  ],
  [
    'AP-5 ipBlocks well-formed',
    ap('  rules:\n  - from:\n    - source: {ipBlocks: [10.0.0.0/33]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].from[0].source.ipBlocks[0]: "10.0.0.0/33" is not a valid CIDR block',
  ],
  [
    'AP-4 ports are numbers',
    ap('  rules:\n  - to:\n    - operation: {ports: [http]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].to[0].operation.ports[0]: "http" is not a valid port',
  ],
  [
    'AP-7 condition keys',
    ap('  rules:\n  - when:\n    - {key: request.colour, values: [red]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].when[0].key: unknown condition key "request.colour"',
  ],
  [
    'AP-7 condition needs values',
    ap('  rules:\n  - when:\n    - {key: source.ip}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].when[0]: at least one of values or notValues must be set for key source.ip',
  ],
  [
    'AP-6 path templates',
    ap('  rules:\n  - to:\n    - operation: {paths: ["/a/{x}/b"]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].to[0].operation.paths[0]: invalid path template "/a/{x}/b"',
  ],
  [
    'AP empty values',
    ap('  rules:\n  - to:\n    - operation: {methods: [""]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].to[0].operation.methods[0]: empty value is not allowed',
  ],
  [
    'AP-3 DENY without rules is rejected',
    ap('  action: DENY\n'),
    'SLUICE_CONFIG_INVALID spec: DENY action without rules never triggers',
  ],
  [
    'AP-1 CUSTOM without rules is rejected',
    ap('  action: CUSTOM\n  provider: {name: ext}\n'),
    'SLUICE_CONFIG_INVALID spec: CUSTOM action without rules never triggers',
  ],
  [
    'AP-1 CUSTOM cannot use namespaces',
    ap('  action: CUSTOM\n  provider: {name: ext}\n  rules:\n  - from: [{source: {namespaces: [a]}}]\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].from[0].source.namespaces: namespaces is not supported with CUSTOM action',
  ],
  [
    'AP-3 empty from',
    ap('  rules:\n  - from: []\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].from: `from` must not be empty',
  ],
  [
    'AP-5 notServiceAccounts not with principals',
    ap('  rules:\n  - from:\n    - source: {notServiceAccounts: [a/b], principals: [x]}\n'),
    'SLUICE_CONFIG_INVALID spec.rules[0].from[0].source.notServiceAccounts: Cannot set serviceAccounts with namespaces or principals',
  ],
  [
    'GW-3 targetPort has no effect on Gateways',
    gw('  - port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}\n    hosts: ["*"]\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].port.targetPort: targetPort has no impact on Gateways',
  ],
  [
    'GW-4 bind must be an IP',
    gw('  - port: {number: 80, name: http, protocol: HTTP}\n    bind: localhost\n    hosts: ["*"]\n'),
    'SLUICE_CONFIG_INVALID spec.servers[0].bind: bind "localhost" is not an IP address or unix:// path',
  ],
  [
    'GW-16 caCrl not with SIMPLE',
    gw(
      '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k, caCrl: /crl}\n',
    ),
    'SLUICE_TLS_CONFIG spec.servers[0].tls.caCrl: caCrl is not supported with SIMPLE TLS',
  ],
  [
    'GW-16 caCrl not with credentialName (the CRL goes in the Secret)',
    gw(
      '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: MUTUAL, credentialName: c, caCrl: /crl}\n',
    ),
    'SLUICE_TLS_CONFIG spec.servers[0].tls.caCrl: caCrl is not supported with credentialName: put the CRL in the credential (Secret key ca.crl beside ca.crt, or crl beside cacert)',
  ],
  [
    'VS-9 claim routing needs a gateway',
    vs(
      '  hosts: [a.example.com]\n  http:\n  - match: [{headers: {"@request.auth.claims.group": {exact: a}}}]\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].match[0].headers["@request.auth.claims.group"]: JWT claim based routing',
  ],
  [
    'VS-23 retries need attempts',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - retries: {retryOn: 5xx}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].retries.attempts: retry policy configured while attempts is 0',
  ],
  [
    'VS-16 redirect scheme',
    vs('  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - redirect: {scheme: ftp}\n'),
    'SLUICE_CONFIG_INVALID spec.http[0].redirect.scheme: invalid redirect scheme "ftp"',
  ],
  [
    'VS-26 gRPC abort status',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - fault: {abort: {grpcStatus: NOPE, percentage: {value: 1}}}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].fault.abort.grpcStatus: gRPC status "NOPE" is not supported',
  ],
  [
    'VS-28 CORS methods',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - corsPolicy: {allowMethods: [get]}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].corsPolicy.allowMethods[0]: "get" is not a supported HTTP method',
  ],
  [
    'VS-21 Host cannot be removed',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - headers: {request: {remove: [Host]}}\n    route: [{destination: {host: a}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.http[0].headers.request.remove[0]: invalid header "Host": cannot remove the Host header here',
  ],
  [
    'DR traffic policy needs a field',
    dr('  host: a\n  trafficPolicy: {}\n'),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy: traffic policy must have at least one field',
  ],
  [
    'DR-4 maglev table size is prime',
    dr(
      '  host: a\n  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}}}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: tableSize must be a prime number for maglev, got 1000',
  ],
  [
    'DR-7 local origin failures need split',
    dr('  host: a\n  trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 3}}\n'),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true',
  ],
  [
    'DR-6 UPGRADE with useClientProtocol',
    dr(
      '  host: a\n  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}\n',
    ),
    'SLUICE_CONFIG_INVALID spec.trafficPolicy.connectionPool.http.useClientProtocol: useClientProtocol must not be true when h2UpgradePolicy is UPGRADE',
  ],
  [
    'SE-3 several hosts need HTTP or TLS ports',
    se('  hosts: [a.com, b.com]\n  resolution: DNS\n  ports: [{number: 9000, name: tcp, protocol: TCP}]\n'),
    'SLUICE_CONFIG_INVALID spec.ports[0]: multiple hosts provided with non-HTTP, non-TLS ports',
  ],
  [
    'SE-3 endpoint ports must be declared',
    se(
      '  hosts: [a.com]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.1, ports: {grpc: 9000}}]\n',
    ),
    'SLUICE_CONFIG_INVALID spec.endpoints[0].ports.grpc: endpoint port grpc is not defined by the service entry',
  ],
  [
    'SE-2 STATIC needs IP endpoints',
    se('  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: b.com}]\n'),
    'SLUICE_CONFIG_INVALID spec.endpoints[0].address: endpoint address "b.com" is not a valid IP address',
  ],
];

describe('validate: rules Istio enforces', () => {
  it.each(ERRORS)('%s', (_name, text, expected) => {
    const r = load(text);
    const errors = found(r.diagnostics, 'error');
    expect(
      errors.some((e) => e.startsWith(expected)),
      `wanted "${expected}" in:\n${errors.join('\n')}`,
    ).toBe(true);
    expect(r.resources.resources).toEqual([]);
  });
});

const VALID: [string, string][] = [
  [
    'GW-7 namespace-qualified and wildcard hosts',
    gw(
      '  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["./a.example.com", "*/b.example.com", "ns1/*.example.com", "*", "*foo.example.com", "10.0.0.1"]\n',
    ),
  ],
  [
    'GW-18 HTTP with httpsRedirect only',
    gw(
      '  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["a.example.com"]\n    tls: {httpsRedirect: true}\n',
    ),
  ],
  [
    'GW-15 SIMPLE with credentialName',
    gw(
      '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: SIMPLE, credentialName: cert}\n',
    ),
  ],
  ['VS-18 delegate VirtualService (no hosts)', vs('  hosts: []\n' + route)],
  [
    'VS-20 weights above 100 are shares',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - route:\n    - {destination: {host: a}, weight: 150}\n    - {destination: {host: b}, weight: 50}\n',
    ),
  ],
  [
    'VS-13 uriRegexRewrite with \\1',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - rewrite: {uriRegexRewrite: {match: "^/a/(.*)", rewrite: "/b/\\\\1"}}\n    route: [{destination: {host: a}}]\n',
    ),
  ],
  [
    'VS-8 empty prefix on uri',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - match: [{uri: {prefix: ""}}]\n    route: [{destination: {host: a}}]\n',
    ),
  ],
  [
    'VS-9 claim-based header match',
    vs(
      '  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - match: [{headers: {"@request.auth.claims.groups": {exact: g1}}}]\n    route: [{destination: {host: a}}]\n',
    ),
  ],
  [
    'SE-2 STATIC with endpoints',
    se(
      '  hosts: [a.com]\n  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.1, ports: {http: 8080}}]\n',
    ),
  ],
  [
    'AP-3 spec {} is deny all',
    'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny}\nspec: {}\n',
  ],
];

describe('validate: accepted configuration', () => {
  it.each(VALID)('%s', (_name, text) => {
    const r = load(text);
    expect(found(r.diagnostics, 'error')).toEqual([]);
    expect(r.resources.resources).toHaveLength(1);
  });
});

describe('validate: warnings and notes', () => {
  it('GW-6 HTTPS with a certificate but no tls.mode warns loudly (it is PASSTHROUGH)', () => {
    const r = load(
      gw(
        '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {credentialName: cert}\n',
      ),
    );
    expect(found(r.diagnostics, 'warning')).toEqual([
      'SLUICE_TLS_CONFIG spec.servers[0].tls.mode: tls.mode is not set, so it is PASSTHROUGH (GW-6): the certificate is IGNORED and TLS is not terminated here; set mode: SIMPLE to terminate TLS',
    ]);
    expect(r.resources.resources).toHaveLength(1);
  });

  it('GW-16 caCrl with MUTUAL files is accepted; with credentialNames it is ignored, with a warning', () => {
    const files = load(
      gw(
        '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k, caCertificates: /ca, caCrl: /crl}\n',
      ),
    );
    expect(files.diagnostics).toEqual([]);
    const named = load(
      gw(
        '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {mode: MUTUAL, credentialNames: [a, b], caCrl: /crl}\n',
      ),
    );
    expect(found(named.diagnostics, 'warning')).toEqual([
      'SLUICE_TLS_CONFIG spec.servers[0].tls.caCrl: caCrl is ignored with credentialNames: the CRL is read from the credential (Secret key ca.crl beside ca.crt, or crl beside cacert)',
    ]);
    expect(named.resources.resources).toHaveLength(1);
  });

  it('GW-5 a TLS server without mode or certificate is plain SNI passthrough: no warning', () => {
    const r = load(
      gw('  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: ["a.example.com"]\n    tls: {}\n'),
    );
    expect(r.diagnostics).toEqual([]);
  });

  it('GW-6 an HTTPS server without tls.mode warns even without a certificate', () => {
    const r = load(
      gw(
        '  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ["a.example.com"]\n    tls: {}\n',
      ),
    );
    expect(found(r.diagnostics, 'warning')).toEqual([
      'SLUICE_TLS_CONFIG spec.servers[0].tls.mode: tls.mode is not set, so it is PASSTHROUGH (GW-6): TLS is passed through by SNI, not terminated',
    ]);
  });

  it('DR-8 ISTIO_MUTUAL origination and DR-5 locality settings are accepted with a warning', () => {
    const r = load(
      dr(
        '  host: a\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n    loadBalancer: {localityLbSetting: {enabled: true}}\n',
      ),
    );
    expect(r.resources.resources).toHaveLength(1);
    expect(r.diagnostics.map((d) => `${d.level} ${d.code} ${d.path} ${d.unsupported}`)).toEqual([
      'warning SLUICE_CONFIG_UNSUPPORTED spec.trafficPolicy.loadBalancer.localityLbSetting trafficPolicy.loadBalancer.localityLbSetting',
      'warning SLUICE_CONFIG_UNSUPPORTED spec.trafficPolicy.tls.mode trafficPolicy.tls.mode=ISTIO_MUTUAL',
    ]);
  });

  it('VS-1 a VirtualService without gateways is mesh-only (info)', () => {
    const r = load(vs('  hosts: [a.example.com]\n' + route));
    expect(found(r.diagnostics, 'error')).toEqual([]);
    expect(found(r.diagnostics, 'info')).toEqual([
      'SLUICE_ANALYSIS spec.gateways: no gateways: this VirtualService applies to the mesh only (VS-1), and a gateway ignores it',
    ]);
  });

  it('VS-17 direct response body above 100 KB warns', () => {
    const r = load(
      vs(
        `  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n  - directResponse: {status: 200, body: {string: "${'x'.repeat(100 * 1024 + 1)}"}}\n`,
      ),
    );
    expect(found(r.diagnostics, 'warning')[0]).toContain('body is 102401 bytes');
  });
});

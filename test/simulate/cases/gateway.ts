import { gatewayYaml } from '../compile-yaml.ts';
import type { SimCase } from '../simulate.ts';

const http8080 = (hosts: string): string =>
  `  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ${hosts}`;

function vs(
  name: string,
  hosts: string,
  http: string,
  opts: { ns?: string; gateways?: string; extra?: string } = {},
): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${opts.ns ?? 'istio-system'}${opts.extra ?? ''}}
spec:
  hosts: ${hosts}
  gateways: ${opts.gateways ?? '[istio-system/gw]'}
  http:
${http}
`;
}

const direct = (status: number): string => `  - directResponse: {status: ${status}}`;

/** GW-* cases: YAML + calls → what the gateway does. */
export const GATEWAY_CASES: SimCase[] = [
  {
    name: 'GW-9 server wildcard + VS exact names the vhost after the VS host; no vhost for the bare wildcard',
    config:
      gatewayYaml('gw', http8080('["*.example.com"]')) +
      vs('a', '[a.example.com]', direct(200)) +
      vs('b', '[b.example.com]', direct(201)),
    calls: [
      { name: 'a', authority: 'a.example.com', want: { vhost: 'a.example.com', status: 200 } },
      { name: 'b', authority: 'b.example.com', want: { vhost: 'b.example.com', status: 201 } },
      { name: 'c gets 404', authority: 'c.example.com', want: { vhost: null, status: 404, flag: 'NR' } },
    ],
  },
  {
    name: 'GW-9 server exact + VS wildcard names the vhost after the server host',
    config: gatewayYaml('gw', http8080('[a.example.com]')) + vs('w', '["*.example.com"]', direct(200)),
    calls: [
      { name: 'a', authority: 'a.example.com', want: { vhost: 'a.example.com', status: 200 } },
      { name: 'b not served', authority: 'b.example.com', want: { vhost: null, status: 404 } },
    ],
  },
  {
    name: 'GW-9 server * + VS *.example.com → vhost *.example.com',
    config: gatewayYaml('gw', http8080('["*"]')) + vs('w', '["*.example.com"]', direct(200)),
    calls: [
      { name: 'sub', authority: 'x.example.com', want: { vhost: '*.example.com', status: 200 } },
      { name: 'apex not covered', authority: 'example.com', want: { vhost: null, status: 404 } },
    ],
  },
  {
    name: 'GW-10 the Host port is ignored and host matching is case-insensitive',
    config: gatewayYaml('gw', http8080('["*.example.com"]')) + vs('w', '["*.example.com"]', direct(200)),
    calls: [
      { name: 'port', authority: 'foo.example.com:12345', want: { vhost: '*.example.com', status: 200 } },
      { name: 'case', authority: 'FOO.Example.COM', want: { vhost: '*.example.com', status: 200 } },
      {
        name: 'a trailing dot is the same name',
        authority: 'foo.example.com.:8080',
        want: { vhost: '*.example.com', status: 200 },
      },
    ],
  },
  {
    name: 'GW-11 no fall-through from an exact vhost to a wildcard one',
    config:
      gatewayYaml('gw', http8080('["*"]')) +
      vs('a', '[a.example.com]', '  - match: [{uri: {prefix: /api}}]\n    directResponse: {status: 200}') +
      vs('w', '["*.example.com"]', direct(201)),
    calls: [
      {
        name: 'api',
        authority: 'a.example.com',
        path: '/api',
        want: { vhost: 'a.example.com', status: 200 },
      },
      {
        name: 'other path 404',
        authority: 'a.example.com',
        path: '/other',
        want: { vhost: 'a.example.com', status: 404, flag: 'NR' },
      },
      {
        name: 'sibling uses wildcard',
        authority: 'b.example.com',
        path: '/other',
        want: { vhost: '*.example.com', status: 201 },
      },
    ],
  },
  {
    name: 'GW-12 a port whose servers have no bound VirtualService answers 404 NR; no server = refused',
    config: gatewayYaml('gw', http8080('["*"]')),
    calls: [
      { name: '404', want: { vhost: null, status: 404, flag: 'NR' } },
      { name: 'refused', port: 9999, want: { status: 0 } },
    ],
  },
  {
    name: 'GW-1/GW-2 only Gateways whose selector matches this workload are served',
    config:
      gatewayYaml('gw', http8080('["*"]')).replace('{istio: ingressgateway}', '{istio: egressgateway}') +
      vs('a', '[a.example.com]', direct(200)),
    calls: [{ name: 'not ours', want: { status: 0 } }],
  },
  {
    name: 'GW-1 an empty selector selects every gateway',
    config:
      gatewayYaml('gw', http8080('["*"]')).replace('  selector: {istio: ingressgateway}\n', '') +
      vs('a', '[a.example.com]', direct(200)),
    calls: [{ name: 'served', want: { status: 200 } }],
  },
  {
    name: 'GW-7 ns/host lets only VirtualServices of that namespace bind',
    config:
      gatewayYaml('gw', http8080('["shop/*.example.com", "./gw.example.com"]')) +
      vs('shop', '[a.example.com]', direct(200), { ns: 'shop' }) +
      vs('other', '[b.example.com]', direct(201), { ns: 'other' }) +
      vs('local', '[gw.example.com]', direct(202)),
    calls: [
      { name: 'shop binds', authority: 'a.example.com', want: { status: 200 } },
      { name: 'other does not', authority: 'b.example.com', want: { status: 404 } },
      { name: './ = gateway namespace', authority: 'gw.example.com', want: { status: 202 } },
    ],
  },
  {
    name: 'GW-14 each terminated HTTPS server has its own table; a Host another server on the port owns gets 421 (pain point 1)',
    config:
      gatewayYaml(
        'gw',
        `  - port: {number: 8443, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 8443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: b-cert}`,
      ) +
      vs('a', '[a.example.com]', direct(200)) +
      vs('b', '[b.example.com]', direct(201)),
    calls: [
      {
        name: 'a',
        port: 8443,
        authority: 'a.example.com',
        want: { table: 'https.8443.https-a.gw.istio-system', status: 200 },
      },
      {
        name: 'b',
        port: 8443,
        authority: 'b.example.com',
        want: { table: 'https.8443.https-b.gw.istio-system', status: 201 },
      },
      {
        name: 'coalesced: SNI a, Host b',
        port: 8443,
        sni: 'a.example.com',
        authority: 'b.example.com',
        want: { status: 421, flag: '-' },
      },
      {
        name: 'a Host no server on the port owns routes in the SNI-chosen table: 404',
        port: 8443,
        sni: 'a.example.com',
        authority: 'c.example.com',
        want: { table: 'https.8443.https-a.gw.istio-system', status: 404, flag: 'NR' },
      },
      {
        name: 'unknown SNI aborts',
        port: 8443,
        sni: 'c.example.com',
        authority: 'c.example.com',
        want: { table: null, status: 0 },
      },
    ],
  },
  {
    name: 'GW-14 all plaintext servers on a port share http.<port>',
    config:
      gatewayYaml('gw', http8080('[a.example.com]')) +
      '---\n' +
      gatewayYaml('gw2', http8080('[b.example.com]')) +
      vs('a', '[a.example.com]', direct(200)) +
      vs('b', '[b.example.com]', direct(201), { gateways: '[istio-system/gw2]' }),
    calls: [
      { name: 'a', authority: 'a.example.com', want: { table: 'http.8080', status: 200 } },
      { name: 'b', authority: 'b.example.com', want: { table: 'http.8080', status: 201 } },
    ],
  },
  {
    name: 'GW-18 httpsRedirect answers 301 for the server hosts, with or without a VirtualService, over VS routes',
    config:
      gatewayYaml(
        'gw',
        `  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [a.example.com, b.example.com]
    tls: {httpsRedirect: true}`,
      ) + vs('a', '[a.example.com]', direct(200)),
    calls: [
      {
        name: 'with VS',
        authority: 'a.example.com:8080',
        path: '/x?y=1',
        want: { route: 'https-redirect', status: 301, location: 'https://a.example.com:8080/x?y=1' },
      },
      {
        name: 'without VS',
        authority: 'b.example.com:80',
        path: '/',
        want: { status: 301, location: 'https://b.example.com/' },
      },
    ],
  },
  {
    name: 'GW-19 HTTP vs HTTPS on one port: the later server is skipped with an error naming both',
    config:
      gatewayYaml('gw', http8080('["*"]')) +
      '---\n' +
      gatewayYaml(
        'gw2',
        `  - port: {number: 8080, name: https, protocol: HTTPS}\n    hosts: ["b.example.com"]\n    tls: {mode: SIMPLE, credentialName: c}`,
      ).replace(
        'name: gw2, namespace: istio-system}',
        'name: gw2, namespace: istio-system, creationTimestamp: "2030-01-01T00:00:00Z"}',
      ) +
      vs('a', '[a.example.com]', direct(200)),
    diagnostics: [
      'Gateway istio-system/gw2: spec.servers[0].port: 8080 is HTTPS here, HTTP in test.yaml#1 Gateway istio-system/gw',
      'SLUICE_PORT_CONFLICT',
    ],
    calls: [{ name: 'first server kept', want: { table: 'http.8080', status: 200 } }],
  },
  {
    name: 'GW-19 the same host twice on a TLS port: the later server is skipped with an error',
    config:
      gatewayYaml(
        'gw',
        `  - port: {number: 8443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: {mode: SIMPLE, credentialName: one}`,
      ) +
      '---\n' +
      gatewayYaml(
        'gw2',
        `  - port: {number: 8443, name: https2, protocol: HTTPS}\n    hosts: [x/a.example.com]\n    tls: {mode: SIMPLE, credentialName: two}`,
      ) +
      vs('a', '[a.example.com]', direct(200)) +
      vs('b', '[a.example.com]', direct(201), { ns: 'x', gateways: '[istio-system/gw2]' }),
    diagnostics: [
      'a.example.com is already served on TLS port 8443 by test.yaml#1 Gateway istio-system/gw spec.servers[0]',
      'SLUICE_HOST_CONFLICT',
    ],
    calls: [
      { name: 'first wins', port: 8443, want: { table: 'https.8443.https.gw.istio-system', status: 200 } },
    ],
  },
  {
    name: 'GW-5 TLS passthrough and TCP servers get listeners with no HTTP table',
    config: gatewayYaml(
      'gw',
      `  - port: {number: 8443, name: tls, protocol: TLS}\n    hosts: [a.example.com]\n    tls: {mode: PASSTHROUGH}\n  - port: {number: 9000, name: tcp, protocol: TCP}\n    hosts: ["*"]`,
    ),
    calls: [{ name: 'tls', port: 8443, want: { status: 0, table: null } }],
  },
  {
    name: 'Host validation before routing: bytes outside RFC 3986 host and port get 400, never a route',
    config: gatewayYaml('gw', http8080('["*"]')) + vs('all', '["*"]', direct(200)),
    calls: [
      { name: 'valid', authority: 'a.example.com:8080', want: { status: 200 } },
      { name: 'IPv6 literal', authority: '[::1]:8080', want: { status: 200 } },
      ...['a b', 'a}', 'a{b', ': a', 'a@b', 'a/b', 'a\\b', 'a"b', 'a\u00e9b'].map((authority) => ({
        name: `Host ${JSON.stringify(authority)}`,
        authority,
        want: { status: 400, flag: 'DPE' },
      })),
      { name: 'no Host', authority: '', want: { status: 400, flag: 'DPE' } },
    ],
  },
];

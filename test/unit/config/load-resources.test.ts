import { describe, expect, it } from 'vitest';
import { createLoadCache, loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';

const svc = (name: string, ns?: string) =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n${ns ? `  namespace: ${ns}\n` : ''}spec:\n  ports: [{port: 80}]\n`;

describe('loadResources', () => {
  it('keeps input order, then document order, with origins', () => {
    const r = loadResources(
      [
        { file: 'b.yaml', text: `${svc('b1')}---\n${svc('b2')}` },
        { file: 'a.yaml', text: svc('a1') },
      ],
      { defaultNamespace: 'default' },
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.resources.resources.map((x) => [x.name, x.origin])).toEqual([
      ['b1', { kind: 'file', file: 'b.yaml', doc: 1, line: 1 }],
      ['b2', { kind: 'file', file: 'b.yaml', doc: 2, line: 8 }],
      ['a1', { kind: 'file', file: 'a.yaml', doc: 1, line: 1 }],
    ]);
  });

  it('reports a duplicate kind/namespace/name naming both origins and keeps the first', () => {
    const r = loadResources(
      [
        { file: 'a.yaml', text: svc('x') },
        { file: 'b.yaml', text: `${svc('y')}---\n${svc('x', 'default')}` },
      ],
      { defaultNamespace: 'default' },
    );
    expect(
      r.resources.resources.map((x) => `${x.origin.kind === 'file' ? x.origin.file : ''} ${x.name}`),
    ).toEqual(['a.yaml x', 'b.yaml y']);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'error   b.yaml#2:8 Service default/x: Service default/x is already defined in a.yaml#1; this later copy is ignored [SLUICE_CONFIG_DUPLICATE]',
    ]);
    expect(r.diagnostics[0]!.related?.origin).toEqual({ kind: 'file', file: 'a.yaml', doc: 1, line: 1 });
  });

  it('the same name in another namespace or kind is not a duplicate', () => {
    const r = loadResources(
      [
        {
          file: 'a.yaml',
          text: `${svc('x')}---\n${svc('x', 'other')}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n`,
        },
      ],
      {
        defaultNamespace: 'default',
      },
    );
    expect(r.diagnostics).toEqual([]);
    expect(r.resources.resources.map((x) => `${x.kind} ${x.namespace}/${x.name}`)).toEqual([
      'Service default/x',
      'Service other/x',
      'Namespace /x',
    ]);
  });

  it('drops resources with errors, keeps the rest, and lists unknown kinds as skipped', () => {
    const text = `${svc('good')}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bad}
spec: {servers: []}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: k8s-gateway-api}
spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
`;
    const r = loadResources([{ file: 'm.yaml', text }], { defaultNamespace: 'default' });
    expect(r.resources.resources.map((x) => x.name)).toEqual(['good']);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'error   m.yaml#2:11 Gateway default/bad: spec.servers: gateway must have at least one server [SLUICE_CONFIG_INVALID]',
    ]);
    expect(r.skipped).toEqual([
      {
        file: 'm.yaml',
        doc: 3,
        line: 13,
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        name: 'k8s-gateway-api',
      },
      { file: 'm.yaml', doc: 4, line: 18, apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' },
    ]);
  });

  it('treats fields set to null as absent, as Kubernetes does', () => {
    const text =
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  annotations:\nspec:\n  selector:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n    tls:\n';
    const r = loadResources([{ file: 'n.yaml', text }], { defaultNamespace: 'default' });
    expect(r.diagnostics).toEqual([]);
    expect(r.resources.resources[0]!.spec).toEqual({
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
    });
  });

  it('a document without apiVersion or kind is an error', () => {
    const r = loadResources([{ file: 'x.yaml', text: 'metadata: {name: a}\n' }], {
      defaultNamespace: 'default',
    });
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'error   x.yaml#1:1 Document a: apiVersion: required field is missing (expected a string); every document needs apiVersion and kind [SLUICE_CONFIG_SCHEMA]',
    ]);
  });

  it('parse errors come back as diagnostics, never thrown', () => {
    const r = loadResources([{ file: 'x.yaml', text: 'a: [\n' }], { defaultNamespace: 'default' });
    expect(r.diagnostics[0]!.code).toBe('SLUICE_CONFIG_PARSE');
    expect(r.resources.resources).toEqual([]);
  });
});

describe('loadResources with a cache', () => {
  const vs = (name: string, prefix = '/a') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: shop}
spec:
  hosts: [${name}.example.com]
  gateways: [istio-system/gw]
  http:
    - match: [{uri: {prefix: ${prefix}}}]
      route: [{destination: {host: be.shop.svc.cluster.local}}]
`;
  // A field sluice parses but does not act on: a warning at every load.
  // A document with a warning (a field sluice does not act on) is loaded again at every read.
  const faulty = vs('faulty').replace(
    '      route:',
    '      retries: {attempts: 2, retryRemoteLocalities: true}\n      route:',
  );
  const load = (files: Record<string, string>, cache?: ReturnType<typeof createLoadCache>, ns = 'shop') =>
    loadResources(
      Object.entries(files).map(([file, text]) => ({ file, text })),
      { defaultNamespace: ns, ...(cache ? { cache } : {}) },
    );

  it('gives what a load without it gives, change after change', () => {
    const cache = createLoadCache();
    const steps: Record<string, string>[] = [
      { 'a.yaml': [vs('one'), vs('two'), faulty].join('---\n'), 'b.yaml': vs('three') },
      { 'a.yaml': [vs('one', '/b'), vs('two'), faulty].join('---\n'), 'b.yaml': vs('three') },
      {
        'a.yaml': [
          '# a longer header\n# moves every document down\n' + vs('one', '/b'),
          vs('two'),
          faulty,
        ].join('---\n'),
      },
      { 'a.yaml': [vs('two'), vs('two')].join('---\n') },
      { 'a.yaml': [vs('two'), 'kind: [broken'].join('---\n') },
    ];
    for (const files of steps) expect(load(files, cache)).toEqual(load(files));
    // Another default namespace: nothing is taken from before.
    const files = { 'c.yaml': vs('two').replace('namespace: shop', '') };
    load(files, cache);
    expect(load(files, cache, 'other')).toEqual(load(files, undefined, 'other'));
  });

  it('reuses what an unchanged document loaded to; a document with something to say is loaded again', () => {
    const cache = createLoadCache();
    const first = load({ 'a.yaml': [vs('one'), vs('two'), faulty].join('---\n') }, cache).resources.resources;
    const again = load({ 'a.yaml': [vs('one', '/b'), vs('two'), faulty].join('---\n') }, cache);
    const [one, two, warned] = again.resources.resources;
    expect(two?.spec).toBe(first[1]?.spec);
    expect(one?.spec).not.toBe(first[0]?.spec);
    expect(warned?.spec).not.toBe(first[2]?.spec);
    expect(again.diagnostics.map((d) => d.unsupported)).toContain('http[].retries.retryRemoteLocalities');
  });
});

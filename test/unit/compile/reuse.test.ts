import { describe, expect, it } from 'vitest';
import { compile, compileSnapshot } from '../../../src/compile/index.ts';
import { createCompileCache } from '../../../src/compile/reuse.ts';
import { loadResources } from '../../../src/config/index.ts';
import type { ResourceSet } from '../../../src/model/resource.ts';
import { dumpSnapshot } from '../../../src/snapshot/dump.ts';
import type { Route, Snapshot } from '../../../src/snapshot/types.ts';
import { DEFAULT_IDENTITY } from '../../simulate/compile-yaml.ts';

const OPTS = { ...DEFAULT_IDENTITY, nowMs: 1_700_000_000_000 };

function service(i: number, subsets = 'v1, v2'): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: be-${i}, namespace: shop}
spec:
  hosts: [be-${i}.shop.internal]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, labels: {version: v1}}, {address: 127.0.0.2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: be-${i}, namespace: shop}
spec:
  host: be-${i}.shop.internal
  subsets: [${subsets
    .split(', ')
    .map((s) => `{name: ${s}, labels: {version: ${s}}}`)
    .join(', ')}]`;
}

function virtualService(i: number, extraHost = '', prefix = '/api/'): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs-${i}, namespace: shop}
spec:
  hosts: [h${i}.shop.test${extraHost}]
  gateways: [istio-system/public]
  http:
    - match: [{uri: {prefix: ${prefix}}}, {headers: {x-tenant: {regex: "t-[0-9]+"}}}]
      route:
        - {destination: {host: be-${i}.shop.internal, subset: v1}, weight: 90}
        - {destination: {host: be-${i}.shop.internal, subset: v2}, weight: 10}
    - match: [{uri: {regex: "/items/[0-9]+"}}]
      route: [{destination: {host: be-${(i + 1) % 4}.shop.internal, subset: v2}}]
    - route: [{destination: {host: be-${i}.shop.internal, subset: v1}}]`;
}

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 8080, name: http, protocol: HTTP}
      hosts: ["*/*.shop.test"]
    - port: {number: 8081, name: http-alt, protocol: HTTP}
      hosts: ["shop/*"]`;

function setOf(docs: readonly string[]): ResourceSet {
  const loaded = loadResources([{ file: 'shop.yaml', text: docs.join('\n---\n') }], {
    defaultNamespace: 'default',
  });
  expect(loaded.diagnostics.filter((d) => d.level === 'error')).toEqual([]);
  return loaded.resources;
}

const base = (): string[] => [GATEWAY, ...[0, 1, 2, 3].flatMap((i) => [service(i), virtualService(i)])];

function routesOf(s: Snapshot, host: string): readonly Route[] {
  return s.listeners.get(8080)?.httpTable?.exact.get(host)?.routes ?? [];
}

describe('compileSnapshot with a cache', () => {
  it('gives the snapshot a fresh compile gives, change after change', () => {
    const cache = createCompileCache();
    const steps: { what: string; docs: string[] }[] = [];
    const docs = base();
    steps.push({ what: 'first', docs: [...docs] });
    docs[2] = virtualService(0, ', probe.shop.test');
    steps.push({ what: 'a host added to one VirtualService', docs: [...docs] });
    docs[4] = virtualService(1, '', '/v2/');
    steps.push({ what: 'a match changed', docs: [...docs] });
    docs.push(virtualService(9).replace('be-9', 'be-0'));
    steps.push({ what: 'a VirtualService added', docs: [...docs] });
    docs.splice(6, 1);
    steps.push({ what: 'a VirtualService removed', docs: [...docs] });
    docs[1] = service(0, 'v1');
    steps.push({ what: 'a DestinationRule lost a subset', docs: [...docs] });
    steps.push({ what: 'the documents reordered', docs: [...docs].reverse() });
    for (const step of steps) {
      const set = setOf(step.docs);
      const incremental = compileSnapshot(set, OPTS, cache);
      const fresh = compile(set, OPTS).snapshot;
      expect(dumpSnapshot(incremental), step.what).toEqual(dumpSnapshot(fresh));
      expect(incremental.hash, step.what).toBe(fresh.hash);
    }
  });

  it('reuses the routes of unchanged VirtualServices, and rebuilds all when anything else changes', () => {
    const cache = createCompileCache();
    const docs = base();
    const first = compileSnapshot(setOf(docs), OPTS, cache);
    docs[2] = virtualService(0, ', probe.shop.test');
    const second = compileSnapshot(setOf(docs), OPTS, cache);
    // vs-1 did not change: the very same route objects (and the clusters they reference).
    expect(routesOf(second, 'h1.shop.test')[0]).toBe(routesOf(first, 'h1.shop.test')[0]);
    expect(routesOf(second, 'h0.shop.test')[0]).not.toBe(routesOf(first, 'h0.shop.test')[0]);
    expect(routesOf(second, 'probe.shop.test')).toHaveLength(4);
    // Moved in its file (another line, another document): still the same content.
    const third = compileSnapshot(setOf(['# moved down\n' + docs[0], ...docs.slice(1)]), OPTS, cache);
    expect(routesOf(third, 'h1.shop.test')[0]).toBe(routesOf(first, 'h1.shop.test')[0]);
    // A DestinationRule changed: every VirtualService is built again.
    docs[3] = service(1, 'v1, v2, v3');
    const fourth = compileSnapshot(setOf(docs), OPTS, cache);
    expect(routesOf(fourth, 'h2.shop.test')[0]).not.toBe(routesOf(first, 'h2.shop.test')[0]);
    // Another gateway identity: built again too.
    const other = compileSnapshot(
      setOf(docs),
      { ...OPTS, labels: { istio: 'ingressgateway', x: 'y' } },
      cache,
    );
    expect(routesOf(other, 'h2.shop.test')[0]).not.toBe(routesOf(fourth, 'h2.shop.test')[0]);
  });
});

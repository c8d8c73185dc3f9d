import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { dumpSnapshot, routeRows } from '../../../src/snapshot/dump.ts';
import { compileYaml, vsYaml } from '../../simulate/compile-yaml.ts';

describe('dump', () => {
  const { snapshot } = compileYaml(
    vsYaml(
      `  - match: [{uri: {regex: "/v[0-9]+"}}]
    rewrite: {uriRegexRewrite: {match: "^/v([0-9]+)", rewrite: "/version/\\\\1"}}
    route: [{destination: {host: web}, weight: 80}, {destination: {host: web, subset: canary}, weight: 20}]
  - directResponse: {status: 200, body: {string: hi}}`,
      {
        extra:
          'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  ports: [{name: http, port: 80}]',
      },
    ),
  );

  it('is JSON-safe, sorted, with no functions, regexes as source and unlimited caps as text', () => {
    const d = dumpSnapshot(snapshot);
    const json = JSON.stringify(d);
    expect(JSON.parse(json)).toEqual(d);
    expect(json).toContain('"uri regex /v[0-9]+"');
    expect(json).toContain('"pattern":"^/v([0-9]+)"');
    expect(json).toContain('"maxConnections":"unlimited"');
    expect(json).toContain('"body":{"string":"hi"}');
    expect(Object.keys(d as object)).toEqual(['clusters', 'hash', 'listeners', 'settings']);
    expect(() => stringify(d)).not.toThrow();
  });

  it('routeRows lists routes in lookup order with destinations and weights', () => {
    expect(routeRows(snapshot)).toEqual([
      {
        port: 8080,
        table: 'http.8080',
        vhost: 'a.example.com',
        route: 'default.vs.0.0',
        match: 'uri regex /v[0-9]+',
        action: 'forward',
        destinations: [
          'outbound|80||web.default.svc.cluster.local 80/100',
          'outbound|80|canary|web.default.svc.cluster.local 20/100 (unknown: 503 NC)',
        ],
      },
      {
        port: 8080,
        table: 'http.8080',
        vhost: 'a.example.com',
        route: 'default.vs.1',
        match: '*',
        action: 'direct response 200 (2 bytes)',
        destinations: [],
      },
    ]);
    expect(routeRows(snapshot, 9999)).toEqual([]);
  });
});

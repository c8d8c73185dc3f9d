import { describe, expect, it } from 'vitest';
import { explainRequest } from '../../../src/snapshot/explain.ts';
import { compileYaml, vsYaml } from '../../simulate/compile-yaml.ts';

const CONFIG = vsYaml(
  `  - match: [{uri: {prefix: /api}, headers: {x-env: {exact: dev}}}]
    directResponse: {status: 201}
  - match: [{method: {exact: POST}}]
    directResponse: {status: 202}
  - name: web
    match: [{uri: {prefix: /}}]
    route: [{destination: {host: web.default.svc.cluster.local}}]`,
  {
    extra: `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]`,
  },
);

describe('explainRequest', () => {
  const { snapshot } = compileYaml(CONFIG);

  it('reports each skipped route with its first failing condition and the request value', async () => {
    const r = await explainRequest(snapshot, {
      port: 8080,
      authority: 'a.example.com',
      path: '/api/x',
      headers: { 'X-Env': 'prod' },
    });
    expect(r.listener?.protocol).toBe('HTTP');
    expect(r.table).toBe('http.8080');
    expect(r.vhost).toEqual({ name: 'a.example.com', how: 'exact' });
    expect(r.skipped).toEqual([
      expect.objectContaining({
        route: 'default.vs.0.0',
        field: 'headers[x-env]',
        expected: 'exact dev',
        actual: 'prod',
      }),
      expect.objectContaining({
        route: 'default.vs.1.0',
        field: 'method',
        expected: 'exact POST',
        actual: 'GET',
      }),
    ]);
    expect(r.route).toMatchObject({ name: 'web', match: 'uri prefix /' });
    expect(r.destinations).toEqual([
      {
        cluster: 'outbound|80||web.default.svc.cluster.local',
        weight: 1,
        known: true,
        endpoints: ['web.default.svc.cluster.local:80 (dns)'],
      },
    ]);
    expect(r.localReply).toBeNull();
    expect(r.lines.join('\n')).toContain(
      'skip default.vs.0.0 [VirtualService default/vs spec.http[0].match[0]]: headers[x-env] wants exact dev, request has prod',
    );
  });

  it('GW-12 says why a host has no vhost', async () => {
    const strict = compileYaml(
      vsYaml(`  - directResponse: {status: 200}`, { hosts: '[a.example.com]' }),
    ).snapshot;
    const r = await explainRequest(strict, { port: 8080, authority: 'b.example.com', path: '/' });
    expect(r.vhost).toBeNull();
    expect(r.localReply).toEqual({ status: 404, flag: 'NR', reason: 'route_not_found' });
    expect(r.lines.at(-1)).toContain('no virtual host');
  });

  it('AP-9 a path the normaliser refuses is a 400', async () => {
    const r = await explainRequest(snapshot, { port: 8080, authority: 'a.example.com', path: '/a%00b' });
    expect(r.localReply?.status).toBe(400);
  });

  it('a port with no listener is refused', async () => {
    expect((await explainRequest(snapshot, { port: 1, authority: 'a', path: '/' })).localReply?.reason).toBe(
      'connection refused',
    );
  });
});

/**
 * Learning mode (issue 13 item 6): with MeshConfig `egressProxy.learn: true` under REGISTRY_ONLY
 * the proxy still blocks, but records what it blocked; `sluice egress suggest` (the real binary,
 * asking the running gateway's admin port) prints the ServiceEntry YAML that would allow it,
 * grouped by host with ports and counts, and that YAML, once loaded, does allow it.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { curl, rawRequest, get, statusVia } from '../support/egress-proxy.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { freePorts } from '../support/pebble.ts';
import { startServeInProcess } from '../support/serve-in-process.ts';
import { runSluice } from '../support/child-process.ts';
import { snapshotFromYaml, TEST_IDENTITY } from '../support/gateway.ts';
import { decideEgress } from '../../src/snapshot/egress.ts';
import type { RunningGateway } from '../../src/cli/serve.ts';

let echo: Upstream;
beforeAll(async () => {
  echo = await startEcho({ name: 'external' });
  return () => echo.close();
});

let serving: RunningGateway | null = null;
afterEach(async () => {
  await serving?.close();
  serving = null;
});

async function serveWith(mesh: string): Promise<{ proxy: string; admin: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-egress-learn-'));
  const [port] = await freePorts(1);
  writeFileSync(
    path.join(dir, 'mesh.yaml'),
    `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  egressProxy: { port: ${port}${mesh} }
`,
  );
  serving = await startServeInProcess(dir);
  return { proxy: `http://127.0.0.1:${port!}`, admin: serving.admin.port };
}

describe('egress learning mode', () => {
  it('blocks and records; `sluice egress suggest` prints entries that would allow what was seen', async () => {
    const { proxy, admin } = await serveWith(', learn: true');
    for (let i = 0; i < 3; i++) expect(await statusVia(proxy, 'http://api.partner.test/v1/x')).toBe('403');
    expect(await statusVia(proxy, 'http://api.partner.test:8080/')).toBe('403');
    const tunnel = await curl(['-x', proxy, 'https://cdn.partner.test/']);
    expect(tunnel.code).not.toBe(0);
    // Refused whatever the registry says: never suggested.
    expect((await rawRequest(Number(new URL(proxy).port), get('http://10.0.0.1/'))).status).toBe(403);
    expect(echo.seen).toHaveLength(0);

    const r = await runSluice(['egress', 'suggest', '--admin-port', String(admin)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '# api.partner.test: 4 refused (80/http 3, 8080/http 1)',
        'apiVersion: networking.istio.io/v1',
        'kind: ServiceEntry',
        'metadata:',
        '  name: api-partner-test',
        'spec:',
        '  hosts: [api.partner.test]',
        '  location: MESH_EXTERNAL',
        '  resolution: DNS',
        '  ports:',
        '    - { number: 80, name: http-80, protocol: HTTP }',
        '    - { number: 8080, name: http-8080, protocol: HTTP }',
        '---',
        '# cdn.partner.test: 1 refused (443/tls 1)',
        'apiVersion: networking.istio.io/v1',
        'kind: ServiceEntry',
        'metadata:',
        '  name: cdn-partner-test',
        'spec:',
        '  hosts: [cdn.partner.test]',
        '  location: MESH_EXTERNAL',
        '  resolution: DNS',
        '  ports:',
        '    - { number: 443, name: tls-443, protocol: TLS }',
        '',
      ].join('\n'),
    );
    // What it suggests is valid config that allows exactly what was refused.
    const policy = snapshotFromYaml(r.stdout, { ...TEST_IDENTITY, egressProxyPort: 3128 }).egress!;
    expect(decideEgress(policy, 'api.partner.test', 8080).allowed).toBe(true);
    expect(decideEgress(policy, 'cdn.partner.test', 443).allowed).toBe(true);
    expect(decideEgress(policy, 'cdn.partner.test', 80).allowed).toBe(false);
  });

  it('without learn nothing is suggested, though refusals are still counted', async () => {
    const { proxy, admin } = await serveWith('');
    expect(await statusVia(proxy, 'http://api.partner.test/')).toBe('403');
    const r = await runSluice(['egress', 'suggest', '--admin-port', String(admin)]);
    expect(r.stdout).toMatch(/^# sluice egress suggest: learning mode has recorded no refusal/);
    const blocked = (await (await fetch(`http://127.0.0.1:${admin}/egress/blocked`)).json()) as unknown[];
    expect(blocked).toEqual([
      { host: 'api.partner.test', port: 80, reason: 'not_in_registry', via: 'http', count: 1, learnt: 0 },
    ]);
  });

  it('says plainly when no gateway answers on the admin port', async () => {
    const [port] = await freePorts(1);
    const r = await runSluice(['egress', 'suggest', '--admin-port', String(port)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/SLUICE_ADMIN_UNREACHABLE/);
  });
});

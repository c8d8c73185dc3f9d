/**
 * Certificates from --certs-dir and file paths (GW-15, GW-16) through the real provider and
 * reload loop, and hitless rotation: a replaced certificate is used for new handshakes within
 * seconds, established connections keep working, a broken replacement is refused while the old
 * certificate keeps serving, and requests under load see zero failures across the swap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:https';
import type { ReloadLoop } from '../../src/control/loop.ts';
import { createGateway, type Gateway } from '../../src/control/reconcile.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEcho } from '../support/upstreams.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import { until } from '../support/until.ts';
import { followConfigSources } from '../support/config-loop.ts';
import type { PemPair } from '../../src/tls/self-signed.ts';
import { upstreamRouteYaml } from '../support/upstream-route.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function config(upstreamPort: number, tls: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [rot.example.com]
      tls: ${tls}
---
${upstreamRouteYaml(upstreamPort, `[rot.example.com]`, { name: 'rot' })}
`;
}

interface Running {
  readonly gateway: Gateway;
  readonly loop: ReloadLoop;
  readonly dir: string;
  port(): number;
}

async function start(tls: (dir: string) => string, files: (dir: string) => Promise<void>): Promise<Running> {
  const up = await startEcho({ name: 'up' });
  cleanups.push(() => up.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-rot-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'config'));
  await mkdir(path.join(dir, 'certs'));
  await files(dir);
  await writeFile(path.join(dir, 'config', 'gw.yaml'), config(up.port, tls(dir)));
  const gateway = createGateway({ bind: '127.0.0.1', logger: silentLogger(), bindPortFor: () => 0 });
  cleanups.push(() => gateway.close());
  const { loop, stop } = await followConfigSources(gateway, {
    config: path.join(dir, 'config'),
    certsDir: path.join(dir, 'certs'),
  });
  cleanups.push(stop);
  await until(() => gateway.boundPorts().has(8443), { what: 'HTTPS listener bound' });
  return { gateway, loop, dir, port: () => gateway.boundPorts().get(8443)! };
}

async function writeCredential(dir: string, name: string, pair: PemPair): Promise<void> {
  await mkdir(path.join(dir, 'certs', name), { recursive: true });
  await writeFile(path.join(dir, 'certs', name, 'tls.key'), pair.keyPem);
  await writeFile(path.join(dir, 'certs', name, 'tls.crt'), pair.certPem + testCa().certPem);
}

function fingerprintSeen(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'rot.example.com', ca: testCa().certPem });
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

function get(port: number, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'rot.example.com',
        path: '/',
        headers: { host: 'rot.example.com' },
        ca: testCa().certPem,
        agent,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const ONE = rsaLeaf(['rot.example.com'], { tag: 'one' });
const TWO = rsaLeaf(['rot.example.com'], { tag: 'two' });
const fp = (p: PemPair): string => new X509Certificate(p.certPem).fingerprint256;

describe('certificate sources and hitless rotation (GW-15, GW-16)', () => {
  it('GW-15 credentialName from --certs-dir/<name>/ is served; rotation is picked up, connections kept', async () => {
    const r = await start(
      () => '{ mode: SIMPLE, credentialName: rot }',
      (dir) => writeCredential(dir, 'rot', ONE),
    );
    expect(await fingerprintSeen(r.port())).toBe(fp(ONE));
    // One context per certificate, built at apply time, never per handshake.
    expect(r.gateway.tlsStats.contextsBuilt).toBe(1);
    await fingerprintSeen(r.port());
    expect(r.gateway.tlsStats.contextsBuilt).toBe(1);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    expect(await get(r.port(), agent)).toBe(200);
    expect(r.gateway.tlsStats.handshakes).toBeGreaterThanOrEqual(1);
    const socketsBefore =
      Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length;
    expect(socketsBefore).toBe(1);

    await writeCredential(r.dir, 'rot', TWO);
    await until(async () => (await fingerprintSeen(r.port())) === fp(TWO), {
      what: 'new certificate served',
      timeoutMs: 5000,
    });
    // The established keep-alive connection still works (its handshake used the old certificate).
    expect(await get(r.port(), agent)).toBe(200);
    expect(r.gateway.tlsStats.contextsBuilt).toBe(2);
    expect(r.gateway.certificates()[0]).toMatchObject({
      name: 'rot',
      source: 'certs-dir rot',
      fingerprint: fp(TWO).replaceAll(':', '').toLowerCase(),
    });
  });

  it('a broken replacement (key not matching) is refused and the old certificate keeps serving', async () => {
    const r = await start(
      () => '{ mode: SIMPLE, credentialName: rot }',
      (dir) => writeCredential(dir, 'rot', ONE),
    );
    const accepted = r.loop.stats.accepted;
    await writeFile(path.join(r.dir, 'certs', 'rot', 'tls.key'), TWO.keyPem);
    await until(() => r.loop.stats.rejected > 0, { what: 'broken certificate rejected' });
    expect(r.loop.stats.accepted).toBe(accepted);
    expect(await fingerprintSeen(r.port())).toBe(fp(ONE));
  });

  it('GW-16 serverCertificate/privateKey file paths are read and rotated', async () => {
    const r = await start(
      (dir) => `{ mode: SIMPLE, serverCertificate: ${dir}/files/cert.pem, privateKey: ${dir}/files/key.pem }`,
      async (dir) => {
        await mkdir(path.join(dir, 'files'));
        await writeFile(path.join(dir, 'files', 'key.pem'), ONE.keyPem);
        await writeFile(path.join(dir, 'files', 'cert.pem'), ONE.certPem);
      },
    );
    expect(await fingerprintSeen(r.port())).toBe(fp(ONE));
    await writeFile(path.join(r.dir, 'files', 'key.pem'), TWO.keyPem);
    await writeFile(path.join(r.dir, 'files', 'cert.pem'), TWO.certPem);
    await until(async () => (await fingerprintSeen(r.port())) === fp(TWO), {
      what: 'rotated file certificate',
      timeoutMs: 5000,
    });
  });

  it('rotation under load: zero failed requests across several swaps', async () => {
    const r = await start(
      () => '{ mode: SIMPLE, credentialName: rot }',
      (dir) => writeCredential(dir, 'rot', ONE),
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    cleanups.push(async () => agent.destroy());
    let failures = 0;
    const errors: string[] = [];
    let done = 0;
    let stop = false;
    const fresh = new Agent({ keepAlive: false });
    const worker = async (a: Agent): Promise<void> => {
      while (!stop) {
        try {
          const status = await get(r.port(), a);
          if (status !== 200) {
            failures++;
            errors.push(`status ${status}`);
          }
        } catch (err) {
          failures++;
          errors.push(String(err) + (a === fresh ? ' fresh' : ' keepalive'));
        }
        done++;
      }
    };
    const workers = [worker(agent), worker(agent), worker(fresh)];
    for (const next of [TWO, ONE, TWO]) {
      const before = r.loop.stats.accepted;
      await writeCredential(r.dir, 'rot', next);
      await until(() => r.loop.stats.accepted > before, { what: 'rotation applied' });
      await until(async () => (await fingerprintSeen(r.port())) === fp(next), { what: 'rotated' });
    }
    stop = true;
    await Promise.all(workers);
    expect(done).toBeGreaterThan(10);
    expect(errors.slice(0, 3)).toEqual([]);
    expect(failures).toBe(0);
  });
});

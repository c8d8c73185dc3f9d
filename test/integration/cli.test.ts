/**
 * The sluice binary as users run it: exit codes, output, and the quickstart answering real
 * requests through real demo upstreams.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, runSluice, spawnSluice, type Spawned } from '../support/child-process.ts';
import {
  controlPortFlags,
  freePortMap,
  mapPortsInDir,
  quickstartPorts,
} from '../support/quickstart-ports.ts';
import { until } from '../support/until.ts';

const GATEWAYS = path.join(REPO, 'gateways');
let dirs: string[] = [];
let procs: Spawned[] = [];

afterEach(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  procs = [];
  dirs = [];
});

async function tempConfig(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

const BAD_WEIGHT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
  namespace: default
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/public]
  http:
    - route:
        - destination: { host: a }
          weight: -5
        - destination: { host: b }
          weight: 10
`;

/** node:http rather than fetch: fetch does not let a test set the Host header. */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

describe('sluice CLI', () => {
  it('--help lists the commands and --version prints the version', async () => {
    const help = await runSluice(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['serve', 'validate', 'routes', 'explain']) expect(help.stdout).toContain(c);
    const version = await runSluice(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^sluice \d+\.\d+\.\d+ \(node v26\./);
    const serveHelp = await runSluice(['serve', '--help']);
    expect(serveHelp.stdout).toContain('SLUICE_DRAIN_TIMEOUT');
  });

  it('exits 2 on a usage error', async () => {
    const r = await runSluice(['validate', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown flag --bogus');
  });

  it('validate accepts the examples in gateways/', async () => {
    const r = await runSluice(['validate', '--config', GATEWAYS]);
    expect(r.stdout).not.toMatch(/^error/m);
    expect(r.code).toBe(0);
  });

  it('validate names file, document, line, resource and field path, and exits 1', async () => {
    const file = await tempConfig('shop.yaml', `# leading comment\n---\n${BAD_WEIGHT}`);
    const r = await runSluice(['validate', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `^error +${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}#\\d+:\\d+ VirtualService default/shop: spec\\.http\\[0\\]\\.route\\[0\\]\\.weight: .*\\[SLUICE_CONFIG_(SCHEMA|INVALID)\\]$`,
        'm',
      ),
    );
    const json = await runSluice(['validate', '--config', file, '-o', 'json']);
    const parsed = JSON.parse(json.stdout) as { errors: number; diagnostics: { path?: string }[] };
    expect(parsed.errors).toBeGreaterThan(0);
    expect(parsed.diagnostics.some((d) => d.path === 'spec.http[0].route[0].weight')).toBe(true);
  });

  it('routes prints the compiled table', async () => {
    const r = await runSluice(['routes', '--config', GATEWAYS, '-o', 'json']);
    expect(r.code).toBe(0);
    const text = r.stdout;
    expect(text).toContain('bookinfo.example.com');
    expect(text).toContain('outbound|9080|v2|reviews.bookinfo.svc.cluster.local');
  });

  it('explain names the VirtualService and rule a request hits', async () => {
    const r = await runSluice([
      'explain',
      '--config',
      GATEWAYS,
      '-H',
      'end-user: jason',
      'http://reviews.example.com:8080/reviews/1',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('bookinfo/reviews');
    expect(r.stdout).toContain('outbound|9080|v2|reviews.bookinfo.svc.cluster.local');
    const miss = await runSluice(['explain', '--config', GATEWAYS, 'http://bookinfo.example.com:8080/nope']);
    expect(miss.code).toBe(1);
    expect(miss.stdout).toContain('404');
    // The data plane's own checks run: a Host it refuses before routing is no answer either.
    const refused = await runSluice([
      'explain',
      '--config',
      GATEWAYS,
      '-H',
      'host: reviews.example.com@evil',
      'http://reviews.example.com:8080/reviews/1',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('400 http.invalid_authority');
  });
});

describe('quickstart (npm start)', () => {
  it('serves the examples with demo upstreams on the ports its ServiceEntries name', async () => {
    // A copy of gateways/ with every fixed port moved to a free one; the demo upstreams follow it.
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-quickstart-'));
    dirs.push(dir);
    const config = path.join(dir, 'gateways');
    await cp(GATEWAYS, config, { recursive: true });
    const ports = await freePortMap(await quickstartPorts(config));
    await mapPortsInDir(config, ports);
    const p = spawnSluice([
      'quickstart',
      '--config',
      config,
      '--certs-dir',
      path.join(dir, 'certs'),
      ...controlPortFlags(ports).args,
      '--log-level',
      'warn',
    ]);
    procs.push(p);
    const status = `http://127.0.0.1:${ports.get(15021)}`;
    await until(async () => (await get(`${status}/healthz/ready`)).status === 200, {
      timeoutMs: 15_000,
      what: `readiness; output: ${p.output()}`,
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${p.output()}`);
    });
    const base = `http://127.0.0.1:${ports.get(8080)}`;
    const page = await get(`${base}/productpage`, { host: 'bookinfo.example.com' });
    expect(page.status).toBe(200);
    expect(JSON.parse(page.body)).toMatchObject({ service: 'productpage', path: '/productpage' });
    expect(page.headers['server']).toBe('istio-envoy');

    const jason = await get(`${base}/reviews/1`, { host: 'reviews.example.com', 'end-user': 'jason' });
    expect(JSON.parse(jason.body)).toMatchObject({ service: 'reviews', version: 'v2' });

    const rewritten = await get(`${base}/receiveapi/orders?id=7`, { host: 'legacy.example.com' });
    expect(JSON.parse(rewritten.body)).toMatchObject({ service: 'httpbin', path: '/orders?id=7' });

    const moved = await get(`${base}/old-docs/intro?x=1`, { host: 'legacy.example.com' });
    expect(moved.status).toBe(301);
    // redirect.uri replaces the whole path; the query is kept; the request's Host had no port (VS-16).
    expect(moved.headers['location']).toBe('http://legacy.example.com/docs/?x=1');

    const health = await get(`${base}/healthz`, { host: 'bookinfo.example.com' });
    expect(health.status).toBe(200);
    expect(health.body).toBe('ok\n');

    const none = await get(`${base}/nope`, { host: 'bookinfo.example.com' });
    expect(none.status).toBe(404);
    expect(none.body).toBe('');

    const stopped = await p.stop('SIGTERM');
    expect(stopped.code).toBe(0);
  }, 40_000);
});

/**
 * `sluice convert ingress`: commented Istio YAML that loads as valid Istio, a summary, exit 0/1,
 * and `--verify`, the behavioural diff, on the guide's demo Ingresses and on the corpus of
 * ingress-nginx documentation examples in test/fixtures/ingress-nginx/corpus (provenance in its
 * README). A diff that cannot find a difference would prove nothing, so one test breaks a
 * conversion on purpose and requires --verify to see it.
 */
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { runConvert } from '../../src/cli/convert.ts';
import { verifyConversion } from '../../src/cli/convert-verify.ts';
import type { CommandIO } from '../../src/cli/io.ts';
import { loadResources } from '../../src/config/index.ts';
import { formatDiagnostic } from '../../src/errors/diagnostic.ts';
import { readConfigSources } from '../../src/providers/certs-dir.ts';
import { renderConversion } from '../../src/cli/convert-yaml.ts';
import { GENERATED_FROM } from '../../src/config/ingress/index.ts';
import { ingressYaml, path as ingressPath } from '../support/ingress.ts';
import { rsaLeaf, testCa, tlsSecretYaml } from '../support/certs.ts';
import { startRedisServer } from '../support/redis.ts';
import type { GatewaySpec, VirtualServiceSpec } from '../../src/model/networking.ts';

const FIXTURES = path.join(import.meta.dirname, '../fixtures/ingress-nginx');
const GUIDE = path.join(import.meta.dirname, '../../examples/ingress-nginx');
const CORPUS = path.join(FIXTURES, 'corpus');

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length > 0) await rm(dirs.pop()!, { recursive: true, force: true });
});

/** A temporary directory (removed after the test) holding `in.yaml`: one nginx-class Ingress. */
async function writeIngress(
  name: string,
  annotations: Record<string, string>,
  paths: readonly string[],
): Promise<{ dir: string; src: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-convert-'));
  dirs.push(dir);
  const src = path.join(dir, 'in.yaml');
  await writeFile(src, ingressYaml({ name, className: 'nginx', annotations, paths }));
  return { dir, src };
}

const meshConfigYaml = (redisUrl: string): string => `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  redis: { url: "${redisUrl}" }
`;

async function convert(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CommandIO = { out: (t) => void (out += t), err: (t) => void (err += t), env: {} };
  const code = await runConvert(
    parseOptions('convert', ['ingress', '--certs-dir', '/nonexistent', ...args], {}),
    io,
  );
  return { code, out, err };
}

type Documents = readonly Record<string, unknown>[];

/** `--verify` of `source`'s conversion as `alter` changes it: how many answers differ, and the report. */
async function verifyAltered(
  source: string,
  alter: (documents: Documents) => Documents,
): Promise<{ differences: number; out: string }> {
  const update = await readConfigSources({
    paths: [source],
    defaultNamespace: 'default',
    certsDir: '/nonexistent',
    gatewayNamespace: 'istio-system',
    ingress: { ingressClass: 'nginx', httpPort: 80, httpsPort: 443 },
  });
  const rendered = renderConversion(
    update.resources.resources.filter((r) => r.annotations[GENERATED_FROM] !== undefined),
    new Map(),
    { selector: { istio: 'ingressgateway' }, gatewayNamespace: 'istio-system' },
  );
  let out = '';
  const opts = parseOptions('convert', ['ingress', '-f', source], {});
  const differences = await verifyConversion(update.resources, alter(rendered.documents), opts, {
    out: (t) => void (out += t),
    err: () => {},
    env: {},
  });
  return { differences, out };
}

describe('sluice convert ingress', () => {
  it('writes commented Istio YAML that loads without errors, and a summary; exit 0', async () => {
    const r = await convert(['-f', GUIDE]);
    expect(r.code).toBe(0);
    expect(r.err).toContain('3 Ingress(es) read');
    expect(r.err).toContain('everything was expressed in Istio YAML');
    expect(r.out).toContain('# from Ingress demo/demo-receive path /receiveapi(/|$)(.*)');
    expect(r.out).toContain('regex: (?i)(?:/receiveapi(/|$)(.*)).*');
    expect(r.out).toContain('rewrite: /\\2');
    expect(r.out).not.toContain('ingressNginx');
    const loaded = loadResources([{ file: 'converted.yaml', text: r.out }], { defaultNamespace: 'default' });
    expect(loaded.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
    expect(loaded.resources.resources.map((x) => `${x.kind} ${x.namespace}/${x.name}`)).toEqual([
      'Gateway istio-system/sluice-ingress',
      'VirtualService demo/ingress-demo.example.com',
      'VirtualService demo/ingress-www.demo.example.com',
      'DestinationRule demo/ingress-demo-order',
      'DestinationRule demo/ingress-demo-receive',
      'DestinationRule demo/ingress-demo-web',
    ]);
  });

  it('-o DIR writes istio.yaml and summary.txt; exit 1 naming what could not be expressed', async () => {
    const { dir, src } = await writeIngress('limited', { 'limit-rate': '10', 'proxy-body-size': '8m' }, [
      ingressPath('/', 'Prefix', 'web'),
    ]);
    const out = path.join(dir, 'out');
    const r = await convert(['-f', src, '-o', out]);
    expect(r.code).toBe(1);
    expect((await readdir(out)).sort()).toEqual(['istio.yaml', 'summary.txt']);
    const summary = await readFile(path.join(out, 'summary.txt'), 'utf8');
    expect(summary).toBe(r.out);
    expect(summary).toContain(
      'NOT EXPRESSED warning ' +
        src +
        '#1 Ingress default/limited: metadata.annotations[nginx.ingress.kubernetes.io/limit-rate]: not supported yet: response bandwidth per request is not limited [SLUICE_INGRESS_ANNOTATION]',
    );
    expect(summary).toContain(
      'NOT EXPRESSED Ingress default/limited: proxy-body-size 8m: Istio has no request body limit',
    );
    const yaml = await readFile(path.join(out, 'istio.yaml'), 'utf8');
    expect(yaml).toContain('# NOT EXPRESSED: proxy-body-size 8m');
  });

  it('proxy-send-timeout has no Istio expression: a comment, a summary line, exit 1', async () => {
    const { src } = await writeIngress('upload', { 'proxy-send-timeout': '30' }, [
      ingressPath('/', 'Prefix', 'web'),
    ]);
    const r = await convert(['-f', src]);
    expect(r.code).toBe(1);
    const why =
      'proxy-send-timeout 30: Istio has no per-write upstream timeout (its route timeout bounds the whole exchange, and connectionPool idleTimeout only idle connections)';
    expect(r.out).toContain(`# NOT EXPRESSED: ${why}`);
    expect(r.err).toContain(`NOT EXPRESSED Ingress default/upload: ${why}`);
    // Without the annotation the 60 s default is a documented difference, not a failure.
    const plain = await writeIngress('plain', {}, [ingressPath('/', 'Prefix', 'web')]);
    const d = await convert(['-f', plain.src]);
    expect(d.out).toContain("ingress-nginx's default proxy-send-timeout 60 s");
    expect(d.code).toBe(0);
  });

  it('--verify finds no difference on the guide’s demo Ingresses', async () => {
    const r = await convert(['-f', GUIDE, '--verify']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/verify: \d+ requests, 0 answered differently/);
  });

  it.each(['affinity-cookie', 'canary', 'cors', 'grpc', 'multi-tls', 'redirects', 'rewrite'])(
    '--verify finds no difference on the corpus example %s',
    async (name) => {
      const r = await convert(['-f', path.join(CORPUS, `${name}.yaml`), '--verify']);
      expect(r.err).toMatch(/verify: \d+ requests, 0 answered differently/);
      expect(r.code).toBe(0);
    },
  );

  it('limit-* become a RateLimitPolicy on the Ingress’s rules; --verify sees only the documented 503/429', async () => {
    const { src } = await writeIngress(
      'limited',
      {
        'limit-rpm': '1',
        'limit-burst-multiplier': '2',
        'limit-connections': '4',
        'limit-whitelist': '10.1.0.0/16',
      },
      [ingressPath('/api', 'Prefix', 'web'), ingressPath('/', 'Prefix', 'web')],
    );
    const r = await convert(['-f', src, '--verify']);
    const loaded = loadResources([{ file: 'converted.yaml', text: r.out }], { defaultNamespace: 'default' });
    expect(loaded.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
    const policy = loaded.resources.resources.find((x) => x.kind === 'RateLimitPolicy');
    expect(policy?.spec).toEqual({
      targetRefs: [
        {
          kind: 'VirtualService',
          name: 'ingress-demo.example.com',
          sectionName: 'Ingress default/limited path /api',
        },
        {
          kind: 'VirtualService',
          name: 'ingress-demo.example.com',
          sectionName: 'Ingress default/limited path /',
        },
      ],
      storage: 'Local',
      rules: [
        {
          name: 'limit-connections',
          key: [{ remoteAddress: {} }],
          limit: { inFlight: 4 },
          exempt: { remoteIpBlocks: ['10.1.0.0/16'] },
        },
        {
          name: 'limit-rpm',
          algorithm: 'TokenBucket',
          key: [{ remoteAddress: {} }],
          limit: { requests: 1, unit: 'Minute', burst: 3 },
          exempt: { remoteIpBlocks: ['10.1.0.0/16'] },
        },
      ],
    });
    expect(r.err).toContain('answers 429 with Retry-After where ingress-nginx answers 503');
    // Three requests pass on each side; every later one is refused by both, 503 against 429.
    expect(r.err).toMatch(
      /verify: \d+ requests, 0 answered differently, \d+ reached a backend on both sides \(and \d+ rate limited: 503 natively, 429 converted, as documented\)/,
    );
    expect(r.code).toBe(0);
  });

  it('custom-http-errors and default-backend are reported as not expressed; --verify sees only the documented error pages', async () => {
    const { src } = await writeIngress(
      'paged',
      { 'custom-http-errors': '503', 'default-backend': 'errors' },
      [ingressPath('/app', 'Prefix', 'web')],
    );
    await writeFile(
      src,
      (await readFile(src, 'utf8')) +
        '---\napiVersion: v1\nkind: Service\nmetadata: {name: errors, namespace: default}\nspec:\n  ports: [{name: http, port: 8080}]\n',
    );
    const r = await convert(['-f', src, '--verify']);
    expect(r.err).toContain(
      "NOT EXPRESSED Ingress default/paged: custom-http-errors 503: Istio cannot replace an upstream's error answer",
    );
    expect(r.err).toContain(
      'NOT EXPRESSED Ingress default/paged: default-backend errors: Istio has no fallback',
    );
    expect(r.out).toContain('# NOT EXPRESSED: custom-http-errors 503');
    // The probe whose upstream answers 503: the error page natively, the 503 itself converted.
    expect(r.err).toMatch(
      /verify: \d+ requests, 0 answered differently, \d+ reached a backend on both sides \(and 1 upstream error answer\(s\) replaced by the default backend natively/,
    );
    expect(r.code).toBe(1);
  });

  it('sluice.dev/limit-storage Global becomes storage Global; limit-connections goes to a Local policy of its own', async () => {
    const policiesOf = (yaml: string) => {
      const loaded = loadResources([{ file: 'converted.yaml', text: yaml }], { defaultNamespace: 'default' });
      expect(loaded.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
      return loaded.resources.resources
        .filter((x) => x.kind === 'RateLimitPolicy')
        .map((x) => {
          const spec = x.spec as { storage: string; rules: { name: string }[] };
          return [x.name, spec.storage, spec.rules.map((rule) => rule.name)];
        });
    };
    // No MeshConfig in the input: convert writes YAML, it counts nothing.
    const rpm = await writeIngress('shared', { 'limit-rpm': '60', 'sluice.dev/limit-storage': 'Global' }, [
      ingressPath('/', 'Prefix', 'web'),
    ]);
    const a = await convert(['-f', rpm.src]);
    expect(policiesOf(a.out)).toEqual([['ingress-limits-shared', 'Global', ['limit-rpm']]]);
    expect(a.out).toContain('counted in Redis and shared by every gateway replica');
    expect(a.err).toContain('a RateLimitPolicy on this rule (Global, per client IP)');
    expect(a.code).toBe(0);

    const both = await writeIngress(
      'mixed',
      { 'limit-rps': '10', 'limit-connections': '4', 'sluice.dev/limit-storage': 'Global' },
      [ingressPath('/', 'Prefix', 'web')],
    );
    const b = await convert(['-f', both.src]);
    expect(policiesOf(b.out)).toEqual([
      ['ingress-limits-mixed', 'Global', ['limit-rps']],
      ['ingress-limits-mixed-connections', 'Local', ['limit-connections']],
    ]);
    // In-flight requests are per process on both sides: the Global the annotation asks for is not had.
    expect(b.err).toContain(
      'NOT EXPRESSED warning ' +
        both.src +
        '#1 Ingress default/mixed: metadata.annotations[sluice.dev/limit-storage]: Global applies to limit-rps and limit-rpm; limit-connections (requests in flight) has no Global storage in sluice and is counted in each gateway process [SLUICE_INGRESS_ANNOTATION]',
    );
    expect(b.code).toBe(1);
  });

  it('--verify counts sluice.dev/limit-storage Global limits in the MeshConfig’s Redis on both sides', async () => {
    const redis = await startRedisServer();
    try {
      const { src } = await writeIngress(
        'shared',
        { 'limit-rpm': '1', 'limit-burst-multiplier': '2', 'sluice.dev/limit-storage': 'Global' },
        [ingressPath('/api', 'Prefix', 'web'), ingressPath('/', 'Prefix', 'web')],
      );
      await appendFile(src, `---\n${meshConfigYaml(redis.url)}`);
      const r = await convert(['-f', src, '--verify']);
      // Both sides admit the burst (1 × 2 + 1) and then refuse, each as documented.
      expect(r.err).toMatch(
        /verify: \d+ requests, 0 answered differently, 3 reached a backend on both sides \(and \d+ rate limited: 503 natively, 429 converted, as documented\)/,
      );
      expect(r.code).toBe(0);
      // Counted in Redis, not in the process: one bucket per side, the Ingress's and the policy's.
      expect((await redis.client.keys('*')).map((k) => k.split('|')[0]).sort()).toEqual([
        'sluice:rl:default/ingress-limits-shared/limit-rpm',
        'sluice:rl:ingress/default/shared/limit-rpm',
      ]);
    } finally {
      await redis.close();
    }
  });

  it('--verify says it cannot count Global limits when no MeshConfig redis is given; exit 1', async () => {
    const { src } = await writeIngress(
      'shared',
      { 'limit-rpm': '60', 'sluice.dev/limit-storage': 'Global' },
      [ingressPath('/', 'Prefix', 'web')],
    );
    const r = await convert(['-f', src, '--verify']);
    expect(r.err).toContain(
      'verify: not run: Ingress default/shared counts its limits in Redis (sluice.dev/limit-storage: Global); give a MeshConfig with redis in -f (both sides count in it) to verify it',
    );
    expect(r.code).toBe(1);
  });

  it('auth-url becomes an ext_authz provider and a CUSTOM policy; --verify agrees against a stand-in auth service', async () => {
    const { src } = await writeIngress(
      'guarded',
      {
        'auth-url': 'http://authsvc.default.svc.cluster.local/verify',
        'auth-response-headers': 'X-Auth-User',
      },
      [ingressPath('/api', 'Prefix', 'web'), ingressPath('/', 'Prefix', 'web')],
    );
    const r = await convert(['-f', src, '--verify']);
    const loaded = loadResources([{ file: 'converted.yaml', text: r.out }], { defaultNamespace: 'default' });
    expect(loaded.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
    const mesh = loaded.resources.resources.find((x) => x.kind === 'MeshConfig');
    expect(mesh?.spec).toMatchObject({
      extensionProviders: [
        {
          name: 'ingress-auth-0',
          envoyExtAuthzHttp: {
            service: 'authsvc.default.svc.cluster.local',
            port: 80,
            pathPrefix: '/verify',
            statusOnError: '500',
            headersToUpstreamOnAllow: ['x-auth-user'],
          },
        },
      ],
    });
    const custom = loaded.resources.resources.filter((x) => x.kind === 'AuthorizationPolicy');
    expect(custom.map((x) => (x.spec as { action: string }).action)).toEqual(['CUSTOM', 'CUSTOM']);
    expect(r.err).toContain('Istio sends the client');
    // Allowed (with X-Auth-User to the upstream), forbidden and unauthenticated, on both sides alike.
    expect(r.err).toMatch(/verify: \d+ requests, 0 answered differently/);
    expect(r.code).toBe(0);
  });

  it('auth-signin is reported as not expressed, and --verify shows the 302 against 401', async () => {
    const { src } = await writeIngress(
      'guarded',
      {
        'auth-url': 'http://authsvc.default.svc.cluster.local/verify',
        'auth-signin': 'https://login.example.com/start',
      },
      [ingressPath('/', 'Prefix', 'web')],
    );
    const r = await convert(['-f', src, '--verify']);
    expect(r.err).toContain(
      'NOT EXPRESSED Ingress default/guarded: auth-signin https://login.example.com/start',
    );
    expect(r.err).toContain('differs: demo.example.com/: status ingress=302 istio=401');
    expect(r.code).toBe(1);
  });

  it.each(['HTTPS', 'GRPC', 'GRPCS'])(
    'backend-protocol %s: --verify reaches a stand-in backend speaking it on both sides',
    async (protocol) => {
      const { src } = await writeIngress('proto', { 'backend-protocol': protocol }, [
        ingressPath('/', 'Prefix', 'web'),
      ]);
      const r = await convert(['-f', src, '--verify']);
      const m = /verify: (\d+) requests, 0 answered differently, (\d+) reached a backend on both sides/.exec(
        r.err,
      );
      expect(m, r.err).not.toBeNull();
      expect(Number(m![2])).toBe(Number(m![1]));
    },
  );

  it('auth-tls becomes a MUTUAL server reading <credential>-cacert; no key material is written', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-convert-'));
    dirs.push(dir);
    const src = path.join(dir, 'in.yaml');
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    await writeFile(
      src,
      [
        ingressYaml({
          name: 'mtls',
          className: 'nginx',
          annotations: { 'auth-tls-secret': 'default/client-ca', 'ssl-redirect': 'false' },
          paths: [ingressPath('/', 'Prefix', 'web')],
          spec: '  tls: [{hosts: [demo.example.com], secretName: demo-tls}]\n',
        }),
        tlsSecretYaml('demo-tls', rsaLeaf(['demo.example.com']), { namespace: 'default' }),
        `apiVersion: v1\nkind: Secret\nmetadata: {name: client-ca, namespace: default}\ndata: {ca.crt: ${b64(testCa().certPem)}}\n`,
      ].join('---\n'),
    );
    const r = await convert(['-f', src, '--verify']);
    expect(r.out).not.toContain('tls.key');
    expect(r.out).not.toContain(b64(testCa().certPem).slice(0, 40));
    const loaded = loadResources([{ file: 'converted.yaml', text: r.out }], { defaultNamespace: 'default' });
    expect(loaded.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
    const gw = loaded.resources.resources.find((x) => x.kind === 'Gateway')!;
    expect((gw.spec as GatewaySpec).servers[1]!.tls).toEqual({ mode: 'MUTUAL', credentialName: 'demo-tls' });
    expect(r.err).toContain('create Secret istio-system/demo-tls-cacert with its ca.crt');
    expect(r.err).toMatch(/verify: \d+ requests, 0 answered differently/);
  });

  it('ssl-passthrough becomes a PASSTHROUGH server and a tls route on the SNI; --verify follows the TLS to the backend', async () => {
    const { src } = await writeIngress('pass', { 'ssl-passthrough': 'true' }, [
      ingressPath('/', 'Prefix', 'web', 443),
    ]);
    const r = await convert(['-f', src, '--verify']);
    // Plain HTTP keeps the Ingress's paths, to the same backend: every request reaches it too.
    expect(r.err).toMatch(
      /verify: (\d+) requests, 0 answered differently, \1 reached a backend on both sides; 1 TLS connection\(s\) by SNI \(ssl-passthrough\), 1 passed through to a backend on both sides/,
    );
    const loaded = loadResources([{ file: 'converted.yaml', text: r.out }], { defaultNamespace: 'default' });
    expect(loaded.diagnostics.filter((d) => d.level === 'error').map(formatDiagnostic)).toEqual([]);
    const gw = loaded.resources.resources.find((x) => x.kind === 'Gateway')!;
    expect((gw.spec as GatewaySpec).servers[1]).toMatchObject({
      port: { number: 443, protocol: 'TLS' },
      hosts: ['demo.example.com'],
      tls: { mode: 'PASSTHROUGH' },
    });
    const vs = loaded.resources.resources.find((x) => x.kind === 'VirtualService')!;
    expect((vs.spec as VirtualServiceSpec).tls).toEqual([
      {
        match: [{ port: 443, sniHosts: ['demo.example.com'] }],
        route: [{ destination: { host: 'web.default.svc.cluster.local', port: { number: 443 } } }],
      },
    ]);
    expect(r.code).toBe(0);
  });

  it('--verify reports a passthrough conversion that sends the TLS elsewhere', async () => {
    const { src } = await writeIngress('pass', { 'ssl-passthrough': 'true' }, [
      ingressPath('/', 'Prefix', 'web', 443),
    ]);
    // The tls route pointed at another backend; its http routes left alone.
    const { differences, out } = await verifyAltered(src, (documents) =>
      documents.map((d) => {
        if (d['kind'] !== 'VirtualService') return d;
        const spec = d['spec'] as VirtualServiceSpec;
        const tls = spec.tls?.map((t) => ({
          ...t,
          route: [{ destination: { host: 'other.default.svc.cluster.local', port: { number: 443 } } }],
        }));
        return { ...d, spec: { ...spec, tls } };
      }),
    );
    expect(differences).toBe(1);
    expect(out).toContain(
      'differs: TLS with SNI demo.example.com (ssl-passthrough): upstream ingress=web.default.svc.cluster.local istio=other.default.svc.cluster.local',
    );
  });

  it('--verify reports a conversion that behaves differently', async () => {
    // The guide's hand translation: a case-sensitive prefix, no rewrite of /receiveapi.
    const { differences, out } = await verifyAltered(GUIDE, (documents) =>
      documents.map(
        (d) =>
          JSON.parse(
            JSON.stringify(d)
              .replace('"regex":"(?i)(?:/receiveapi(/|$)(.*)).*"', '"prefix":"/receiveapi/"')
              .replace('"regex":"(?i)(?:/orders).*"', '"prefix":"/orders"'),
          ) as Record<string, unknown>,
      ),
    );
    expect(differences).toBeGreaterThan(0);
    expect(out).toContain(
      'differs: demo.example.com/receiveapi: status ingress=200 istio=404, upstream ingress=demo-receive.demo.svc.cluster.local istio=null',
    );
    expect(out).toContain('differs: demo.example.com/ORDERS/7: status ingress=200 istio=404');
  });
});

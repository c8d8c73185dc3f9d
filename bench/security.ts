/**
 * Security pipeline benchmark (not a test): what the request pipeline's filters cost, against the
 * same config without policy, all legs in one run with the e2e bench's method (bench/lib/legs.ts:
 * sluice `--workers 1` alone on CPU 0; upstream, helper server and load generators on CPU 1;
 * interleaved rounds; CPU accounting; disturbed legs measured again). Legs:
 *   none        the e2e bench's one-rule config, no policy;
 *   base        the same config through another checkout of sluice (--baseline DIR), e.g. main
 *               before the pipeline existed: what the pipeline costs a config without policy;
 *   jwt         (a) RequestAuthentication (jwksUri on the loopback helper) + ALLOW
 *               `requestPrincipals: ["*"]`, every request carrying the same valid RS256 token;
 *   jwt-fresh   (a) again, a different valid token on every request, so the verified-token cache
 *               never hits and every request verifies a signature;
 *   deny50      (b) DENY with 50 path rules, none matching the request;
 *   extauthz    (c) CUSTOM with an `envoyExtAuthzHttp` provider: an HTTP check per request to the
 *               loopback helper (node:http, on the load core), which answers 200.
 * Every leg sends the same request with the same `Authorization: Bearer` token (jwt-fresh: a
 * different one each time). Only 127.0.0.1 is used. See bench/README.md.
 *
 *   npm run bench:security [-- --quick] [-- --baseline DIR] [-- --json] [-- --help]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { BENCH_REQUEST } from './configs/generate.ts';
import {
  AUDIENCE,
  AUTHZ_PATH_PREFIX,
  denyPaths,
  ISSUER,
  securityConfig,
  type PolicyShape,
} from './configs/security.ts';
import type { AuthServerStats } from './lib/auth-server.ts';
import {
  baseRunInfo,
  exitedReason,
  findTools,
  measureLegs,
  placeProcesses,
  progress,
  RUN_OPTIONS,
  runBenchmark,
  runHelp,
  runSettings,
  scenariosInOrder,
  startSluiceLeg,
  startUpstream,
  waitForCalm,
  type Leg,
  type RunSettings,
} from './lib/legs.ts';
import { freePorts, probe, until200 } from './lib/net.ts';
import type { PacedResult } from './lib/paced-load.ts';
import { atExit, spawnPinned, stop } from './lib/procs.ts';
import {
  backgroundOnProxyCore,
  div,
  DISTURBED,
  headerLines,
  int,
  ok,
  pad,
  perCore,
  scenarioLines,
  signedMs,
  targetLines,
  type BaseRunInfo,
  type ScenarioResult,
  type Target,
} from './lib/report.ts';
import { sluiceAvailable } from './lib/sluice.ts';
import { writeVaryingHeader, type VaryingHeader } from './lib/vary-header.ts';

type LegId = 'none' | 'base' | 'jwt' | 'jwt-fresh' | 'deny50' | 'extauthz';

/** The legs, in the order they start and are reported. */
const ORDER: readonly LegId[] = ['none', 'base', 'jwt', 'jwt-fresh', 'deny50', 'extauthz'];

const LABEL: Readonly<Record<LegId, string>> = {
  none: 'no policy',
  base: 'no policy (base)',
  jwt: '(a) JWT + ALLOW',
  'jwt-fresh': '(a) new token each',
  deny50: '(b) DENY 50 paths',
  extauthz: '(c) ext_authz HTTP',
};

const SHAPE: Readonly<Record<LegId, PolicyShape>> = {
  none: 'none',
  base: 'none',
  jwt: 'jwt',
  'jwt-fresh': 'jwt',
  deny50: 'deny50',
  extauthz: 'extauthz',
};

/** Target: throughput with the policy ≥ this share of no policy (issue 10 item 9). */
const POLICY_TARGET = 0.85;
/** Target: no policy within 3 % of the checkout before the pipeline (issue 10 item 1). */
const BASELINE_TARGET = 0.97;
const DEFAULTS = { rounds: 2, retries: 6 };

const HELP = `npm run bench:security -- [flags]     (node bench/security.ts [flags])

  --baseline DIR          also run another checkout of sluice (DIR/src/main.ts with its own
                          node_modules, under this Node) on the no-policy config, as leg "base"
  --only LIST             legs to run: ${ORDER.join(',')}
                          (default all; base only with --baseline)
  --tokens N              distinct tokens the jwt-fresh leg cycles through (default 1024: twice
                          what sluice remembers per provider, so none is still remembered)
${runHelp(DEFAULTS)}`;

interface Settings extends RunSettings {
  readonly only: ReadonlySet<LegId>;
  readonly baseline: string | null;
  readonly tokens: number;
}

function readSettings(): Settings | null {
  const { values } = parseArgs({
    options: {
      ...RUN_OPTIONS,
      only: { type: 'string' },
      baseline: { type: 'string' },
      tokens: { type: 'string', default: '1024' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return null;
  }
  const baseline = values.baseline ?? null;
  if (baseline !== null && !existsSync(join(baseline, 'src', 'main.ts')))
    throw new Error(`--baseline: ${join(baseline, 'src', 'main.ts')} does not exist`);
  if (baseline !== null && !existsSync(join(baseline, 'node_modules')))
    throw new Error(`--baseline: ${baseline} has no node_modules (install or link them)`);
  const only = new Set<LegId>();
  const wanted = values.only ?? ORDER.filter((id) => id !== 'base' || baseline !== null).join(',');
  for (const id of wanted.split(',').map((s) => s.trim())) {
    if (!ORDER.includes(id as LegId)) throw new Error(`--only: unknown leg ${id} (${ORDER.join(', ')})`);
    if (id === 'base' && baseline === null) throw new Error('--only base needs --baseline DIR');
    only.add(id as LegId);
  }
  const tokens = Number(values.tokens);
  if (!Number.isInteger(tokens) || tokens < 1)
    throw new Error(`--tokens: a positive integer, got ${values.tokens}`);
  return { ...runSettings(values, DEFAULTS), only, baseline, tokens };
}

// ---------------------------------------------------------------- keys and tokens

interface Keys {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The JWKS document the helper serves. */
  readonly jwks: string;
}

async function makeKeys(): Promise<Keys> {
  const kid = 'bench-rs256';
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, jwks: JSON.stringify({ keys: [jwk] }) };
}

/** A valid token for the bench issuer and audience, for the next 24 h; `n` makes it unique. */
function signToken(keys: Keys, n: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: `bench-${n}` })
    .setProtectedHeader({ alg: 'RS256', kid: keys.kid, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject(`user-${n}`)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 24 * 3600)
    .sign(keys.privateKey);
}

// ---------------------------------------------------------------- the helper server

async function authStats(port: number): Promise<AuthServerStats> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`);
  return (await res.json()) as AuthServerStats;
}

// ---------------------------------------------------------------- checks before measuring

/** One request that must get `want`; a leg whose policy does not act as set up has no figures. */
async function expectStatus(
  gatewayPort: number,
  path: string,
  headers: Readonly<Record<string, string>>,
  want: number,
  what: string,
): Promise<string> {
  const p = await probe(`http://127.0.0.1:${gatewayPort}${path}`, headers);
  if (p.status !== want) throw new Error(`check failed: ${what}: ${path} → ${p.status}, expected ${want}`);
  return `${what} → ${p.status}`;
}

function withoutAuthorization(headers: Readonly<Record<string, string>>): Record<string, string> {
  const { authorization: _dropped, ...rest } = headers;
  return rest;
}

/** A token whose signature does not verify (its last characters changed). */
function tampered(token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return token.slice(0, -2) + last + token.at(-1);
}

function legCheck(
  id: LegId,
  gatewayPort: number,
  headers: Readonly<Record<string, string>>,
  token: string,
): (() => Promise<readonly string[]>) | undefined {
  const path = BENCH_REQUEST.path;
  switch (id) {
    case 'jwt':
    case 'jwt-fresh':
      return async () => {
        const bare = withoutAuthorization(headers);
        return [
          'checks: ' +
            [
              await expectStatus(gatewayPort, path, bare, 403, 'no token'),
              await expectStatus(
                gatewayPort,
                path,
                { ...bare, authorization: `Bearer ${tampered(token)}` },
                401,
                'a tampered token',
              ),
            ].join(', '),
        ];
      };
    case 'deny50': {
      const paths = denyPaths();
      return async () => [
        'checks: ' +
          [
            await expectStatus(gatewayPort, paths[0]!, headers, 403, 'rule 0'),
            await expectStatus(gatewayPort, '/bench/x/private-48', headers, 403, 'rule 48 (template)'),
          ].join(', '),
      ];
    }
    case 'extauthz':
      return async () => [
        'checks: ' + (await expectStatus(gatewayPort, '/bench/deny', headers, 403, 'the authorizer denies')),
      ];
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------- report

interface SecurityRunInfo extends BaseRunInfo {
  readonly baseline: string | null;
  readonly token: string;
  readonly keySet: string;
  readonly authorizer: string;
  readonly legs: Readonly<Record<string, string>>;
}

interface VsNone {
  /** keep-alive req/s of the leg ÷ the no-policy leg's */
  readonly throughput: number | null;
  readonly throughputPerCore: number | null;
  readonly addedP50Ms: number | null;
  readonly addedP99Ms: number | null;
}

interface SecurityReport {
  readonly info: SecurityRunInfo;
  readonly scenarios: readonly ScenarioResult[];
  readonly vsNoPolicy: Readonly<Record<string, VsNone>>;
  readonly targets: readonly Target[];
}

function compare(
  a: ScenarioResult | undefined,
  none: ScenarioResult | undefined,
): VsNone & { proxyCores: number | null } {
  if (!ok(a) || !ok(none))
    return {
      throughput: null,
      throughputPerCore: null,
      addedP50Ms: null,
      addedP99Ms: null,
      proxyCores: null,
    };
  const added = (l: PacedResult, b: PacedResult, q: 'p50' | 'p99'): number =>
    (l.serviceUs[q] - b.serviceUs[q]) / 1000;
  return {
    throughput: div(a.throughput.requestsPerSec, none.throughput.requestsPerSec),
    throughputPerCore: div(perCore(a.throughput), perCore(none.throughput)),
    addedP50Ms: added(a.latency, none.latency, 'p50'),
    addedP99Ms: added(a.latency, none.latency, 'p99'),
    proxyCores: a.throughput.proxyCores,
  };
}

function ratioTarget(
  name: string,
  v: VsNone & { proxyCores: number | null },
  target: number | null,
  extra?: string,
): Target {
  const value = v.throughput;
  const notes: string[] = [];
  if (v.throughputPerCore !== null) notes.push(`per proxy core ${v.throughputPerCore.toFixed(3)}×`);
  if (extra) notes.push(extra);
  return {
    name,
    value,
    shown: value === null ? 'n/a' : `${value.toFixed(3)}×`,
    target: target === null ? 'report it' : `≥ ${target.toFixed(2)}×`,
    verdict: value === null ? 'n/a' : target === null ? 'INFO' : value >= target ? 'PASS' : 'MISS',
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}

function buildSecurityReport(info: SecurityRunInfo, scenarios: readonly ScenarioResult[]): SecurityReport {
  const by = new Map(scenarios.map((s) => [s.id, s]));
  const none = by.get('none');
  const vs = Object.fromEntries(
    (['jwt', 'jwt-fresh', 'deny50', 'extauthz'] as const).map((id) => [id, compare(by.get(id), none)]),
  );
  const base = compare(none, by.get('base'));
  // Why sluice did not use its whole core in the throughput phase: other work on CPU 0, or the
  // load core (upstream, helper, wrk) could not send more.
  const coreNote = (id: LegId): string | undefined => {
    const t = by.get(id)?.throughput;
    if (t === undefined || t.proxyCores === null || t.proxyCores >= 0.95) return undefined;
    const used = `sluice used ${(t.proxyCores * 100).toFixed(0)}% of its core`;
    return (backgroundOnProxyCore(t) ?? 0) > DISTURBED
      ? `${used}: other processes took CPU 0`
      : `${used}: the load core was the limit`;
  };
  const targets: Target[] = [
    ratioTarget('(a) JWT + ALLOW, same token: req/s ÷ no policy', vs['jwt']!, POLICY_TARGET, coreNote('jwt')),
    ratioTarget(
      '(b) DENY, 50 path rules: req/s ÷ no policy',
      vs['deny50']!,
      POLICY_TARGET,
      coreNote('deny50'),
    ),
    ratioTarget('(c) ext_authz over HTTP: req/s ÷ no policy', vs['extauthz']!, null, coreNote('extauthz')),
    ratioTarget(
      '(a) with a new token per request: ÷ no policy',
      vs['jwt-fresh']!,
      null,
      'every request verifies an RS256 signature',
    ),
    ratioTarget(
      'no policy: this checkout ÷ base checkout',
      base,
      info.baseline === null ? null : BASELINE_TARGET,
      info.baseline === null ? 'needs --baseline DIR' : `within 3 % of ${info.baseline}`,
    ),
  ];
  return { info, scenarios, vsNoPolicy: { ...vs, 'none vs base': base }, targets };
}

/** Each leg beside the one it is compared with: req/s, their ratio, and the paced latency added. */
function comparisonLines(r: SecurityReport): string[] {
  const by = new Map(r.scenarios.map((x) => [x.id, x]));
  const rows: [string, LegId, LegId][] = [
    ['(a) JWT + ALLOW', 'jwt', 'none'],
    ['(a) new token each', 'jwt-fresh', 'none'],
    ['(b) DENY 50 paths', 'deny50', 'none'],
    ['(c) ext_authz HTTP', 'extauthz', 'none'],
    ['no policy ÷ base', 'none', 'base'],
  ];
  const out = [
    `${pad('vs no policy (same run)', 24)}${'req/s'.padStart(9)}${'vs'.padStart(9)}${'ratio'.padStart(9)}${'per core'.padStart(10)}${'added p50'.padStart(12)}${'added p99'.padStart(12)}`,
  ];
  for (const [label, id, than] of rows) {
    const a = by.get(id);
    const b = by.get(than);
    if (!ok(a) || !ok(b)) continue;
    const v = compare(a, b);
    const x = (n: number | null): string => (n === null ? 'n/a' : `${n.toFixed(3)}×`);
    out.push(
      `  ${pad(label, 22)}${int(a.throughput.requestsPerSec).padStart(9)}${int(b.throughput.requestsPerSec).padStart(9)}` +
        `${x(v.throughput).padStart(9)}${x(v.throughputPerCore).padStart(10)}` +
        `${signedMs(v.addedP50Ms).padStart(12)}${signedMs(v.addedP99Ms).padStart(12)}`,
    );
  }
  return out;
}

function formatSecurity(r: SecurityReport): string {
  const { info } = r;
  const out = headerLines('sluice security pipeline benchmark', info);
  out.push(
    `  baseline    ${
      info.baseline === null
        ? 'none (--baseline DIR runs another checkout on the no-policy config)'
        : `${info.baseline}: another checkout (its own src/main.ts and node_modules) under this Node, with the no-policy config and the same flags`
    }`,
  );
  out.push(`  token       ${info.token}`);
  out.push(`  key set     ${info.keySet}`);
  out.push(`  authorizer  ${info.authorizer}`);
  for (const [id, text] of Object.entries(info.legs)) out.push(`  leg         ${pad(id, 10)} ${text}`);
  out.push('');
  out.push(...scenarioLines(r.scenarios));
  out.push('');
  out.push(...comparisonLines(r));
  out.push('');
  out.push(...targetLines(r.targets));
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const s = readSettings();
  if (!s) return;
  const missing = sluiceAvailable();
  if (missing) throw new Error(missing);
  const started = new Date();
  const placement = placeProcesses(s);
  const { proxyCpu, loadCpu } = placement;
  const tools = findTools(s);

  const tmp = mkdtempSync(join(tmpdir(), 'sluice-bench-security-'));
  if (!s.keep) atExit(() => rmSync(tmp, { recursive: true, force: true }));
  const legIds = ORDER.filter((id) => s.only.has(id));
  const ports = await freePorts(3 + 4 * legIds.length);
  const [upstreamPort, authPort, decoyPort] = ports as [number, number, number];

  progress('making an RS256 key and tokens');
  const keys = await makeKeys();
  const token = await signToken(keys, 0);
  const headers = {
    host: BENCH_REQUEST.host,
    ...BENCH_REQUEST.headers,
    authorization: `Bearer ${token}`,
  };
  let fresh: VaryingHeader | null = null;
  if (s.only.has('jwt-fresh')) {
    const tokens: string[] = [];
    for (let i = 1; i <= s.tokens; i++) tokens.push(`Bearer ${await signToken(keys, i)}`);
    fresh = writeVaryingHeader(tmp, 'authorization', tokens);
  }
  const jwksFile = join(tmp, 'jwks.json');
  writeFileSync(jwksFile, keys.jwks);

  const idleBusy = await waitForCalm(s.waitCalmS);

  progress(`temp dir ${tmp}; upstream ${tools.upstreamKind} on 127.0.0.1:${upstreamPort}`);
  const upstream = await startUpstream(tools, tmp, upstreamPort, loadCpu, {
    path: BENCH_REQUEST.path,
    headers,
  });
  progress(`key set and authorizer (bench/lib/auth-server.ts) on 127.0.0.1:${authPort}`);
  const auth = spawnPinned({
    name: 'auth-server',
    cpu: loadCpu,
    command: process.execPath,
    args: [new URL('./lib/auth-server.ts', import.meta.url).pathname, String(authPort), jwksFile],
    logFile: join(tmp, 'auth-server.log'),
  });
  await until200(
    `http://127.0.0.1:${authPort}/jwks.json`,
    {},
    {
      deadlineMs: 10_000,
      bodyBytes: Buffer.byteLength(keys.jwks),
      alive: exitedReason(auth),
    },
  );
  const jwksAtStart = (await authStats(authPort)).jwks;

  // Every sluice first (each idle until its turn), so rounds can interleave the legs.
  const legs: Leg[] = [];
  const notRun: ScenarioResult[] = [];
  for (const [i, id] of legIds.entries()) {
    const [gatewayPort, status, metrics, admin] = ports.slice(3 + 4 * i, 7 + 4 * i) as [
      number,
      number,
      number,
      number,
    ];
    const configDir = join(tmp, 'configs', id);
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      join(configDir, 'bench.yaml'),
      securityConfig(SHAPE[id], { gatewayPort, upstreamPort, decoyPort, authPort }),
    );
    const check = legCheck(id, gatewayPort, headers, token);
    const leg = await startSluiceLeg({
      id,
      label: LABEL[id],
      configDir,
      ports: { status, metrics, admin },
      gatewayPort,
      path: BENCH_REQUEST.path,
      headers,
      cpu: proxyCpu,
      logDir: tmp,
      ...(id === 'base' && s.baseline !== null ? { root: s.baseline } : {}),
      ...(id === 'jwt-fresh' && fresh !== null ? { vary: fresh } : {}),
      ...(check ? { check } : {}),
    });
    if ('status' in leg) notRun.push(leg);
    else legs.push(leg);
  }

  // The no-policy pair decides a 3 % target: it is measured twice a round, none base … base none.
  const byId = (id: LegId): Leg[] => legs.filter((l) => l.id === id);
  const schedule = [
    ...byId('none'),
    ...byId('base'),
    ...byId('jwt'),
    ...byId('jwt-fresh'),
    ...byId('base'),
    ...byId('none'),
    ...byId('deny50'),
    ...byId('extauthz'),
  ];
  const before = await authStats(authPort);
  const failed = await measureLegs(s, schedule, loadCpu, [upstream.pid, auth.pid], tmp);
  const after = await authStats(authPort);
  const scenarios = scenariosInOrder(legIds, legs, notRun, failed);
  await Promise.all(legs.map((l) => (l.proxy ? stop(l.proxy) : Promise.resolve())));
  await stop(auth);
  await stop(upstream);

  const baseCommit =
    s.baseline === null
      ? null
      : spawnSync('git', ['-C', s.baseline, 'rev-parse', '--short', 'HEAD'], {
          encoding: 'utf8',
        }).stdout.trim() || 'a checkout with no git commit';
  const report = buildSecurityReport(
    {
      ...baseRunInfo({
        s,
        placement,
        tools,
        started,
        idleBusy,
        tempDir: tmp,
        pinned: ['sluice under test', 'upstream, the key set / authorizer helper, wrk and the paced client'],
        request: BENCH_REQUEST,
        requestNote: `authorization: Bearer <${token.length}-byte token>  (same for every leg)`,
      }),
      baseline: baseCommit === null ? null : `commit ${baseCommit}`,
      token: `RS256 (2048-bit key, one kid), iss ${ISSUER}, aud ${AUDIENCE}, exp in 24 h, ${token.length} bytes${
        fresh ? `; leg jwt-fresh cycles ${fresh.count} distinct tokens of the same key` : ''
      }`,
      keySet: `jwksUri http://127.0.0.1:<helper>/jwks.json: fetched ${before.jwks - jwksAtStart}× while the sluices started (once per sluice with the policy, when it applied its config), ${after.jwks - before.jwks}× during the rounds`,
      authorizer: `bench/lib/auth-server.ts, node:http keep-alive, on the load core; answers 200 with no body; pathPrefix ${AUTHZ_PATH_PREFIX}, timeout 2s; ${after.checks - before.checks} checks answered during the rounds`,
      legs: Object.fromEntries(legIds.map((id) => [id, legText(id)])),
    },
    scenarios,
  );
  if (s.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatSecurity(report));
  if (s.keep) progress(`kept ${tmp}`);
}

function legText(id: LegId): string {
  switch (id) {
    case 'none':
      return 'the e2e one-rule config (Gateway, VirtualService, ServiceEntry), no policy; measured twice a round';
    case 'base':
      return 'the same config through the --baseline checkout; measured twice a round (none base … base none)';
    case 'jwt':
      return 'RequestAuthentication (jwksUri) + AuthorizationPolicy ALLOW from.source.requestPrincipals ["*"], the same token on every request (sluice remembers verified tokens per provider: a map lookup and the time checks)';
    case 'jwt-fresh':
      return 'the same policies, a new token on every request: the cache never hits, every request verifies a signature';
    case 'deny50':
      return 'AuthorizationPolicy DENY, 50 rules of one path each (10 exact, 10 prefix, 10 suffix, 10 {*} templates, 10 exact under /bench/item/), none matching';
    case 'extauthz':
      return 'AuthorizationPolicy CUSTOM paths ["/bench/*"], MeshConfig extensionProviders envoyExtAuthzHttp, a STATIC ServiceEntry for the helper';
  }
}

runBenchmark(main);

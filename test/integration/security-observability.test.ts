/**
 * What the request pipeline reports, through the real `serve`: decisions counted by filter,
 * policy and outcome; JWKS fetches and key age; AUDIT and dry-run matches logged with the request
 * id; and no token, claim value or authorizer credential in any log line or dump.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/flags.ts';
import { startServe, type RunningGateway } from '../../src/cli/serve.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { freePort, gatewayYaml, makeConfigDir, request, upstreamsYaml } from '../support/ops-config.ts';
import { startEcho } from '../support/upstreams.ts';
import { makeHmacKey, makeKey, jwksOf, sign, startJwksServer } from '../support/jwt.ts';
import { until } from '../support/until.ts';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const ISS = 'https://id.example.com';

function metric(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(name + '{') && want.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('security observability', () => {
  it('counts decisions, reports JWKS fetches, logs audits, and never writes a token or a credential', async () => {
    const up = await startEcho();
    cleanups.push(() => up.close());
    const key = await makeKey('RS256', 'k1');
    const hmac = makeHmacKey('shared');
    const jwks = await startJwksServer(key);
    cleanups.push(() => jwks.close());
    const port = await freePort();
    const dir = await makeConfigDir({
      'gateway.yaml': gatewayYaml([port]),
      'upstreams.yaml': upstreamsYaml({ a: up.port }),
      'route.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: test }
spec:
  hosts: [example.com]
  gateways: [istio-system/gw]
  http: [{ route: [{ destination: { host: a.test.svc.cluster.local, port: { number: 80 } } }] }]
`,
      'policy.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  jwtRules:
  - { issuer: "${ISS}", jwksUri: "${jwks.url}" }
  - { issuer: "https://hmac.example.com", jwks: '${jwksOf(hmac)}' }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: audit-all, namespace: istio-system }
spec: { action: AUDIT, rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: istio-system }
spec: { action: DENY, rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] }
`,
      'mesh.yaml': `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  extensionProviders:
  - name: unused
    envoyExtAuthzHttp: { service: authz.example.com, port: 9000, includeAdditionalHeadersInCheck: { x-api-key: s3cr3t-api-key } }
`,
    });
    cleanups.push(() => dir.remove());
    const lines: string[] = [];
    const logger = createLogger({
      level: 'debug',
      destination: { write: (l: string) => void lines.push(l) },
    });
    const opts = parseOptions(
      'serve',
      [
        ...['--config', dir.dir, '--bind', '127.0.0.1', '--status-port', '0', '--metrics-port', '0'],
        ...['--admin-port', '0', '--workers', '1', '--drain-delay', '0', '--log-level', 'debug'],
      ],
      {},
    );
    const running: RunningGateway = await startServe(opts, { logger });
    cleanups.push(() => running.close());
    await until(() => running.isReady(), { what: 'first config applied' });

    const token = await sign(key, { iss: ISS, sub: 'alice', claims: { email: 'alice@example.com' } });
    expect(
      (await request(port, '/shop', { host: 'example.com', headers: { authorization: `Bearer ${token}` } }))
        .status,
    ).toBe(200);
    expect(
      (await request(port, '/admin', { host: 'example.com', headers: { authorization: `Bearer ${token}` } }))
        .status,
    ).toBe(403);
    expect(
      (
        await request(port, '/shop', {
          host: 'example.com',
          headers: { authorization: 'Bearer forged.token.value' },
        })
      ).status,
    ).toBe(401);

    const scrape = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${running.metricsServer.port}/stats/prometheus`)).text();
    const m = await scrape();
    const d = 'sluice_authz_decisions_total';
    expect(metric(m, d, { filter: 'jwt_authn', outcome: 'allow' })).toBe(2);
    expect(metric(m, d, { filter: 'jwt_authn', outcome: 'deny' })).toBe(1);
    expect(
      metric(m, d, { filter: 'rbac', action: 'AUDIT', policy: 'istio-system/audit-all', outcome: 'audit' }),
    ).toBe(2);
    expect(
      metric(m, d, { filter: 'rbac', action: 'DENY', policy: 'istio-system/deny-admin', outcome: 'deny' }),
    ).toBe(1);
    expect(metric(m, 'sluice_jwks_fetches_total', { uri: jwks.url, result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(m).toMatch(
      new RegExp(`sluice_jwks_keys_age_seconds\\{uri="${jwks.url.replaceAll('.', '\\.')}"\\} \\d`),
    );

    const log = lines.join('');
    expect(log).toMatch(
      /"filter":"rbac","action":"AUDIT","policy":"istio-system\/audit-all".*"msg":"authorization audit"/,
    );
    for (const secret of [
      token,
      token.split('.')[2]!,
      'alice@example.com',
      'forged.token.value',
      's3cr3t-api-key',
      hmac.jwk.k!,
    ])
      expect(log.includes(secret), `log must not contain ${secret.slice(0, 12)}…`).toBe(false);

    const dump = await (await fetch(`http://127.0.0.1:${running.admin.port}/config_dump`)).text();
    expect(dump).toContain('[redacted]');
    for (const secret of ['s3cr3t-api-key', hmac.jwk.k!]) expect(dump.includes(secret)).toBe(false);
  });
});

/**
 * DP-6 access log end to end: MeshConfig accessLogFile/Encoding/Format compiled into the
 * snapshot, a real gateway with the request observer, lines read back from the file. Secrets
 * (Authorization, Cookie, token query values) never reach the file; a reload that turns the log
 * off stops it from the next request.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendRaw, snapshotFromYaml, startGatewayWithSnapshot, type TestGateway } from '../support/gateway.ts';
import { startEcho, type EchoBody } from '../support/upstreams.ts';
import { shopYaml, untilValue } from '../support/observability.ts';
import { createAccessLogger, type AccessLogger } from '../../src/observability/access-log.ts';
import { createRequestObserver } from '../../src/observability/request-observer.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-access-log-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'logs', 'access.log');
}

function yamlFor(upPort: number, mesh: string): string {
  return shopYaml({
    upPort,
    mesh,
    http: `    - name: shop-all
      route: [{ destination: { host: shop.default.svc.cluster.local } }]`,
  });
}

async function setup(mesh: (file: string) => string): Promise<{
  g: TestGateway;
  file: string;
  log: AccessLogger;
  upPort: number;
}> {
  const up = await startEcho({ name: 'shop' });
  cleanups.push(() => up.close());
  const file = tempFile();
  const log = createAccessLogger({ flushIntervalMs: 50 });
  cleanups.push(() => log.close());
  const g = await startGatewayWithSnapshot(snapshotFromYaml(yamlFor(up.port, mesh(file))), {
    onRequestDone: createRequestObserver({ accessLog: log, metrics: null, tracing: null }),
  });
  cleanups.push(() => g.close());
  return { g, file, log, upPort: up.port };
}

async function readLines(file: string, n: number, log: AccessLogger): Promise<string[]> {
  return untilValue(
    async () => {
      await log.flush();
      if (!existsSync(file)) return null;
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      return lines.length >= n ? lines : null;
    },
    { what: `${n} access log lines` },
  );
}

describe('DP-6 access log', () => {
  it('JSON: Istio keys in order, typed values, response flags and details; secrets never written', async () => {
    const { g, file, log } = await setup((f) => `  accessLogFile: ${f}\n  accessLogEncoding: JSON\n`);
    const res = await request(g.url('/items?q=1&access_token=SECRET-QUERY-TOKEN'), {
      headers: {
        host: 'shop.example.com',
        'user-agent': 'test-agent/1.0',
        authorization: 'Bearer SECRET-BEARER',
        cookie: 'session=SECRET-COOKIE',
      },
    });
    const echoed = JSON.parse(await res.body.text()) as EchoBody;
    expect(res.statusCode).toBe(200);
    const nr = await request(g.url('/missing'), { headers: { host: 'other.example.com' } });
    await nr.body.text();
    expect(nr.statusCode).toBe(404);

    const lines = await readLines(file, 2, log);
    const ok = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(ok)).toEqual([
      'start_time',
      'route_name',
      'method',
      'path',
      'protocol',
      'response_code',
      'response_flags',
      'response_code_details',
      'connection_termination_details',
      'bytes_received',
      'bytes_sent',
      'duration',
      'upstream_service_time',
      'x_forwarded_for',
      'user_agent',
      'request_id',
      'authority',
      'upstream_host',
      'upstream_cluster',
      'upstream_local_address',
      'downstream_local_address',
      'downstream_remote_address',
      'requested_server_name',
      'upstream_transport_failure_reason',
    ]);
    expect(ok).toMatchObject({
      route_name: 'shop-all',
      method: 'GET',
      path: '/items?q=1&access_token=[redacted]',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      response_code_details: 'via_upstream',
      connection_termination_details: null,
      bytes_received: 0,
      x_forwarded_for: '127.0.0.1',
      user_agent: 'test-agent/1.0',
      authority: 'shop.example.com',
      upstream_cluster: 'outbound|80||shop.default.svc.cluster.local',
      requested_server_name: null,
      upstream_transport_failure_reason: null,
    });
    expect(ok['start_time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof ok['duration']).toBe('number');
    expect(ok['upstream_service_time']).toMatch(/^\d+$/);
    // The id the upstream saw (the gateway generated it, DP-1).
    expect(ok['request_id']).toBe(echoed.headers['x-request-id']);
    expect(ok['upstream_host']).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(ok['downstream_local_address']).toBe(`127.0.0.1:${g.port()}`);
    expect(ok['downstream_remote_address']).toMatch(/^127\.0\.0\.1:\d+$/);
    // Body bytes only, as Envoy counts them: the echo's JSON body.
    expect(ok['bytes_sent']).toBe(Buffer.byteLength(JSON.stringify(echoed)));

    const miss = JSON.parse(lines[1]!) as Record<string, unknown>;
    expect(miss).toMatchObject({
      response_code: 404,
      response_flags: 'NR',
      response_code_details: 'route_not_found',
      upstream_cluster: null,
      upstream_host: null,
      route_name: null,
      bytes_sent: 0,
    });
    // Assigned before routing, as Envoy's connection manager does: local replies have one too.
    expect(miss['request_id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(miss['request_id']).not.toBe(ok['request_id']);

    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('SECRET');
  });

  it('every local reply has a request id: 400 before routing, 404 NR, 503 NC', async () => {
    const { g, file, log } = await setup(
      (f) =>
        `  accessLogFile: ${f}\n  accessLogFormat: '%RESPONSE_CODE% %RESPONSE_FLAGS% %REQ(X-REQUEST-ID)%'\n`,
    );
    await g.gateway.apply(
      snapshotFromYaml(
        shopYaml({
          upPort: 1,
          mesh: `  accessLogFile: ${file}\n  accessLogFormat: '%RESPONSE_CODE% %RESPONSE_FLAGS% %REQ(X-REQUEST-ID)%'\n`,
          http: `    - match: [{ uri: { prefix: /nc } }]
      route: [{ destination: { host: shop.default.svc.cluster.local, subset: none } }]`,
        }),
      ),
    );
    const bad = await sendRaw(g.port(), 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n');
    expect(bad.status).toBe(400);
    for (const [host, path, status] of [
      ['other.example.com', '/', 404],
      ['shop.example.com', '/nc', 503],
    ] as const) {
      const res = await request(g.url(path), { headers: { host } });
      await res.body.text();
      expect(res.statusCode).toBe(status);
    }
    const lines = await readLines(file, 3, log);
    const id = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^400 DPE ${id}$`)),
      expect.stringMatching(new RegExp(`^404 NR ${id}$`)),
      expect.stringMatching(new RegExp(`^503 NC ${id}$`)),
    ]);
  });

  it("TEXT: Envoy's default line, '-' for absent", async () => {
    const { g, file, log } = await setup((f) => `  accessLogFile: ${f}\n`);
    const res = await request(g.url('/a/b?x=1'), {
      headers: { host: 'shop.example.com', 'user-agent': 'ua' },
    });
    await res.body.text();
    const [line] = await readLines(file, 1, log);
    expect(line).toMatch(
      new RegExp(
        String.raw`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /a/b\?x=1 HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ ` +
          String.raw`"127\.0\.0\.1" "ua" "[0-9a-f-]{36}" "shop\.example\.com" "127\.0\.0\.1:\d+" ` +
          String.raw`outbound\|80\|\|shop\.default\.svc\.cluster\.local - 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - shop-all$`,
      ),
    );
  });

  it('custom TEXT format: command operators compiled once; Authorization redacted even when asked for', async () => {
    const { g, file, log } = await setup(
      (f) =>
        `  accessLogFile: ${f}\n  accessLogFormat: '%REQ(:METHOD)% %RESPONSE_CODE% %RESPONSE_FLAGS% %REQ(AUTHORIZATION)% %REQ(USER-AGENT):5% %REQ(X-MISSING?USER-AGENT)% %UPSTREAM_REQUEST_ATTEMPT_COUNT%'\n`,
    );
    const res = await request(g.url('/'), {
      method: 'POST',
      body: 'hello',
      headers: { host: 'shop.example.com', 'user-agent': 'abcdefghij', authorization: 'Basic c2VjcmV0' },
    });
    await res.body.text();
    const [line] = await readLines(file, 1, log);
    expect(line).toBe('POST 200 - [redacted] abcde abcdefghij 1');
  });

  it('follows reloads: the next snapshot without accessLogFile writes nothing more', async () => {
    const { g, file, log, upPort } = await setup((f) => `  accessLogFile: ${f}\n  accessLogEncoding: JSON\n`);
    const r1 = await request(g.url('/1'), { headers: { host: 'shop.example.com' } });
    await r1.body.text();
    await readLines(file, 1, log);
    await g.gateway.apply(snapshotFromYaml(yamlFor(upPort, '')));
    for (let i = 0; i < 3; i++) {
      const r = await request(g.url('/2'), { headers: { host: 'shop.example.com' } });
      await r.body.text();
    }
    await log.flush();
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
  });
});

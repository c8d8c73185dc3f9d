/**
 * DP-6 access log formats: Istio's TEXT and JSON defaults, Envoy command operators compiled once,
 * secrets never rendered, buffered writes (one write per line, no flush per line).
 */
import { describe, expect, it } from 'vitest';
import {
  compileAccessLogFormat,
  createAccessLogger,
  ISTIO_JSON_FORMAT,
  redactQuery,
  type LogDestination,
} from '../../../src/observability/access-log.ts';
import type { AccessLogConfig } from '../../../src/observability/finished-request.ts';
import { fakeRequest } from './fake-request.ts';

describe('DP-6 access log format', () => {
  it("TEXT default is Istio's EnvoyTextLogFormat; absent values print '-'", () => {
    const f = compileAccessLogFormat({ encoding: 'TEXT', format: null });
    expect(f.errors).toEqual([]);
    const line = f.render(
      fakeRequest({
        url: '/a?b=1',
        rawHeaders: ['Host', 'shop.example.com', 'User-Agent', 'curl/8'],
        requestBytes: 60,
        responseBytes: 100,
      }),
    );
    expect(line).toBe(
      '[2026-11-25T01:02:03.456Z] "GET /a?b=1 HTTP/1.1" 200 - via_upstream - "-" 0 55 12 7 "10.0.0.7" "curl/8" "rid-1" ' +
        '"shop.example.com" "10.1.2.3:8080" outbound|80||shop.default.svc.cluster.local - 10.0.0.1:8080 10.0.0.7:50123 - r1\n',
    );
  });

  it('JSON default: DP-6 keys in order; numbers stay numbers; absent is null', () => {
    const f = compileAccessLogFormat({ encoding: 'JSON', format: null });
    const obj = JSON.parse(
      f.render(fakeRequest({ status: 503, flags: 'UF', details: 'upstream_reset' })),
    ) as Record<string, unknown>;
    expect(Object.keys(obj)).toEqual(ISTIO_JSON_FORMAT.map(([k]) => k));
    expect(obj['response_code']).toBe(503);
    expect(obj['response_flags']).toBe('UF');
    expect(obj['response_code_details']).toBe('upstream_reset');
    expect(obj['duration']).toBe(12);
    expect(obj['upstream_service_time']).toBe('7');
    expect(obj['requested_server_name']).toBeNull();
    expect(obj['upstream_local_address']).toBeNull();
  });

  it('JSON custom format: a JSON object of key → format; mixed strings render as text', () => {
    const f = compileAccessLogFormat({
      encoding: 'JSON',
      format: JSON.stringify({ code: '%RESPONSE_CODE%', line: '%REQ(:METHOD)% %RESPONSE_CODE%', lit: 'x' }),
    });
    expect(f.render(fakeRequest())).toBe('{"code":200,"line":"GET 200","lit":"x"}\n');
  });

  it('an unparsable JSON format falls back to the default and says so', () => {
    const f = compileAccessLogFormat({ encoding: 'JSON', format: '{nope' });
    expect(f.errors[0]).toMatch(/not a JSON object/);
    expect(Object.keys(JSON.parse(f.render(fakeRequest())) as object)).toHaveLength(ISTIO_JSON_FORMAT.length);
  });

  it('unknown operators are reported and render absent; truncation and fallbacks work', () => {
    const f = compileAccessLogFormat({
      encoding: 'TEXT',
      format:
        '%NOPE% %REQ(USER-AGENT):3% %REQ(X-A?USER-AGENT)% %REQ_WITHOUT_QUERY(:PATH)% %RESP(CONTENT-TYPE)%',
    });
    expect(f.errors).toEqual(['unknown command operator %NOPE%']);
    const line = f.render(fakeRequest({ url: '/p?q=1', rawHeaders: ['Host', 'h', 'User-Agent', 'abcdef'] }));
    expect(line).toBe('- abc abcdef /p text/plain\n');
  });

  it('never renders Authorization, Cookie, Set-Cookie or token query values', () => {
    const f = compileAccessLogFormat({
      encoding: 'TEXT',
      format:
        '%REQ(AUTHORIZATION)% %REQ(cookie)% %RESP(SET-COOKIE)% %REQ(PROXY-AUTHORIZATION)% %REQ(X-NONE?AUTHORIZATION)% %REQ(:PATH)%',
    });
    const line = f.render(
      fakeRequest({
        url: '/cb?code=SECRET1&state=ok&access_token=SECRET2&api_key=SECRET3',
        rawHeaders: ['Host', 'h', 'Authorization', 'Bearer SECRET4', 'Cookie', 'sid=SECRET5'],
        responseHead: 'HTTP/1.1 200 OK\r\nset-cookie: sid=SECRET6\r\n\r\n',
      }),
    );
    expect(line).not.toContain('SECRET');
    expect(line).toBe(
      '[redacted] [redacted] [redacted] [redacted] [redacted] /cb?code=[redacted]&state=ok&access_token=[redacted]&api_key=[redacted]\n',
    );
  });

  it('redactQuery leaves ordinary queries alone', () => {
    expect(redactQuery('a=1&b=2')).toBe('a=1&b=2');
    expect(redactQuery('id_token=x')).toBe('id_token=[redacted]');
    expect(redactQuery('')).toBe('');
  });
});

describe('access log writer', () => {
  function fakeDest(): LogDestination & { lines: string[]; flushes: number; opened: string[] } {
    const d = {
      lines: [] as string[],
      flushes: 0,
      opened: [] as string[],
      write(line: string): boolean {
        d.lines.push(line);
        return true;
      },
      flush(cb?: () => void): void {
        d.flushes += 1;
        cb?.();
      },
      end(): void {
        closeFns.forEach((fn) => fn());
      },
      on(): unknown {
        return d;
      },
      once(_e: 'close', fn: () => void): unknown {
        closeFns.push(fn);
        return d;
      },
    };
    const closeFns: (() => void)[] = [];
    return d;
  }

  it('one buffered write per request, no flush per line; format compiled once per distinct setting', async () => {
    const dests: ReturnType<typeof fakeDest>[] = [];
    const opened: string[] = [];
    const logger = createAccessLogger({
      open: (path) => {
        opened.push(path);
        const d = fakeDest();
        dests.push(d);
        return d;
      },
    });
    const cfg: AccessLogConfig = { path: '/var/log/a.log', encoding: 'TEXT', format: '%RESPONSE_CODE%' };
    for (let i = 0; i < 5; i++) logger.log(fakeRequest({ settings: { accessLog: cfg } }));
    // A reload producing an equal setting (a new object) reuses the destination.
    logger.log(fakeRequest({ settings: { accessLog: { ...cfg } } }));
    expect(opened).toEqual(['/var/log/a.log']);
    expect(dests[0]!.lines).toEqual(Array(6).fill('200\n'));
    expect(dests[0]!.flushes).toBe(0);
    // A new path opens a new destination; no setting, no line.
    logger.log(fakeRequest({ settings: { accessLog: { ...cfg, path: '/var/log/b.log' } } }));
    logger.log(fakeRequest({ settings: {} }));
    expect(opened).toEqual(['/var/log/a.log', '/var/log/b.log']);
    expect(dests[1]!.lines).toEqual(['200\n']);
    expect(logger.stats().lines).toBe(7);
    await logger.close();
  });
});

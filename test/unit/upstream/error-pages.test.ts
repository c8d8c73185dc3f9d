import { describe, expect, it } from 'vitest';
import type { ErrorPages } from '../../../src/snapshot/types.ts';
import { challengesOf, errorRequestHeaders, nginxFailureStatus } from '../../../src/upstream/error-pages.ts';
import { classifyUpstreamError, PER_TRY_TIMEOUT } from '../../../src/upstream/upstream-error.ts';

const PAGES: ErrorPages = {
  codes: new Set([503]),
  upstreamResponses: true,
  backend: null,
  headers: ['x-namespace', 'ns', 'x-ingress-name', 'web', 'x-service-name', 'app', 'x-service-port', 'http'],
};

/** A route's upstream request headers as forward.ts builds them. */
const BASE = [
  'Accept',
  'text/html',
  'X-Code',
  '200',
  'X-Original-URI',
  '/spoof',
  'content-length',
  '7',
  'host',
  'upstream.vhost',
  'x-forwarded-for',
  '10.0.0.1,127.0.0.1',
  'x-request-id',
  'rid',
  'x-envoy-external-address',
  '127.0.0.1',
  'x-envoy-attempt-count',
  '2',
];

describe('error page request headers', () => {
  it("replace what the client sent with nginx's named location's: Host, X-Forwarded-For, X-Original-URI, X-Code, X-Format", () => {
    const { headers, attemptCountIndex } = errorRequestHeaders(BASE, PAGES, 503, {
      authority: 'demo.example.com',
      originalUri: '/a?b=1',
    });
    const pairs = [];
    for (let i = 0; i < headers.length; i += 2) pairs.push(`${headers[i]}: ${headers[i + 1]}`);
    expect(pairs).toEqual([
      'Accept: text/html',
      'x-request-id: rid',
      'x-envoy-external-address: 127.0.0.1',
      'host: demo.example.com',
      'x-forwarded-for: 127.0.0.1',
      'x-original-uri: /a?b=1',
      'x-code: 503',
      'x-format: text/html',
      'x-namespace: ns',
      'x-ingress-name: web',
      'x-service-name: app',
      'x-service-port: http',
      'x-envoy-attempt-count: 1',
    ]);
    expect(headers[attemptCountIndex - 1]).toBe('x-envoy-attempt-count');
  });

  it('for the default backend serving a route without endpoints keep the route request, adding X-Code 503', () => {
    const { headers } = errorRequestHeaders(BASE, PAGES, 503, null);
    expect(headers).toContain('upstream.vhost');
    expect(headers).toContain('7');
    // nginx sets no X-Original-URI there: the client's passes, as on any route.
    expect(headers).not.toContain('x-original-uri');
    expect(headers).toContain('/spoof');
    expect(headers.filter((h) => h.toLowerCase() === 'x-code')).toHaveLength(1);
  });
});

describe("nginx's status for an upstream failure", () => {
  it('is 504 for timeouts (connect or read) and 502 for every other error', () => {
    expect(nginxFailureStatus(PER_TRY_TIMEOUT)).toBe(504);
    expect(nginxFailureStatus(classifyUpstreamError({ code: 'ECONNREFUSED' }))).toBe(502);
    expect(nginxFailureStatus(classifyUpstreamError({ code: 'UND_ERR_CONNECT_TIMEOUT' }))).toBe(504);
    expect(nginxFailureStatus(classifyUpstreamError({ code: 'ECONNRESET' }))).toBe(502);
  });
});

describe('challengesOf', () => {
  it("collects an upstream 401's WWW-Authenticate lines, whatever their case", () => {
    expect(
      challengesOf([
        Buffer.from('WWW-Authenticate'),
        Buffer.from('Basic'),
        'www-authenticate',
        'Bearer',
        'x',
        'y',
      ]),
    ).toEqual(['www-authenticate', 'Basic', 'www-authenticate', 'Bearer']);
    expect(challengesOf(['x', 'y'])).toBeNull();
  });
});

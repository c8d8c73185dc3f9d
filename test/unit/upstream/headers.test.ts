import { describe, expect, it } from 'vitest';
import { buildResponseHeaders, rewritePath, type ForwardContext } from '../../../src/upstream/forward.ts';
import { trustedClientAddress } from '../../../src/observability/request-facts.ts';
import {
  applyHeaderOps,
  applyRouteAndDestinationOps,
  replaceHeaders,
} from '../../../src/upstream/header-ops.ts';
import { forwardTo, ops } from '../../support/snapshot-builder.ts';

const b = (s: string): Buffer => Buffer.from(s);

describe('response headers (DP-2, hop-by-hop)', () => {
  it('drops hop-by-hop and Connection-named headers, replaces server, adds service time', () => {
    const out = buildResponseHeaders(
      [
        b('Content-Type'),
        b('text/html'),
        b('Connection'),
        b('keep-alive, X-Secret'),
        b('X-Secret'),
        b('1'),
        b('Keep-Alive'),
        b('timeout=5'),
        b('Transfer-Encoding'),
        b('chunked'),
        b('Server'),
        b('nginx'),
        b('Set-Cookie'),
        b('a=1'),
        b('Set-Cookie'),
        b('b=2'),
      ],
      'istio-envoy',
      7,
    );
    expect(out).toEqual([
      'Content-Type',
      'text/html',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'server',
      'istio-envoy',
      'x-envoy-upstream-service-time',
      '7',
    ]);
  });

  it('drops what every Connection header nominates when the upstream repeats it', () => {
    const out = buildResponseHeaders(
      [
        b('Connection'),
        b('X-First'),
        b('X-First'),
        b('1'),
        b('X-Second'),
        b('2'),
        b('connection'),
        b(' , X-SECOND ,close'),
        b('X-Kept'),
        b('3'),
      ],
      'istio-envoy',
      1,
    );
    expect(out).toEqual(['X-Kept', '3', 'server', 'istio-envoy', 'x-envoy-upstream-service-time', '1']);
  });
});

describe('DP-1 trusted client address', () => {
  it('is the peer with no trusted hops', () =>
    expect(trustedClientAddress('1.1.1.1', '10.0.0.1', 0)).toBe('10.0.0.1'));
  it('is the Nth from the right of the incoming XFF', () => {
    expect(trustedClientAddress('203.0.113.128, 203.0.113.10, 203.0.113.1', '192.0.2.5', 1)).toBe(
      '203.0.113.1',
    );
    expect(trustedClientAddress('203.0.113.128, 203.0.113.10, 203.0.113.1', '192.0.2.5', 2)).toBe(
      '203.0.113.10',
    );
  });
  it('falls back to the peer when XFF is too short', () =>
    expect(trustedClientAddress('1.1.1.1', '10.0.0.1', 3)).toBe('10.0.0.1'));
});

describe('VS-21 header operations', () => {
  // Plain values never read the request (only %VAR% templates do).
  const noCtx = {} as ForwardContext;
  it('remove, then set (overwrite, case-insensitive), then add', () => {
    const h = ['X-A', '1', 'x-b', '2', 'X-C', '3'];
    applyHeaderOps(h, ops({ remove: ['x-a'], set: [['x-b', 'new']], add: [['x-c', '4']] }), noCtx);
    expect(h).toEqual(['X-C', '3', 'x-b', 'new', 'x-c', '4']);
  });
  it('single destination: destination set wins; weighted: route wins', () => {
    const route = ops({ set: [['x', 'route']] });
    const dest = ops({ set: [['x', 'dest']] });
    const one: string[] = [];
    applyRouteAndDestinationOps(one, route, dest, true, noCtx);
    expect(one).toEqual(['x', 'dest']);
    const many: string[] = [];
    applyRouteAndDestinationOps(many, route, dest, false, noCtx);
    expect(many).toEqual(['x', 'route']);
  });
});

describe('VS-12/VS-13 rewrites', () => {
  it('prefix replaces the matched prefix (and keeps the trap of //)', () => {
    expect(
      rewritePath(
        forwardTo([], {
          rewrite: { kind: 'prefix', prefix: '/foo', ignoreCase: false, replacement: '/bar' },
        }),
        '/foo/x',
      ),
    ).toBe('/bar/x');
    expect(
      rewritePath(
        forwardTo([], { rewrite: { kind: 'prefix', prefix: '/foo', ignoreCase: false, replacement: '/' } }),
        '/foo/x',
      ),
    ).toBe('//x');
    expect(
      rewritePath(
        forwardTo([], { rewrite: { kind: 'prefix', prefix: '/', ignoreCase: false, replacement: '/v2' } }),
        '/api',
      ),
    ).toBe('/v2api');
    expect(
      rewritePath(
        forwardTo([], { rewrite: { kind: 'prefix', prefix: '/FOO', ignoreCase: true, replacement: '/b' } }),
        '/foo/x',
      ),
    ).toBe('/b/x');
  });
  it('full replaces the whole path', () => {
    expect(rewritePath(forwardTo([], { rewrite: { kind: 'full', replacement: '/new/path' } }), '/foo')).toBe(
      '/new/path',
    );
  });
});

describe('headers filters add to a response', () => {
  it('replace same-named headers, except Vary, which is merged once', () => {
    const h = ['Vary', 'Accept-Encoding', 'Access-Control-Allow-Origin', '*', 'x', '1'];
    replaceHeaders(h, ['vary', 'Origin', 'access-control-allow-origin', 'https://a']);
    expect(h).toEqual([
      'Vary',
      'Accept-Encoding, Origin',
      'x',
      '1',
      'access-control-allow-origin',
      'https://a',
    ]);
    replaceHeaders(h, ['vary', 'Origin']);
    expect(h[1]).toBe('Accept-Encoding, Origin');
  });

  it('Vary named in a second header, or `*`, is left alone; none yet adds one', () => {
    const two = ['vary', 'Accept-Encoding', 'vary', 'origin'];
    replaceHeaders(two, ['vary', 'Origin']);
    expect(two).toEqual(['vary', 'Accept-Encoding', 'vary', 'origin']);
    const star = ['Vary', '*'];
    replaceHeaders(star, ['vary', 'Origin']);
    expect(star).toEqual(['Vary', '*']);
    const none: string[] = [];
    replaceHeaders(none, ['vary', 'Origin']);
    expect(none).toEqual(['vary', 'Origin']);
  });
});

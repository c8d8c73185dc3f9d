import { describe, expect, it } from 'vitest';
import { buildRedirectLocation, type RedirectRequest } from '../../../src/snapshot/redirect.ts';
import type { RedirectAction } from '../../../src/snapshot/types.ts';

function action(p: Partial<RedirectAction>): RedirectAction {
  return {
    kind: 'redirect',
    code: 301,
    scheme: null,
    authority: null,
    port: null,
    derivePort: null,
    uri: null,
    httpsRedirect: false,
    ...p,
  };
}

function req(p: Partial<RedirectRequest>): RedirectRequest {
  return { scheme: 'http', authority: 'host', path: '/foo', query: '', port: 80, ...p };
}

describe('buildRedirectLocation', () => {
  it.each([
    ['VS-16 uri replaces the whole path', action({ uri: '/bar' }), req({}), 'http://host/bar'],
    [
      'VS-16 query kept when uri has none',
      action({ uri: '/bar' }),
      req({ query: 'a=1' }),
      'http://host/bar?a=1',
    ],
    [
      'VS-16 uri with a query replaces the query',
      action({ uri: '/bar?b=2' }),
      req({ query: 'a=1' }),
      'http://host/bar?b=2',
    ],
    [
      'VS-16 no uri keeps path and query',
      action({ authority: 'new.io' }),
      req({ query: 'a=1' }),
      'http://new.io/foo?a=1',
    ],
    [
      'VS-16 authority replaces host and port',
      action({ authority: 'new.io' }),
      req({ authority: 'old.io:8080' }),
      'http://new.io/foo',
    ],
    [
      'VS-16 scheme change drops the old default port',
      action({ scheme: 'https' }),
      req({ authority: 'b:80' }),
      'https://b/foo',
    ],
    [
      'VS-16 scheme change keeps a non-default port',
      action({ scheme: 'https' }),
      req({ authority: 'b:8080' }),
      'https://b:8080/foo',
    ],
    [
      'VS-16 Host b:80 keeps :80 without a scheme change',
      action({ uri: '/x' }),
      req({ authority: 'b:80' }),
      'http://b:80/x',
    ],
    ['VS-16 port adds :N', action({ port: 8443 }), req({ authority: 'b:80' }), 'http://b:8443/foo'],
    ['VS-16 port 80 on http is omitted', action({ port: 80 }), req({ authority: 'b:9090' }), 'http://b/foo'],
    [
      'VS-16 port 443 on https is omitted',
      action({ port: 443, scheme: 'https' }),
      req({}),
      'https://host/foo',
    ],
    [
      'VS-16 FROM_REQUEST_PORT + scheme https on port 80 keeps :80',
      action({ derivePort: 'FROM_REQUEST_PORT', scheme: 'https' }),
      req({ port: 80 }),
      'https://host:80/foo',
    ],
    [
      'VS-16 FROM_REQUEST_PORT uses the gateway server port',
      action({ derivePort: 'FROM_REQUEST_PORT' }),
      req({ authority: 'h:1234', port: 8080 }),
      'http://h:8080/foo',
    ],
    [
      'VS-16 FROM_PROTOCOL_DEFAULT adds no port',
      action({ derivePort: 'FROM_PROTOCOL_DEFAULT', scheme: 'https' }),
      req({ authority: 'h:80' }),
      'https://h/foo',
    ],
    [
      'VS-16 authority and port together',
      action({ authority: 'n.io', port: 9000 }),
      req({}),
      'http://n.io:9000/foo',
    ],
    [
      'GW-18 httpsRedirect drops :80',
      action({ httpsRedirect: true }),
      req({ authority: 'h:80', query: 'q=1' }),
      'https://h/foo?q=1',
    ],
    [
      'GW-18 httpsRedirect keeps :8080',
      action({ httpsRedirect: true }),
      req({ authority: 'h:8080', path: '/x' }),
      'https://h:8080/x',
    ],
    [
      'GW-18 httpsRedirect with no port',
      action({ httpsRedirect: true }),
      req({ authority: 'h' }),
      'https://h/foo',
    ],
    [
      'IPv6 host port handling',
      action({ scheme: 'https' }),
      req({ authority: '[::1]:80' }),
      'https://[::1]/foo',
    ],
  ])('%s', (_name, a, r, want) => {
    expect(buildRedirectLocation(a, r)).toBe(want);
  });
});

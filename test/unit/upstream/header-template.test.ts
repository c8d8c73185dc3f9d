import { describe, expect, it } from 'vitest';
import { HEADER_OPERATORS } from '../../../src/snapshot/header-operators.ts';
import type { HeaderTemplate } from '../../../src/snapshot/types.ts';
import type { ForwardContext } from '../../../src/upstream/forward.ts';
import { renderHeaderValue } from '../../../src/upstream/header-template.ts';
import { parseCommandOperators } from '../../../src/util/command-operators.ts';

function template(text: string): HeaderTemplate {
  const r = parseCommandOperators(text);
  if (!r.ok) throw new Error(r.error);
  return { text, parts: r.parts };
}

/** A plaintext HTTP/1.1 request from 10.0.0.1:5555 to 10.0.0.2:8080 behind one trusted proxy. */
function ctxOf(overrides: Partial<ForwardContext> = {}): ForwardContext {
  return {
    req: {
      httpVersion: '1.1',
      rawHeaders: ['X-User', 'bob', 'X-Forwarded-For', '203.0.113.9', 'Evil', 'a\r\nb'],
      socket: {
        remoteAddress: '::ffff:10.0.0.1',
        remotePort: 5555,
        localAddress: '10.0.0.2',
        localPort: 8080,
      },
    },
    snapshot: { settings: { numTrustedProxies: 1 } },
    method: 'GET',
    scheme: 'http',
    authority: 'shop.example.com',
    path: '/cart',
    query: 'a=1',
    startTimeMs: Date.parse('2026-11-25T10:00:00.000Z'),
    route: { source: { ruleName: 'cart' } },
    clusterName: 'outbound|80||cart.default.svc.cluster.local',
    upstreamHost: { hostPort: '10.1.0.7:8080' },
    status: 200,
    responseFlags: '-',
    ...overrides,
  } as unknown as ForwardContext;
}

describe('VS-21 header value templates', () => {
  it.each([
    ['%REQ(x-user)%', 'bob'],
    ['%REQ(x-none?x-user)%', 'bob'],
    ['%REQ(:authority)% %REQ(:path)% %REQ(:method)%', 'shop.example.com /cart?a=1 GET'],
    ['%START_TIME%', '2026-11-25T10:00:00.000Z'],
    ['%PROTOCOL%', 'HTTP/1.1'],
    ['%DOWNSTREAM_REMOTE_ADDRESS%', '203.0.113.9:0'],
    ['%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', '203.0.113.9'],
    ['%DOWNSTREAM_REMOTE_PORT%', '0'],
    ['%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%', '10.0.0.1:5555'],
    ['%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%', '10.0.0.1'],
    ['%DOWNSTREAM_LOCAL_ADDRESS%', '10.0.0.2:8080'],
    ['%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%', '10.0.0.2'],
    ['%DOWNSTREAM_LOCAL_PORT%', '8080'],
    ['%UPSTREAM_CLUSTER%', 'outbound|80||cart.default.svc.cluster.local'],
    ['%UPSTREAM_REMOTE_ADDRESS%', '10.1.0.7:8080'],
    ['%RESPONSE_CODE% %RESPONSE_FLAGS%', '200 -'],
    ['%ROUTE_NAME%', 'cart'],
    ['%REQ(evil)%', 'ab'],
  ])('%s → %s', (text, want) => {
    expect(renderHeaderValue(template(text), ctxOf())).toBe(want);
  });

  it('without trusted proxies the client is the peer, with its port', () => {
    const ctx = ctxOf({ snapshot: { settings: { numTrustedProxies: 0 } } } as Partial<ForwardContext>);
    expect(renderHeaderValue(template('%DOWNSTREAM_REMOTE_ADDRESS%'), ctx)).toBe('10.0.0.1:5555');
  });

  it('TLS-only operators are empty on plaintext; every listed operator renders without throwing', () => {
    for (const [name, args] of HEADER_OPERATORS) {
      const text = args === 'required' ? `%${name}(x-user)%` : `%${name}%`;
      expect(() => renderHeaderValue(template(text), ctxOf()), name).not.toThrow();
    }
    expect(renderHeaderValue(template('%DOWNSTREAM_TLS_VERSION%%REQUESTED_SERVER_NAME%'), ctxOf())).toBe('');
  });
});

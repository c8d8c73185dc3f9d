import { describe, expect, it } from 'vitest';
import type { HeaderTemplate } from '../../../src/snapshot/types.ts';
import type { ForwardContext } from '../../../src/upstream/forward.ts';
import { renderHeaderValue } from '../../../src/upstream/header-template.ts';
import {
  COMMAND_OPERATORS,
  operatorNames,
  parseCommandOperators,
  type OperatorName,
} from '../../../src/util/command-operators.ts';
import { compileAccessLogFormat } from '../../../src/observability/access-log.ts';
import { fakeRequest } from '../observability/fake-request.ts';

function template(text: string): HeaderTemplate {
  const r = parseCommandOperators(text, 'header');
  if (r.errors.length > 0) throw new Error(r.errors.join('; '));
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
    for (const name of operatorNames('header')) {
      const args = COMMAND_OPERATORS[name as OperatorName].args;
      const text = args === 'required' ? `%${name}(x-user)%` : `%${name}%`;
      expect(() => renderHeaderValue(template(text), ctxOf()), name).not.toThrow();
    }
    expect(renderHeaderValue(template('%DOWNSTREAM_TLS_VERSION%%REQUESTED_SERVER_NAME%'), ctxOf())).toBe('');
  });
});

describe('one evaluator for header values and the access log', () => {
  it('every operator a header value takes prints the same in the access log (trusted hop included)', () => {
    const r = fakeRequest({
      rawHeaders: ['Host', 'shop.example.com', 'X-Forwarded-For', '203.0.113.9', 'User-Agent', 'curl/8'],
      settings: { numTrustedProxies: 1 },
    });
    for (const name of operatorNames('header')) {
      const args = COMMAND_OPERATORS[name as OperatorName].args;
      const text = args === 'required' ? `%${name}(user-agent)%` : `%${name}%`;
      const logged = compileAccessLogFormat({ encoding: 'TEXT', format: text }).render(r).trimEnd();
      const header = renderHeaderValue(template(text), r);
      // The access log prints '-' where a header is left out.
      expect(header === '' ? '-' : header, name).toBe(logged);
    }
  });

  it('%DOWNSTREAM_REMOTE_ADDRESS% is the trusted client from x-forwarded-for (port 0), as Envoy sets it', () => {
    const r = fakeRequest({
      rawHeaders: ['Host', 'h', 'X-Forwarded-For', '203.0.113.9'],
      settings: { numTrustedProxies: 1 },
    });
    const f = compileAccessLogFormat({
      encoding: 'TEXT',
      format: '%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%',
    });
    expect(f.render(r)).toBe('203.0.113.9:0 10.0.0.7:50123\n');
  });
});

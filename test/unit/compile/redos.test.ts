import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import { findRoute, findVirtualHost } from '../../../src/snapshot/lookup.ts';
import { compileYaml, gatewayYaml, requestView } from '../../simulate/compile-yaml.ts';

/**
 * VS-7/VS-8: route regexes run on RE2 (re2js), linear in the input. A backtracking engine takes
 * exponential time on these patterns with a near-miss input; RE2 must answer at once.
 */
const HOSTILE = [
  { pattern: '(a+)+b', input: 'a'.repeat(50_000) },
  { pattern: '(x+x+)+y', input: 'x'.repeat(50_000) },
  { pattern: '(.*a){12}', input: 'a'.repeat(50_000) + '!' },
];

describe('ReDoS', () => {
  it.each(HOSTILE)('VS-7 uri regex $pattern on a 50k hostile path finishes fast', ({ pattern, input }) => {
    const yaml = `${gatewayYaml('gw', '  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ["*"]')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: redos, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {regex: ${JSON.stringify(pattern)}}}, {headers: {x-h: {regex: ${JSON.stringify(pattern)}}}}]
    directResponse: {status: 200}
`;
    const { snapshot, messages } = compileYaml(yaml);
    expect(messages.filter((m) => m.startsWith('error'))).toEqual([]);
    const table = snapshot.listeners.get(8080)?.httpTable;
    const vhost = table ? findVirtualHost(table, 'a.io') : null;
    expect(vhost?.routes).toHaveLength(2);
    const req = requestView({ path: `/${input}`, headers: { 'x-h': input } });
    const started = performance.now();
    const route = findRoute(vhost!, req);
    const elapsedMs = performance.now() - started;
    expect(route).toBeNull();
    expect(elapsedMs).toBeLessThan(1000);
  });

  it('the engine behind conditions is RE2 (it rejects backreferences a backtracking engine accepts)', () => {
    expect(() => RE2JS.compile('(a)\\1')).toThrow();
    const yaml = `${gatewayYaml('gw', '  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ["*"]')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backref, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {regex: "(a)\\\\1"}}]
    directResponse: {status: 200}
`;
    const { messages } = compileYaml(yaml);
    expect(messages.some((m) => m.includes('SLUICE_REGEX_INVALID'))).toBe(true);
  });
});

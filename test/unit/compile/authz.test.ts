/**
 * AuthorizationPolicy semantics (AP-1..AP-8) through the real compile: YAML → snapshot filters,
 * then each RBAC filter's decision for requests built as the data plane builds them.
 */
import { describe, expect, test } from 'vitest';
import { compileYaml, requestView } from '../../simulate/compile-yaml.ts';
import { decideRbac, policyId } from '../../../src/snapshot/policy.ts';
import type { HttpFilter, PolicyRequest, RbacFilter, RequestAuth } from '../../../src/snapshot/types.ts';

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
`;

function policy(name: string, spec: string, namespace = 'istio-system', extra = ''): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${namespace}${extra}}
spec:
${spec
  .split('\n')
  .map((l) => '  ' + l)
  .join('\n')}
`;
}

function filtersOf(yaml: string): readonly HttpFilter[] {
  const c = compileYaml(GATEWAY + yaml);
  const errors = c.messages.filter((m) => m.startsWith('error'));
  expect(errors).toEqual([]);
  return c.snapshot.listeners.get(8080)!.httpTable!.filters ?? [];
}

function request(p: Partial<PolicyRequest> & { auth?: RequestAuth | null } = {}): PolicyRequest {
  const base = requestView(p);
  return {
    ...base,
    peerIp: p.peerIp ?? '10.0.0.1',
    remoteIp: p.remoteIp ?? p.peerIp ?? '10.0.0.1',
    localIp: p.localIp ?? '127.0.0.1',
    sni: p.sni ?? '',
    peerPrincipal: p.peerPrincipal ?? null,
    auth: p.auth ?? null,
  };
}

/** The pipeline's RBAC verdict: the first filter that denies, else allow. */
function verdict(filters: readonly HttpFilter[], req: PolicyRequest): string {
  for (const f of filters) {
    if (f.kind !== 'rbac') continue;
    const v = decideRbac(f as RbacFilter, req);
    if (v.kind === 'deny') return `deny ${policyId(v.match)}`;
  }
  return 'allow';
}

function auth(iss: string, sub: string, claims: Record<string, unknown> = {}): RequestAuth {
  return {
    principal: `${iss}/${sub}`,
    issuer: iss,
    subject: sub,
    audiences: [],
    presenter: '',
    claims: { iss, sub, ...claims },
  };
}

describe('AP-2/AP-3 actions and defaults', () => {
  test('no policy: no filters at all', () => {
    const c = compileYaml(GATEWAY);
    expect(c.snapshot.listeners.get(8080)!.httpTable!.filters).toBeUndefined();
  });

  test('spec: {} denies everything (ALLOW with no rules)', () => {
    const f = filtersOf(policy('deny-all', '{}'));
    expect(verdict(f, request())).toBe('deny none');
  });

  test('rules: [{}] allows everything', () => {
    const f = filtersOf(policy('allow-all', 'rules: [{}]'));
    expect(verdict(f, request({ path: '/anything' }))).toBe('allow');
  });

  test('DENY beats ALLOW; ALLOW policies that exist and do not match deny', () => {
    const f = filtersOf(
      policy('deny-admin', 'action: DENY\nrules:\n- to: [{operation: {paths: ["/admin*"]}}]') +
        policy('allow-api', 'rules:\n- to: [{operation: {paths: ["/api/*", "/admin/x"]}}]'),
    );
    expect(verdict(f, request({ path: '/admin/x' }))).toBe(
      'deny ns[istio-system]-policy[deny-admin]-rule[0]',
    );
    expect(verdict(f, request({ path: '/api/v1' }))).toBe('allow');
    expect(verdict(f, request({ path: '/other' }))).toBe('deny none');
  });

  test('filters run in the order AUDIT, DENY, ALLOW', () => {
    const f = filtersOf(
      policy('a', 'rules: [{}]') +
        policy('d', 'action: DENY\nrules: [{}]') +
        policy('au', 'action: AUDIT\nrules: [{}]'),
    );
    expect(f.map((x) => (x.kind === 'rbac' ? x.action : x.kind))).toEqual(['AUDIT', 'DENY', 'ALLOW']);
  });

  test('istio.io/dry-run policies are shadow only', () => {
    const f = filtersOf(
      policy(
        'deny-all',
        'action: DENY\nrules: [{}]',
        'istio-system',
        ', annotations: {istio.io/dry-run: "true"}',
      ),
    );
    const rbac = f[0] as RbacFilter;
    expect(rbac.policies).toEqual([]);
    expect(rbac.shadow.map((p) => p.name)).toEqual(['deny-all']);
    expect(verdict(f, request())).toBe('allow');
  });
});

describe('AP-4..AP-6 value forms', () => {
  const one = (op: string): readonly HttpFilter[] =>
    filtersOf(policy('p', `action: DENY\nrules:\n- to: [{operation: {${op}}}]`));

  test('paths: exact, prefix, suffix, presence; case-sensitive; query never seen', () => {
    const f = one('paths: ["/exact", "/pre*", "*.png"]');
    expect(verdict(f, request({ path: '/exact' }))).toMatch(/^deny/);
    expect(verdict(f, request({ path: '/EXACT' }))).toBe('allow');
    expect(verdict(f, request({ path: '/prefix/x' }))).toMatch(/^deny/);
    expect(verdict(f, request({ path: '/a/b.png' }))).toMatch(/^deny/);
    expect(verdict(f, request({ path: '/exact2', query: 'x=/exact' }))).toBe('allow');
  });

  test('path templates {*} and {**}', () => {
    const f = one('paths: ["/users/{*}/profile", "/files/{**}"]');
    expect(verdict(f, request({ path: '/users/42/profile' }))).toMatch(/^deny/);
    expect(verdict(f, request({ path: '/users/42/x/profile' }))).toBe('allow');
    expect(verdict(f, request({ path: '/users//profile' }))).toBe('allow');
    expect(verdict(f, request({ path: '/files/a/b/c' }))).toMatch(/^deny/);
    expect(verdict(f, request({ path: '/files/' }))).toMatch(/^deny/);
    // starts and ends as the template does, the two overlapping: still not a match
    expect(verdict(f, request({ path: '/users/profile' }))).toBe('allow');
    expect(verdict(f, request({ path: '/users/42/profile/' }))).toBe('allow');
    const g = one('paths: ["/a/{*}/b/{*}/c"]');
    expect(verdict(g, request({ path: '/a/x/b/y/c' }))).toMatch(/^deny/);
    expect(verdict(g, request({ path: '/a/x/b/c' }))).toBe('allow');
    expect(verdict(g, request({ path: '/a/x/b/y/cc' }))).toBe('allow');
  });

  test('hosts compare case-insensitively and with the port', () => {
    const f = one('hosts: ["api.example.com", "*.internal", "admin.example.com:*"]');
    expect(verdict(f, request({ authority: 'API.example.com' }))).toMatch(/^deny/);
    expect(verdict(f, request({ authority: 'api.example.com:8080' }))).toBe('allow');
    expect(verdict(f, request({ authority: 'x.Internal' }))).toMatch(/^deny/);
    expect(verdict(f, request({ authority: 'admin.example.com:9999' }))).toMatch(/^deny/);
  });

  test('methods and ports; notX is none of', () => {
    const f = one('methods: ["POST", "DELETE"], notPorts: ["9090"]');
    expect(verdict(f, request({ method: 'POST', port: 8080 }))).toMatch(/^deny/);
    expect(verdict(f, request({ method: 'GET', port: 8080 }))).toBe('allow');
    expect(verdict(f, request({ method: 'POST', port: 9090 }))).toBe('allow');
  });

  test('ipBlocks (direct peer) vs remoteIpBlocks (trusted client)', () => {
    const f = filtersOf(
      policy(
        'p',
        'action: DENY\nrules:\n- from: [{source: {ipBlocks: ["10.1.0.0/16"]}}]\n- from: [{source: {remoteIpBlocks: ["203.0.113.7", "2001:db8::/32"]}}]',
      ),
    );
    expect(verdict(f, request({ peerIp: '10.1.2.3', remoteIp: '1.1.1.1' }))).toMatch(/rule\[0\]/);
    expect(verdict(f, request({ peerIp: '10.2.2.3', remoteIp: '203.0.113.7' }))).toMatch(/rule\[1\]/);
    expect(verdict(f, request({ peerIp: '10.2.2.3', remoteIp: '2001:db8::1' }))).toMatch(/rule\[1\]/);
    expect(verdict(f, request({ peerIp: '10.2.2.3', remoteIp: '203.0.113.8' }))).toBe('allow');
  });

  test('requestPrincipals split at the last slash; * needs a token', () => {
    const f = filtersOf(
      policy(
        'p',
        'rules:\n- from: [{source: {requestPrincipals: ["https://id.example.com/alice", "https://other/*"]}}]',
      ),
    );
    expect(verdict(f, request({ auth: auth('https://id.example.com', 'alice') }))).toBe('allow');
    expect(verdict(f, request({ auth: auth('https://id.example.com', 'bob') }))).toBe('deny none');
    expect(verdict(f, request({ auth: auth('https://other', 'anyone') }))).toBe('allow');
    expect(verdict(f, request())).toBe('deny none');
    const star = filtersOf(policy('p', 'rules:\n- from: [{source: {requestPrincipals: ["*"]}}]'));
    expect(verdict(star, request())).toBe('deny none');
    expect(verdict(star, request({ auth: auth('i', 's') }))).toBe('allow');
  });
});

describe('AP-7 when conditions', () => {
  test('request.headers (case-insensitive name), claims (nested, lists), audiences', () => {
    const f = filtersOf(
      policy(
        'p',
        `rules:
- when:
  - {key: "request.headers[X-Tenant]", values: ["acme"]}
  - {key: "request.auth.claims[groups]", values: ["admin"]}
  - {key: "request.auth.claims[org][team]", notValues: ["blocked"]}`,
      ),
    );
    const good = auth('i', 's', { groups: ['dev', 'admin'], org: { team: 'core' } });
    expect(verdict(f, request({ headers: { 'x-tenant': 'acme' }, auth: good }))).toBe('allow');
    expect(verdict(f, request({ headers: { 'x-tenant': 'other' }, auth: good }))).toBe('deny none');
    const blocked = auth('i', 's', { groups: 'admin', org: { team: 'blocked' } });
    expect(verdict(f, request({ headers: { 'x-tenant': 'acme' }, auth: blocked }))).toBe('deny none');
    expect(verdict(f, request({ headers: { 'x-tenant': 'acme' } }))).toBe('deny none');
  });

  test('connection.sni, destination.port, remote.ip', () => {
    const f = filtersOf(
      policy(
        'p',
        `action: DENY
rules:
- when:
  - {key: connection.sni, values: ["*.secret.example.com"]}
- when:
  - {key: destination.port, values: ["8080"]}
  - {key: remote.ip, values: ["192.0.2.0/24"]}`,
      ),
    );
    expect(verdict(f, request({ sni: 'a.secret.example.com' }))).toMatch(/rule\[0\]/);
    expect(verdict(f, request({ remoteIp: '192.0.2.9' }))).toMatch(/rule\[1\]/);
    expect(verdict(f, request({ remoteIp: '192.0.3.9' }))).toBe('allow');
  });
});

describe('refused: what cannot be enforced exactly is an error, never a silent open door', () => {
  const refused = (yaml: string): string[] =>
    compileYaml(GATEWAY + yaml).messages.filter((m) => m.includes('SLUICE_POLICY_UNENFORCEABLE'));

  test('principals without a server asking for client certificates (DENY and ALLOW)', () => {
    expect(
      refused(
        policy('d', 'action: DENY\nrules:\n- from: [{source: {principals: ["cluster.local/ns/a/sa/b"]}}]'),
      ),
    ).toHaveLength(1);
    expect(refused(policy('a', 'rules:\n- from: [{source: {namespaces: ["prod"]}}]'))[0]).toMatch(
      /spec\.rules\[0\]\.from\[0\]\.source\.namespaces: source\.namespace needs a verified client certificate, but port 8080/,
    );
  });

  test('a rule scoped by to.operation.ports to other ports is fine', () => {
    expect(
      refused(
        policy(
          'a',
          'rules:\n- from: [{source: {principals: ["x"]}}]\n  to: [{operation: {ports: ["8443"]}}]',
        ),
      ),
    ).toEqual([]);
  });

  test('Envoy metadata conditions', () => {
    expect(
      refused(
        policy(
          'a',
          'rules:\n- when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["x"]}]',
        ),
      )[0],
    ).toMatch(/reads Envoy filter metadata/);
  });

  test('CUSTOM naming no provider', () => {
    expect(refused(policy('c', 'action: CUSTOM\nprovider: {name: nope}\nrules: [{}]'))[0]).toMatch(
      /no extensionProviders entry named "nope"/,
    );
  });
});

describe('AP-1 selection', () => {
  test('other namespaces do not apply; the gateway namespace and root do; selectors match --labels', () => {
    const f = filtersOf(
      policy('elsewhere', '{}', 'default') +
        policy('wrong-labels', 'selector: {matchLabels: {app: other}}\nrules: [{}]') +
        policy(
          'mine',
          'selector: {matchLabels: {istio: ingressgateway}}\naction: DENY\nrules:\n- to: [{operation: {paths: ["/x"]}}]',
        ),
    );
    const names = f.flatMap((x) => (x.kind === 'rbac' ? x.policies.map((p) => p.name) : []));
    expect(names).toEqual(['mine']);
  });

  test('a targetRef to a Gateway API Gateway applies through the gateway-name label', () => {
    const yaml = policy(
      'p',
      'targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: public}]\naction: DENY\nrules: [{}]',
    );
    const none = compileYaml(GATEWAY + yaml);
    expect(none.snapshot.listeners.get(8080)!.httpTable!.filters).toBeUndefined();
    const mine = compileYaml(GATEWAY + yaml, {
      labels: { istio: 'ingressgateway', 'gateway.networking.k8s.io/gateway-name': 'public' },
    });
    expect(mine.snapshot.listeners.get(8080)!.httpTable!.filters).toHaveLength(1);
  });

  test('a Service targetRef (for waypoints) does not apply: an info; a GatewayClass one sluice cannot resolve: a warning', () => {
    const svc = compileYaml(
      GATEWAY + policy('p', 'targetRefs: [{kind: Service, group: "", name: web}]\nrules: [{}]'),
    );
    expect(svc.messages.filter((m) => m.includes('AuthorizationPolicy'))).toEqual([
      expect.stringMatching(/^info .*does not apply to this gateway/),
    ]);
    const cls = compileYaml(
      GATEWAY +
        policy(
          'p',
          'targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio}]\nrules: [{}]',
        ),
    );
    expect(
      cls.messages.some((m) => m.startsWith('warning') && m.includes('targetRefs[0]: does not apply')),
    ).toBe(true);
    expect(cls.snapshot.listeners.get(8080)!.httpTable!.filters).toBeUndefined();
  });
});

describe('AP-8 on TCP listeners', () => {
  const TCP = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
`;
  const tcpFilters = (yaml: string): readonly RbacFilter[] => {
    const c = compileYaml(TCP + yaml);
    expect(c.messages.filter((m) => m.startsWith('error'))).toEqual([]);
    return c.snapshot.listeners.get(9000)!.tcpFilters ?? [];
  };

  test('ALLOW drops a rule that reads HTTP attributes (stricter)', () => {
    const f = tcpFilters(
      policy(
        'a',
        'rules:\n- to: [{operation: {paths: ["/x"]}}]\n- from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]',
      ),
    );
    expect(f[0]!.policies[0]!.rules.map((r) => r.index)).toEqual([1]);
    expect(verdict(f, request({ port: 9000, peerIp: '10.1.1.1' }))).toBe('allow');
    expect(verdict(f, request({ port: 9000, peerIp: '192.0.2.1' }))).toBe('deny none');
  });

  test('DENY ignores the HTTP conditions of a rule (broader)', () => {
    const f = tcpFilters(policy('d', 'action: DENY\nrules:\n- to: [{operation: {methods: ["POST"]}}]'));
    expect(verdict(f, request({ port: 9000, method: 'GET' }))).toMatch(/^deny/);
  });

  test('CUSTOM that could match TCP connections is refused', () => {
    const c = compileYaml(
      TCP +
        `---
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh, namespace: istio-system}
spec:
  extensionProviders:
  - name: authz
    envoyExtAuthzHttp: {service: authz.example.com, port: 8000}
` +
        policy('c', 'action: CUSTOM\nprovider: {name: authz}\nrules: [{}]'),
    );
    expect(c.messages.some((m) => m.includes('CUSTOM authorization would apply to TCP connections'))).toBe(
      true,
    );
  });
});

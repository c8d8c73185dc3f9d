import { describe, expect, it } from 'vitest';
import { compileYaml } from '../../simulate/compile-yaml.ts';

const ap = (name: string, namespace: string, spec: string, annotations = '') =>
  `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${namespace}${annotations} }
spec: ${spec}
`;

const policyLines = (text: string, identity = {}) =>
  compileYaml(text, identity).messages.filter((m) => /AuthorizationPolicy|RequestAuthentication/.test(m));

describe('security policies sluice does not enforce yet', () => {
  it('a deny-all AuthorizationPolicy that applies to this gateway is a warning that says it is NOT ENFORCED', () => {
    const r = compileYaml(ap('deny-all', 'istio-system', '{}'));
    expect(r.messages).toEqual([
      'warning test.yaml#1 AuthorizationPolicy istio-system/deny-all: AuthorizationPolicy is not implemented by sluice; it is NOT ENFORCED: requests it would deny are served (it applies to this gateway: it is in the root namespace istio-system, which applies mesh-wide and has no selector) [SLUICE_POLICY_NOT_ENFORCED]',
    ]);
    expect(r.diagnostics[0]!.unsupported).toBe('*');
  });

  it('a RequestAuthentication that applies says tokens are not validated', () => {
    expect(
      policyLines(
        `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: ingress }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  jwtRules: [{ issuer: https://issuer.example.com, jwksUri: https://issuer.example.com/jwks }]
`,
        { namespace: 'ingress' },
      ),
    ).toEqual([
      "warning test.yaml#1 RequestAuthentication ingress/jwt: RequestAuthentication is not implemented by sluice; it is NOT ENFORCED: JWTs are not validated, so requests with an expired or forged token are served (Istio answers 401) and no claims reach routing (it applies to this gateway: it is in this gateway's namespace ingress and its selector istio=ingressgateway matches this gateway's labels) [SLUICE_POLICY_NOT_ENFORCED]",
    ]);
  });

  it('CUSTOM names the authorizer that is never asked', () => {
    expect(
      policyLines(ap('ext', 'istio-system', '{ action: CUSTOM, provider: { name: opa }, rules: [{}] }')),
    ).toEqual([
      expect.stringContaining(
        'requests it would deny are served (the external authorizer opa is never asked; it applies',
      ),
    ]);
  });

  it('a dry run or AUDIT, which Istio does not enforce either, is an info', () => {
    const lines = policyLines(
      ap(
        'shadow',
        'istio-system',
        '{ action: DENY, rules: [{}] }',
        ', annotations: { istio.io/dry-run: "true" }',
      ) +
        '---\n' +
        ap('audit', 'istio-system', '{ action: AUDIT, rules: [{}] }'),
    );
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^info {4}test\.yaml#1 AuthorizationPolicy istio-system\/shadow: .*it is a dry run, which Istio only logs/,
    );
    expect(lines[1]).toMatch(
      /^info {4}test\.yaml#2 AuthorizationPolicy istio-system\/audit: .*AUDIT only marks requests/,
    );
  });

  it('a policy that does not apply to this gateway is only an info', () => {
    expect(policyLines(ap('shop-only', 'shop', '{}'))).toEqual([
      "info    test.yaml#1 AuthorizationPolicy shop/shop-only: does not apply to this gateway: it is in namespace shop; only policies in the root namespace istio-system or this gateway's namespace istio-system apply to it [SLUICE_CONFIG_NOT_APPLICABLE]",
    ]);
    expect(policyLines(ap('other', 'istio-system', '{ selector: { matchLabels: { app: api } } }'))).toEqual([
      expect.stringMatching(
        /^info .*its selector app=api does not match this gateway's labels istio=ingressgateway/,
      ),
    ]);
  });

  it('a targetRef to a Gateway API Gateway this gateway cannot tell it is: a warning naming the field', () => {
    const TARGETS_EDGE = ap(
      'edge',
      'istio-system',
      '{ targetRef: { group: gateway.networking.k8s.io, kind: Gateway, name: edge } }',
    );
    expect(policyLines(TARGETS_EDGE)).toEqual([
      expect.stringMatching(
        /^warning test\.yaml#1 AuthorizationPolicy istio-system\/edge: spec\.targetRef: does not apply to this gateway: .* add gateway\.networking\.k8s\.io\/gateway-name=edge to --labels if it is \[SLUICE_CONFIG_NOT_APPLICABLE\]$/,
      ),
    ]);
    // Labelled as that Gateway's instance, the policy applies (and is not enforced).
    expect(
      policyLines(TARGETS_EDGE, { labels: { 'gateway.networking.k8s.io/gateway-name': 'edge' } }),
    ).toEqual([expect.stringContaining('[SLUICE_POLICY_NOT_ENFORCED]')]);
  });
});

import { describe, expect, it } from 'vitest';
import { selectPolicy, type SelectablePolicy } from '../../../src/compile/policy-selection.ts';
import type { GatewayIdentity } from '../../../src/model/sluice.ts';

const GATEWAY: GatewayIdentity = {
  namespace: 'ingress',
  labels: { istio: 'ingressgateway', app: 'edge' },
  rootNamespace: 'istio-system',
};

/** A Gateway API gateway's pods carry the gateway-name label. */
const GATEWAY_API: GatewayIdentity = {
  ...GATEWAY,
  labels: { ...GATEWAY.labels, 'gateway.networking.k8s.io/gateway-name': 'edge' },
};

const policy = (namespace: string, spec: SelectablePolicy['spec'] = {}): SelectablePolicy => ({
  namespace,
  spec,
});

const gatewayRef = (name: string, extra: Record<string, string> = {}) => ({
  group: 'gateway.networking.k8s.io',
  kind: 'Gateway',
  name,
  ...extra,
});

const verdict = (p: SelectablePolicy, identity = GATEWAY) => selectPolicy(p, identity).verdict;

describe('selectPolicy: which RequestAuthentication/AuthorizationPolicy apply to this gateway (RA-1, AP-1)', () => {
  it('a policy in the root namespace without selector applies mesh-wide', () => {
    const s = selectPolicy(policy('istio-system'), GATEWAY);
    expect(s).toEqual({
      verdict: 'selected',
      why: 'it is in the root namespace istio-system, which applies mesh-wide and has no selector',
    });
  });

  it("a policy in the gateway's own namespace without selector applies", () => {
    expect(selectPolicy(policy('ingress'), GATEWAY)).toEqual({
      verdict: 'selected',
      why: "it is in this gateway's namespace ingress and has no selector",
    });
  });

  it('a policy in any other namespace never applies, whatever its selector', () => {
    expect(verdict(policy('shop'))).toBe('not-selected');
    expect(verdict(policy('shop', { selector: { matchLabels: { istio: 'ingressgateway' } } }))).toBe(
      'not-selected',
    );
    expect(selectPolicy(policy('shop'), GATEWAY)).toMatchObject({
      why: "it is in namespace shop; only policies in the root namespace istio-system or this gateway's namespace ingress apply to it",
    });
  });

  it('selector.matchLabels must all be among the gateway labels, in the root namespace too', () => {
    expect(verdict(policy('ingress', { selector: { matchLabels: { app: 'edge' } } }))).toBe('selected');
    expect(
      verdict(
        policy('istio-system', { selector: { matchLabels: { app: 'edge', istio: 'ingressgateway' } } }),
      ),
    ).toBe('selected');
    expect(
      selectPolicy(policy('istio-system', { selector: { matchLabels: { app: 'shop' } } }), GATEWAY),
    ).toEqual({
      verdict: 'not-selected',
      why: "its selector app=shop does not match this gateway's labels app=edge,istio=ingressgateway",
    });
    expect(verdict(policy('ingress', { selector: { matchLabels: { app: 'edge', tier: 'x' } } }))).toBe(
      'not-selected',
    );
  });

  it('an empty selector (no matchLabels) selects every workload', () => {
    expect(verdict(policy('ingress', { selector: {} }))).toBe('selected');
    expect(verdict(policy('ingress', { selector: { matchLabels: {} } }))).toBe('selected');
  });

  it('targetRef to the Gateway API Gateway this gateway is: selected, by targetRef or targetRefs', () => {
    expect(selectPolicy(policy('ingress', { targetRef: gatewayRef('edge') }), GATEWAY_API)).toEqual({
      verdict: 'selected',
      why: "it is in this gateway's namespace ingress and its targetRef names Gateway edge, which this gateway is (gateway.networking.k8s.io/gateway-name=edge)",
    });
    expect(
      verdict(policy('ingress', { targetRefs: [gatewayRef('other'), gatewayRef('edge')] }), GATEWAY_API),
    ).toBe('selected');
    expect(
      verdict(policy('ingress', { targetRef: gatewayRef('edge', { namespace: 'ingress' }) }), GATEWAY_API),
    ).toBe('selected');
  });

  it('targetRef to another Gateway, or from another namespace (root included), does not select', () => {
    expect(verdict(policy('ingress', { targetRef: gatewayRef('other') }), GATEWAY_API)).toBe('not-selected');
    expect(verdict(policy('istio-system', { targetRef: gatewayRef('edge') }), GATEWAY_API)).toBe(
      'not-selected',
    );
    expect(verdict(policy('shop', { targetRef: gatewayRef('edge') }), GATEWAY_API)).toBe('not-selected');
  });

  it('targetRefs are for waypoints when they name a Service, ServiceEntry or GatewayClass: never a gateway', () => {
    for (const ref of [
      { kind: 'Service', name: 'edge' },
      { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'edge' },
      { group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'istio-waypoint' },
    ]) {
      expect(verdict(policy('ingress', { targetRef: ref }), GATEWAY_API)).toBe('not-selected');
      expect(verdict(policy('ingress', { targetRef: ref }), GATEWAY)).toBe('not-selected');
    }
  });

  it('a targetRef wins over a selector: with targetRefs the selector is not consulted', () => {
    expect(verdict(policy('ingress', { selector: {}, targetRef: gatewayRef('other') }), GATEWAY_API)).toBe(
      'not-selected',
    );
  });

  it('a Gateway targetRef this gateway cannot resolve (no gateway-name label) is unresolved, not applied', () => {
    const s = selectPolicy(
      policy('ingress', { targetRefs: [{ kind: 'Service', name: 'x' }, gatewayRef('edge')] }),
      GATEWAY,
    );
    expect(s).toEqual({
      verdict: 'unresolved',
      path: 'spec.targetRefs[1]',
      why: "it targets Gateway API Gateway edge, and this gateway's labels have no gateway.networking.k8s.io/gateway-name to say whether it is that Gateway, so (as in Istio) the policy does not apply; add gateway.networking.k8s.io/gateway-name=edge to --labels if it is",
    });
    expect(selectPolicy(policy('ingress', { targetRef: gatewayRef('edge') }), GATEWAY)).toMatchObject({
      verdict: 'unresolved',
      path: 'spec.targetRef',
    });
  });

  it('a Gateway API gateway still honours selectors on policies without targetRefs (Istio default)', () => {
    expect(verdict(policy('ingress', { selector: { matchLabels: { app: 'edge' } } }), GATEWAY_API)).toBe(
      'selected',
    );
  });

  it('the root namespace can be the gateway namespace: targetRefs in it select', () => {
    const rootGateway: GatewayIdentity = { ...GATEWAY_API, namespace: 'istio-system' };
    expect(verdict(policy('istio-system', { targetRef: gatewayRef('edge') }), rootGateway)).toBe('selected');
  });
});

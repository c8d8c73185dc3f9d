import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../src/config/index.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';
import type { MeshConfigSpec } from '../../../src/model/sluice.ts';
import { acmeInputsOf, acmeTargets, backoffDelayMs, renewalDecision } from '../../../src/providers/acme.ts';
import { makeCa, makeServerCert } from '../../../src/tls/self-signed.ts';
import { acmeGateway } from '../../support/pebble.ts';

describe('acmeTargets', () => {
  it('collects the non-wildcard hosts of terminating servers per credentialName, warning on wildcards', () => {
    const gw = acmeGateway('public', 'le', [
      { credentialName: 'shop', hosts: ['shop.example.com', 'ns1/www.shop.example.com'] },
      { credentialName: 'shop', hosts: ['Shop.example.com', 'm.shop.example.com'], port: 9443 },
      { credentialName: 'wild', hosts: ['*.example.com', '*'] },
    ]);
    const { targets, warnings } = acmeTargets([gw], new Set(['le']));
    expect(targets).toEqual([
      {
        issuer: 'le',
        credential: 'shop',
        hosts: ['m.shop.example.com', 'shop.example.com', 'www.shop.example.com'],
      },
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/\*\.example\.com .*wildcard.*DNS-01/);
  });

  it('ignores Gateways without the annotation, PASSTHROUGH servers and other workloads; warns on an unknown issuer', () => {
    const plain = {
      ...acmeGateway('plain', 'le', [{ credentialName: 'a', hosts: ['a.example.com'] }]),
      annotations: {},
    };
    const base = acmeGateway('pt', 'le', [{ credentialName: 'b', hosts: ['b.example.com'] }]);
    const passthrough = {
      ...base,
      spec: {
        servers: base.spec.servers.map((s) =>
          s.tls ? { ...s, tls: { mode: 'PASSTHROUGH' as const, credentialName: 'b' } } : s,
        ),
      },
    };
    const unknown = acmeGateway('u', 'nope', [{ credentialName: 'c', hosts: ['c.example.com'] }]);
    const o = acmeGateway('o', 'le', [{ credentialName: 'd', hosts: ['d.example.com'] }]);
    const other = { ...o, spec: { ...o.spec, selector: { istio: 'egressgateway' } } };
    const { targets, warnings } = acmeTargets([plain, passthrough, unknown, other], new Set(['le']), {
      istio: 'ingressgateway',
    });
    expect(targets).toEqual([]);
    expect(warnings).toEqual([
      expect.stringMatching(/Gateway istio-system\/u: ACME issuer "nope" is not declared/),
    ]);
  });
});

describe('renewalDecision', () => {
  const ca = makeCa();
  const now = Date.parse('2026-01-01T00:00:00Z');
  // makeServerCert back-dates notBefore by one minute.
  const cert = makeServerCert(ca, ['a.example.com'], { days: 90, now: new Date(now) }).certPem;
  const fromMs = now - 60_000;
  const renewAtMs = fromMs + Math.floor(((90 * 86_400_000 + 60_000) * 2) / 3);

  it('is due when missing, unreadable or not naming every host', () => {
    expect(renewalDecision(undefined, ['a.example.com'], now)).toEqual({ due: true, reason: 'missing' });
    expect(renewalDecision('garbage', ['a.example.com'], now)).toEqual({ due: true, reason: 'unreadable' });
    expect(renewalDecision(cert, ['a.example.com', 'b.example.com'], now)).toEqual({
      due: true,
      reason: 'hosts',
    });
  });

  it('is due from two thirds of the lifetime on', () => {
    expect(renewalDecision(cert, ['a.example.com'], now)).toEqual({ due: false, renewAtMs });
    expect(renewalDecision(cert, ['a.example.com'], renewAtMs - 1)).toEqual({ due: false, renewAtMs });
    expect(renewalDecision(cert, ['a.example.com'], renewAtMs)).toEqual({ due: true, reason: 'renew' });
  });
});

describe('backoffDelayMs', () => {
  it('doubles from the minimum up to the cap, with equal jitter', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(n, 60_000, 3_600_000, () => 1))).toEqual([
      60_000, 120_000, 240_000, 480_000,
    ]);
    expect(backoffDelayMs(20, 60_000, 3_600_000, () => 1)).toBe(3_600_000);
    expect(backoffDelayMs(1, 60_000, 3_600_000, () => 0)).toBe(30_000);
  });
});

describe('MeshConfig acme.issuers schema', () => {
  const doc = (acme: string) => `apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
  acme:
${acme}`;

  it('accepts issuers with directory, contact, account key, EAB, CA bundle and challenge type', () => {
    const { resources, diagnostics } = loadResources(
      [
        {
          file: 'mesh.yaml',
          text: doc(`    issuers:
      - name: le
        directoryUrl: https://acme-v02.api.letsencrypt.org/directory
        email: ops@example.com
        accountKeySecret: le-account
        challenge: tls-alpn-01
      - name: zerossl
        directoryUrl: https://acme.zerossl.com/v2/DV90
        contact: [mailto:ops@example.com]
        accountKeyFile: /etc/sluice/zerossl.key
        eab: { kid: kid-1, hmacKey: abc }
        caBundle: /etc/ssl/extra.pem
        keyType: RSA`),
        },
      ],
      { defaultNamespace: 'default' },
    );
    expect(diagnostics).toEqual([]);
    const spec = resources.resources[0]?.spec as MeshConfigSpec;
    expect(spec.acme?.issuers?.map((i) => [i.name, i.challenge ?? 'http-01'])).toEqual([
      ['le', 'tls-alpn-01'],
      ['zerossl', 'http-01'],
    ]);
    const gw = acmeGateway('public', 'le', [{ credentialName: 'x', hosts: ['x.example.com'] }]);
    const inputs = acmeInputsOf({ resources: [...resources.resources, gw] });
    expect(inputs.issuers.map((i) => i.name)).toEqual(['le', 'zerossl']);
    expect(inputs.gateways).toEqual([gw]);
  });

  it('rejects duplicate issuer names', () => {
    const { diagnostics } = loadResources(
      [
        {
          file: 'mesh.yaml',
          text: doc(
            `    issuers:\n      - { name: le, directoryUrl: https://a.example/dir }\n      - { name: le, directoryUrl: https://b.example/dir }`,
          ),
        },
      ],
      { defaultNamespace: 'default' },
    );
    expect(diagnostics.map((d) => formatDiagnostic(d)).join('\n')).toMatch(
      /issuers\[1\]\.name.*duplicate issuer name "le"/,
    );
  });

  it('rejects an unknown challenge type and a missing directoryUrl', () => {
    const { diagnostics } = loadResources(
      [{ file: 'mesh.yaml', text: doc(`    issuers:\n      - name: le\n        challenge: dns-01`) }],
      { defaultNamespace: 'default' },
    );
    const text = diagnostics.map((d) => formatDiagnostic(d)).join('\n');
    expect(text).toMatch(/directoryUrl/);
    expect(text).toMatch(/challenge/);
  });
});

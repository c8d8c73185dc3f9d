import { describe, expect, it } from 'vitest';
import { loadResources } from '../../../../src/config/index.ts';
import { ingressSecretRefs } from '../../../../src/config/ingress/index.ts';
import { ingressYaml, path } from '../../../support/ingress.ts';

describe('the Secrets an Ingress of the served class names (what a Kubernetes provider watches)', () => {
  it('tls, basic auth, client-certificate CA and upstream TLS credentials, each as namespace/name', () => {
    const yaml = [
      ingressYaml({
        name: 'shop',
        namespace: 'web',
        annotations: {
          'auth-type': 'basic',
          'auth-secret': 'htpasswd',
          'auth-tls-secret': 'web/client-ca',
          'auth-tls-verify-client': 'on',
          'proxy-ssl-secret': 'backends/upstream-tls',
        },
        spec: '  tls: [{ hosts: [demo.example.com], secretName: shop-cert }]\n',
        paths: [path('/', 'Prefix', 'main')],
      }),
      ingressYaml({
        name: 'other-class',
        namespace: 'web',
        className: 'nginx',
        spec: '  tls: [{ hosts: [x.example.com], secretName: not-ours }]\n',
        paths: [path('/', 'Prefix', 'main')],
      }),
    ].join('---\n');
    const { resources } = loadResources([{ file: 'i.yaml', text: yaml }], { defaultNamespace: 'default' });
    const refs = ingressSecretRefs(resources, 'sluice');
    expect([...refs.keys()].sort()).toEqual([
      'backends/upstream-tls',
      'web/client-ca',
      'web/htpasswd',
      'web/shop-cert',
    ]);
    expect(refs.get('web/client-ca')!.map((r) => r.name)).toEqual(['shop']);
  });
});

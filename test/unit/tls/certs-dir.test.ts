/**
 * providers/certs-dir.ts: --certs-dir/<name>/ and Gateway file paths as Secret resources
 * (GW-15, GW-16); documents' Secrets win over certs-dir ones of the same name.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  certificatePathsOf,
  mergeCertificates,
  readCertsDir,
  readConfigSources,
} from '../../../src/providers/certs-dir.ts';
import { loadResources } from '../../../src/config/index.ts';
import { FILE_SECRET_NAMESPACE } from '../../../src/model/kube.ts';

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length > 0) await rm(dirs.pop()!, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'sluice-certsdir-'));
  dirs.push(d);
  return d;
}

const GATEWAY = (cert: string, key: string): string => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: 8443, name: https, protocol: HTTPS }
      hosts: [a.example.com]
      tls: { mode: SIMPLE, serverCertificate: ${cert}, privateKey: ${key} }
`;

describe('certs-dir provider (GW-15, GW-16)', () => {
  it('GW-15 each <name>/ with tls.crt, tls.key, ca.crt becomes a Secret in the gateway namespace', async () => {
    const d = await tempDir();
    await mkdir(path.join(d, 'shop'));
    await writeFile(path.join(d, 'shop', 'tls.crt'), 'CERT');
    await writeFile(path.join(d, 'shop', 'tls.key'), 'KEY');
    await mkdir(path.join(d, 'empty'));
    const secrets = await readCertsDir(d, 'istio-system');
    expect(secrets.map((s) => `${s.namespace}/${s.name}`)).toEqual(['istio-system/shop']);
    expect(Object.keys(secrets[0]!.spec.data).sort()).toEqual(['tls.crt', 'tls.key']);
    expect(Buffer.from(secrets[0]!.spec.data['tls.key']!.base64, 'base64').toString()).toBe('KEY');
    expect(secrets[0]!.annotations['sluice.dev/source']).toBe('certs-dir');
    expect(await readCertsDir(path.join(d, 'missing'), 'istio-system')).toEqual([]);
  });

  it('GW-15 a Secret document of the same name wins over the certs-dir', async () => {
    const d = await tempDir();
    await mkdir(path.join(d, 'shop'));
    await writeFile(path.join(d, 'shop', 'tls.crt'), 'CERT');
    const loaded = loadResources(
      [
        {
          file: 'x.yaml',
          text: 'apiVersion: v1\nkind: Secret\nmetadata: { name: shop, namespace: istio-system }\nstringData: { tls.crt: DOC }\n',
        },
      ],
      { defaultNamespace: 'default' },
    );
    const merged = mergeCertificates(loaded.resources, await readCertsDir(d, 'istio-system'), []);
    const shops = merged.resources.filter((r) => r.kind === 'Secret' && r.name === 'shop');
    expect(shops).toHaveLength(1);
    expect(shops[0]!.origin).toMatchObject({ file: 'x.yaml' });
  });

  it('GW-16 file paths named by Gateways are read into FILE_SECRET_NAMESPACE Secrets', async () => {
    const d = await tempDir();
    const cert = path.join(d, 'c.pem');
    await writeFile(cert, 'CERT');
    const gatewayYaml = GATEWAY(cert, path.join(d, 'missing.pem'));
    const loaded = loadResources([{ file: 'g.yaml', text: gatewayYaml }], {
      defaultNamespace: 'default',
    });
    expect(certificatePathsOf(loaded.resources)).toEqual([cert, path.join(d, 'missing.pem')].sort());
    await writeFile(path.join(d, 'g.yaml'), gatewayYaml);
    const update = await readConfigSources({
      paths: [path.join(d, 'g.yaml')],
      defaultNamespace: 'default',
      certsDir: path.join(d, 'none'),
      gatewayNamespace: 'istio-system',
    });
    const files = update.resources.resources.filter((r) => r.namespace === FILE_SECRET_NAMESPACE);
    expect(files.map((f) => f.name)).toEqual([cert]);
  });

  it('GW-15, GW-16 CRLs are read like CA certificates: <name>/ca.crl and the caCrl path', async () => {
    const d = await tempDir();
    await mkdir(path.join(d, 'shop'));
    await writeFile(path.join(d, 'shop', 'ca.crt'), 'CA');
    await writeFile(path.join(d, 'shop', 'ca.crl'), 'CRL');
    const [shop] = await readCertsDir(d, 'istio-system');
    expect(Object.keys(shop!.spec.data).sort()).toEqual(['ca.crl', 'ca.crt']);
    const loaded = loadResources(
      [
        {
          file: 'g.yaml',
          text: GATEWAY('/c.pem', '/k.pem').replace(
            'mode: SIMPLE,',
            'mode: MUTUAL, caCertificates: /ca.pem, caCrl: /crl.pem,',
          ),
        },
      ],
      { defaultNamespace: 'default' },
    );
    expect(certificatePathsOf(loaded.resources)).toEqual(['/c.pem', '/ca.pem', '/crl.pem', '/k.pem']);
  });
});

/**
 * Istio's egress-gateway pattern (SE-5) with sluice as the egress gateway (`--labels
 * istio=egressgateway`), from the YAML as istio.io applies it: the "Egress gateway for HTTP
 * traffic" task below and the TLS-origination task in gateways/60-egress-gateway.yaml. Loopback servers
 * stand in for edition.cnn.com: the name resolves to 127.0.0.1 through the DNS resolver the
 * test sets, the documents' ports 80/443 are moved to those servers' ports (as the quickstart
 * tests move fixed ports), and the test CA joins the system CA store for the TLS variant.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { getCACertificates } from 'node:tls';
import { startGatewayFromYaml, TEST_IDENTITY, type TestGateway } from '../support/gateway.ts';
import { startEcho, type Upstream } from '../support/upstreams.ts';
import { getWithHost, startTlsUpstream, type TlsUpstream } from '../support/tls-upstream.ts';
import { rsaLeaf, testCa } from '../support/certs.ts';
import { mapPorts } from '../support/quickstart-ports.ts';
import { setDnsResolverForTests } from '../../src/upstream/dns.ts';
import { setSystemCaForTests } from '../../src/upstream/tls-origination.ts';

/** istio.io egress-gateway task, "Egress gateway for HTTP traffic", steps 1, 3 and 4 as applied. */
const HTTP_TASK = `apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - edition.cnn.com
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 80
      weight: 100
`;
const EGRESS = { ...TEST_IDENTITY, labels: { istio: 'egressgateway' } };

let cnnHttp: Upstream;
let cnnHttps: TlsUpstream;
let ports: ReadonlyMap<number, number>;

beforeAll(async () => {
  cnnHttp = await startEcho({ name: 'edition.cnn.com' });
  const leaf = rsaLeaf(['edition.cnn.com']);
  cnnHttps = await startTlsUpstream({
    cert: { certPem: leaf.certPem + testCa().certPem, keyPem: leaf.keyPem },
  });
  ports = new Map([
    [80, cnnHttp.port],
    [443, cnnHttps.port],
  ]);
  setDnsResolverForTests(async (name) => {
    if (name === 'edition.cnn.com') return ['127.0.0.1'];
    throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  });
  setSystemCaForTests([...getCACertificates('system'), testCa().certPem]);
});

afterAll(async () => {
  setDnsResolverForTests(null);
  setSystemCaForTests(null);
  await cnnHttp.close();
  await cnnHttps.close();
});

let gw: TestGateway | null = null;
afterEach(async () => {
  await gw?.close();
  gw = null;
});

describe("Istio's egress gateway tasks, sluice as the egress gateway", () => {
  it('egress gateway for HTTP traffic: Host edition.cnn.com on the gateway port reaches edition.cnn.com:80', async () => {
    gw = await startGatewayFromYaml(mapPorts(HTTP_TASK, ports), { identity: EGRESS });
    const before = cnnHttp.seen.length;
    const r = await getWithHost(gw.port(), 'edition.cnn.com', '/politics');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ name: 'edition.cnn.com', url: '/politics' });
    expect(cnnHttp.seen.length).toBe(before + 1);
    expect(cnnHttp.seen.at(-1)!.headers.host).toBe('edition.cnn.com');
  });

  it('TLS origination with an egress gateway (gateways/60-egress-gateway.yaml): plain HTTP in, HTTPS to edition.cnn.com:443', async () => {
    const yaml = readFileSync(new URL('../../gateways/60-egress-gateway.yaml', import.meta.url), 'utf8');
    gw = await startGatewayFromYaml(mapPorts(yaml, ports), { identity: EGRESS });
    const before = cnnHttps.seen.length;
    const r = await getWithHost(gw.port(), 'edition.cnn.com', '/politics');
    expect(r.status).toBe(200);
    expect(r.body).toBe('tls ok');
    expect(cnnHttps.seen.slice(before)).toEqual([
      { servername: 'edition.cnn.com', clientCn: '', host: 'edition.cnn.com' },
    ]);
  });

  it('the ingress gateway (default labels) does not serve the egress Gateway', async () => {
    const yaml = readFileSync(new URL('../../gateways/60-egress-gateway.yaml', import.meta.url), 'utf8');
    gw = await startGatewayFromYaml(mapPorts(yaml, ports));
    expect(gw.gateway.boundPorts().size).toBe(0);
  });
});

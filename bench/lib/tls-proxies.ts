/**
 * The two TLS-terminating reverse proxies the HTTPS benchmarks compare, in front of the same
 * upstream: nginx (one worker, HTTP/2 on, keep-alive pool to the upstream) and sluice (one HTTPS
 * Gateway server, every path to a STATIC ServiceEntry on the upstream).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { PemPair } from '../../src/tls/self-signed.ts';

export function nginxTlsConf(
  prefix: string,
  port: number,
  upstreamPort: number,
  cert: string,
  key: string,
): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes 1;
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(prefix, `${t}_temp`)};`).join('\n')}
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port} ssl http2 backlog=4096;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`;
}

/** `extra`: more documents for the config (a DestinationRule on `up.bench`, say). */
export function sluiceTlsConfig(
  port: number,
  upstreamPort: number,
  pair: PemPair,
  ca: PemPair,
  extra = '',
): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return `apiVersion: v1
kind: Secret
metadata: { name: bench-cert, namespace: istio-system }
type: kubernetes.io/tls
data: { tls.crt: ${b64(pair.certPem + ca.certPem)}, tls.key: ${b64(pair.keyPem)} }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bench, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
    - port: { number: ${port}, name: https, protocol: HTTPS }
      hosts: ['*']
      tls: { mode: SIMPLE, credentialName: bench-cert }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: up, namespace: default }
spec:
  hosts: [up.bench]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${upstreamPort} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bench, namespace: default }
spec:
  hosts: ['*']
  gateways: [istio-system/bench]
  http: [{ route: [{ destination: { host: up.bench } }] }]
${extra}`;
}

/** Polls until `url` answers 200 (https: any certificate), for at most 20 s. */
export async function waitReady(url: string): Promise<void> {
  const end = Date.now() + 20_000;
  const get = url.startsWith('https:') ? httpsRequest : httpRequest;
  for (;;) {
    const status = await new Promise<number>((resolve) => {
      const req = get(url, { rejectUnauthorized: false, agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (status === 200) return;
    if (Date.now() > end) throw new Error(`${url} not ready (last status ${status})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * nginx for the benchmark, from a config written to the run's temp dir (never the system one):
 * as the upstream (answers a fixed 100-byte body from memory) and as the reference reverse proxy
 * (worker_processes 1, keep-alive pool to the upstream). Both run in the foreground with their
 * own pid and log files, so the bench owns and ends them.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnPinned, type Proc } from './procs.ts';

export const BODY_100 = 'x'.repeat(99) + '\n';

export function findNginx(): { path: string; version: string } | null {
  const candidates = [
    '/usr/sbin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/bin/nginx',
    '/usr/local/nginx/sbin/nginx',
  ];
  for (const path of candidates) {
    // nginx -v prints its version on stderr
    const r = spawnSync(path, ['-v'], { encoding: 'utf8' });
    if (r.error) continue;
    const version = /nginx\/[\d.]+/.exec(`${r.stderr}${r.stdout}`)?.[0] ?? 'nginx (version unknown)';
    return { path, version };
  }
  return null;
}

function common(prefix: string): string {
  const running = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${running}worker_processes 1;
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 4096; multi_accept on; }
`;
}

function temps(prefix: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${join(prefix, `${t}_temp`)};`)
    .join('\n');
}

export function upstreamConf(prefix: string, port: number): string {
  return `${common(prefix)}http {
  access_log off;
${temps(prefix)}
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location / {
      default_type text/plain;
      return 200 "${BODY_100.slice(0, -1)}\\n";
    }
  }
}
`;
}

export function proxyConf(prefix: string, port: number, upstreamPort: number): string {
  return `${common(prefix)}http {
  access_log off;
${temps(prefix)}
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering on;
    }
  }
}
`;
}

export function startNginx(opts: {
  nginx: string;
  name: string;
  dir: string;
  conf: string;
  cpu: number | null;
}): Proc {
  mkdirSync(opts.dir, { recursive: true });
  const confFile = join(opts.dir, 'nginx.conf');
  writeFileSync(confFile, opts.conf);
  return spawnPinned({
    name: opts.name,
    cpu: opts.cpu,
    command: opts.nginx,
    args: ['-p', opts.dir, '-c', confFile, '-e', join(opts.dir, 'error.log')],
    logFile: join(opts.dir, 'stdout.log'),
  });
}

/**
 * The benchmark upstream: nginx answering BODY_100 (`return 200`) when installed, else the
 * node:http server of bench/lib/upstream-node.ts.
 */
export function startUpstream(opts: {
  nginx: { path: string } | null;
  dir: string;
  port: number;
  cpu: number | null;
}): Proc {
  if (opts.nginx !== null)
    return startNginx({
      nginx: opts.nginx.path,
      name: 'upstream',
      dir: join(opts.dir, 'nginx-upstream'),
      conf: upstreamConf(join(opts.dir, 'nginx-upstream'), opts.port),
      cpu: opts.cpu,
    });
  return spawnPinned({
    name: 'upstream',
    cpu: opts.cpu,
    command: process.execPath,
    args: [new URL('./upstream-node.ts', import.meta.url).pathname, String(opts.port)],
    logFile: join(opts.dir, 'upstream.log'),
  });
}

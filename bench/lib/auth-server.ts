/**
 * The security benchmark's helper server, a minimal keep-alive node:http server run as its own
 * process on the load core: it serves the key set sluice's RequestAuthentication fetches
 * (`GET /jwks.json`), answers every other request as an `envoyExtAuthzHttp` authorizer (200 with no
 * body; 403 for a path ending in `/deny`, so a run can check that the authorizer decides), and
 * counts both (`GET /stats`).
 *   node bench/lib/auth-server.ts PORT JWKS_FILE
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

export interface AuthServerStats {
  /** Key set fetches served. */
  readonly jwks: number;
  /** Authorization checks answered (allowed and denied). */
  readonly checks: number;
  readonly denied: number;
}

if (import.meta.main) {
  const port = Number(process.argv[2]);
  const jwks = readFileSync(process.argv[3] ?? '', 'utf8');
  const stats = { jwks: 0, checks: 0, denied: 0 };
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const url = req.url ?? '/';
    if (url === '/jwks.json') {
      stats.jwks++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(jwks) });
      res.end(jwks);
      return;
    }
    if (url === '/stats') {
      const body = JSON.stringify(stats);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    stats.checks++;
    // The check carries no body here; drain whatever comes so the connection stays reusable.
    req.resume();
    if (url.endsWith('/deny')) {
      stats.denied++;
      res.writeHead(403, { 'content-length': 0 });
    } else res.writeHead(200, { 'content-length': 0 });
    res.end();
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${port}\n`);
  });
}

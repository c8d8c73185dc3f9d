/**
 * The Node upstream, used when nginx is not installed: keep-alive node:http server answering
 * every request with the same 100-byte body. Run as its own process pinned to the load core.
 *   node bench/lib/upstream-node.ts PORT
 */
import { createServer } from 'node:http';

export const BODY_100 = Buffer.from('x'.repeat(99) + '\n');

if (import.meta.main) {
  const port = Number(process.argv[2] ?? 0);
  const server = createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY_100.length });
    res.end(BODY_100);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${port}\n`);
  });
}

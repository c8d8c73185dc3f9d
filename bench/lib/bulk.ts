/**
 * Bulk TCP for the egress tunnel benchmark, one process per role so each can be pinned:
 *   node bench/lib/bulk.ts serve PORT BYTES            every connection gets BYTES, then FIN
 *   node bench/lib/bulk.ts read PORT BYTES [TARGET]    read them (through `CONNECT TARGET` on
 *                                                      PORT when given), print {"bytes","ms"}
 */
import { connect, createServer, type Socket } from 'node:net';

const CHUNK = Buffer.alloc(256 * 1024, 0x61);

function serve(port: number, bytes: number): void {
  createServer((s) => {
    let sent = 0;
    s.on('error', () => s.destroy());
    const pump = (): void => {
      while (sent < bytes) {
        const n = Math.min(CHUNK.length, bytes - sent);
        sent += n;
        if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  }).listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
}

/** Resolves once the proxy answered 200 to CONNECT, with what came after its head. */
function tunnel(s: Socket, target: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 200')) reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      else resolve(buf.subarray(end + 4));
    };
    s.on('data', onData);
    s.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
  });
}

async function read(port: number, bytes: number, target: string | undefined): Promise<void> {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const start = process.hrtime.bigint();
  let got = target === undefined ? 0 : (await tunnel(s, target)).length;
  s.on('data', (c: Buffer) => (got += c.length));
  await new Promise<void>((resolve, reject) => {
    s.once('end', resolve);
    s.once('error', reject);
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  s.destroy();
  if (got !== bytes) throw new Error(`read ${got} bytes, expected ${bytes}`);
  process.stdout.write(JSON.stringify({ bytes: got, ms }) + '\n');
}

if (import.meta.main) {
  const [role, port, bytes, target] = process.argv.slice(2);
  if (role === 'serve') serve(Number(port), Number(bytes));
  else await read(Number(port), Number(bytes), target);
}

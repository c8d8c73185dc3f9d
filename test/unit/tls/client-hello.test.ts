/**
 * tls/client-hello.ts on real ClientHellos (captured from node:tls clients) and on hostile bytes.
 */
import { describe, expect, it } from 'vitest';
import { createServer, connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { parseClientHello } from '../../../src/tls/client-hello.ts';

function capture(opts: ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((s) => {
      s.once('data', (b: Buffer) => {
        resolve(b);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
      c.on('error', () => c.destroy());
    });
  });
}

describe('ClientHello peek (GW-5, GW-15)', () => {
  it('reads SNI (lowercased), ALPN and ECDSA capability', async () => {
    const hello = parseClientHello(
      await capture({ servername: 'Shop.Example.com', ALPNProtocols: ['h2', 'http/1.1'] }),
    );
    expect(hello).toEqual({
      kind: 'hello',
      hello: { sni: 'shop.example.com', alpn: ['h2', 'http/1.1'], ecdsa: true },
    });
  });

  it('a TLS 1.2 client offering only RSA suites cannot take ECDSA', async () => {
    const r = parseClientHello(
      await capture({ servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }),
    );
    expect(r.kind === 'hello' && r.hello.ecdsa).toBe(false);
  });

  it('no SNI is the empty name', async () => {
    const r = parseClientHello(await capture({}));
    expect(r.kind === 'hello' && r.hello.sni).toBe('');
  });

  it('partial, non-TLS and truncated input are told apart, never thrown', async () => {
    const full = await capture({ servername: 'a.test' });
    expect(parseClientHello(full.subarray(0, 3)).kind).toBe('partial');
    expect(parseClientHello(full.subarray(0, full.length - 1)).kind).toBe('partial');
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')).kind).toBe('invalid');
    // A record that claims more than its handshake holds.
    const bad = Buffer.from(full);
    bad.writeUIntBE(0xffffff, 6, 3);
    expect(() => parseClientHello(bad)).not.toThrow();
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.from(full);
      junk[5 + ((i * 7919) % (junk.length - 5))] = (i * 31) & 0xff;
      expect(() => parseClientHello(junk)).not.toThrow();
    }
    void netConnect;
  });
});

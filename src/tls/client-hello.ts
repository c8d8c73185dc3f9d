/**
 * Reads what a TLS ClientHello says without terminating it (RFC 8446 §4.1.2, RFC 6066 §3):
 * SNI for passthrough routing (GW-5), ALPN, and whether the client can take an ECDSA
 * certificate (credentialNames with one RSA and one ECDSA, GW-15). Bounds-checked throughout:
 * the bytes come from anyone.
 */

export interface ClientHello {
  /** Lowercased server_name, '' when absent. */
  readonly sni: string;
  readonly alpn: readonly string[];
  /** The client offers an ECDSA signature algorithm and a suite that can use it. */
  readonly ecdsa: boolean;
}

export type PeekResult =
  | { readonly kind: 'hello'; readonly hello: ClientHello }
  /** More bytes are needed (the first record is not complete yet). */
  | { readonly kind: 'partial' }
  /** Not a TLS handshake, or malformed. */
  | { readonly kind: 'invalid' };

/** The most a first TLS record may span (header + 16 KiB + expansion slack). */
export const MAX_HELLO_BYTES = 5 + 16384 + 2048;

const ECDSA_SUITES = new Set([0xc02b, 0xc02c, 0xcca9, 0xc009, 0xc00a, 0xc023, 0xc024, 0xc0ad, 0xc0af]);

export function parseClientHello(buf: Buffer): PeekResult {
  if (buf.length < 1) return { kind: 'partial' };
  if (buf[0] !== 0x16) return { kind: 'invalid' };
  if (buf.length < 5) return { kind: 'partial' };
  if (buf[1] !== 0x03) return { kind: 'invalid' };
  const recordLength = buf.readUInt16BE(3);
  if (recordLength < 4 || recordLength > 16384 + 2048) return { kind: 'invalid' };
  if (buf.length < 5 + recordLength) return { kind: 'partial' };
  const end = 5 + recordLength;
  let p = 5;
  if (buf[p] !== 0x01) return { kind: 'invalid' };
  const helloLength = buf.readUIntBE(p + 1, 3);
  p += 4;
  // A ClientHello spanning several records: read what the first holds.
  const helloEnd = Math.min(end, p + helloLength);
  const need = (n: number): boolean => p + n <= helloEnd;
  if (!need(2 + 32 + 1)) return { kind: 'invalid' };
  p += 2 + 32;
  const sessionIdLength = buf[p]!;
  p += 1 + sessionIdLength;
  if (!need(2)) return { kind: 'invalid' };
  const suitesLength = buf.readUInt16BE(p);
  p += 2;
  if (!need(suitesLength)) return { kind: 'invalid' };
  let ecdsaSuite = false;
  for (let i = 0; i + 1 < suitesLength; i += 2)
    if (ECDSA_SUITES.has(buf.readUInt16BE(p + i))) ecdsaSuite = true;
  p += suitesLength;
  if (!need(1)) return { kind: 'invalid' };
  p += 1 + buf[p]!;
  let sni = '';
  const alpn: string[] = [];
  let ecdsaSigalg = false;
  let sigalgsSeen = false;
  let tls13 = false;
  if (need(2)) {
    const extEnd = Math.min(helloEnd, p + 2 + buf.readUInt16BE(p));
    p += 2;
    while (p + 4 <= extEnd) {
      const type = buf.readUInt16BE(p);
      const len = buf.readUInt16BE(p + 2);
      const d = p + 4;
      p = d + len;
      if (p > extEnd) break;
      if (type === 0 && len >= 5) {
        // server_name_list: the first host_name entry
        const nameType = buf[d + 2];
        const nameLength = buf.readUInt16BE(d + 3);
        if (nameType === 0 && d + 5 + nameLength <= p)
          sni = buf.toString('latin1', d + 5, d + 5 + nameLength).toLowerCase();
      } else if (type === 16 && len >= 2) {
        let q = d + 2;
        while (q < p) {
          const l = buf[q]!;
          if (q + 1 + l > p) break;
          alpn.push(buf.toString('latin1', q + 1, q + 1 + l));
          q += 1 + l;
        }
      } else if (type === 13 && len >= 2) {
        sigalgsSeen = true;
        for (let q = d + 2; q + 1 < p; q += 2)
          if (buf[q + 1] === 0x03 && buf[q]! >= 4 && buf[q]! <= 6) ecdsaSigalg = true;
      } else if (type === 43 && len >= 1) {
        for (let q = d + 1; q + 1 < p; q += 2) if (buf.readUInt16BE(q) === 0x0304) tls13 = true;
      }
    }
  }
  const ecdsa = (ecdsaSigalg || !sigalgsSeen) && (tls13 || ecdsaSuite);
  return { kind: 'hello', hello: { sni, alpn, ecdsa } };
}

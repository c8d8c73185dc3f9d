/**
 * Certificate revocation lists for MUTUAL/OPTIONAL_MUTUAL servers (GW-15, GW-16), checked at
 * compile time so a broken CRL is a diagnostic on its server, not a secure context OpenSSL refuses
 * at apply time (which would hold back every server's change). node:crypto has no CRL parser; a
 * CRL is small DER, so the few fields needed are read here (RFC 5280 §5.1):
 *
 *   CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature, issuer Name, thisUpdate Time,
 *                              nextUpdate Time OPTIONAL, revokedCertificates OPTIONAL, [0] ext }
 *
 * What OpenSSL then does (and Envoy, whose default is the same): once any CRL is given, every CA
 * of a client's chain must have a current CRL, else the handshake fails (UNABLE_TO_GET_CRL,
 * CRL_HAS_EXPIRED); findings below say so before a client meets it.
 */
import { verify, X509Certificate } from 'node:crypto';

interface Tlv {
  readonly tag: number;
  /** Where the tag byte is. */
  readonly head: number;
  /** Content start and end. */
  readonly start: number;
  readonly end: number;
}

function tlvAt(der: Buffer, pos: number, limit: number): Tlv | null {
  if (pos + 2 > limit) return null;
  const tag = der[pos]!;
  let len = der[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  return end > limit ? null : { tag, head: pos, start, end };
}

/** The children of a constructed TLV, or null when they do not exactly fill it. */
function childrenOf(der: Buffer, t: Tlv): Tlv[] | null {
  const out: Tlv[] = [];
  for (let pos = t.start; pos < t.end;) {
    const c = tlvAt(der, pos, t.end);
    if (c === null) return null;
    out.push(c);
    pos = c.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OID = 0x06;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

function oidOf(der: Buffer, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    const b = der[i]!;
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function timeOf(der: Buffer, t: Tlv): number | null {
  const s = der.toString('latin1', t.start, t.end);
  const m =
    t.tag === UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m === null) return null;
  let year = Number(m[1]);
  if (t.tag === UTC_TIME) year += year >= 50 ? 1900 : 2000;
  const ms = Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? null : ms;
}

/** Signature algorithm OID → node:crypto digest (null: the key type implies it; undefined: not checked). */
const SIGNATURE_DIGESTS: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
  '1.3.101.113': null,
};

export interface ParsedCrl {
  /** DER of the issuer Name. */
  readonly issuer: Buffer;
  readonly thisUpdateMs: number;
  readonly nextUpdateMs: number | null;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
}

/** One DER CRL, or what is wrong with it. */
export function parseCrlDer(der: Buffer): ParsedCrl | string {
  const bad = 'not a DER X.509 CRL';
  const outer = tlvAt(der, 0, der.length);
  if (outer === null || outer.tag !== SEQUENCE || outer.end !== der.length) return bad;
  const top = childrenOf(der, outer);
  if (top === null || top.length !== 3) return bad;
  const [tbsT, algT, sigT] = top as [Tlv, Tlv, Tlv];
  if (tbsT.tag !== SEQUENCE || algT.tag !== SEQUENCE || sigT.tag !== BIT_STRING) return bad;
  const tbs = childrenOf(der, tbsT);
  const alg = childrenOf(der, algT);
  if (tbs === null || alg === null || alg[0]?.tag !== OID) return bad;
  let i = tbs[0]?.tag === INTEGER ? 1 : 0;
  const sigAlgT = tbs[i++];
  const issuerT = tbs[i++];
  const thisT = tbs[i++];
  if (sigAlgT?.tag !== SEQUENCE || issuerT?.tag !== SEQUENCE) return bad;
  if (thisT === undefined || (thisT.tag !== UTC_TIME && thisT.tag !== GENERALIZED_TIME)) return bad;
  const thisUpdateMs = timeOf(der, thisT);
  const nextT = tbs[i];
  const nextUpdateMs =
    nextT !== undefined && (nextT.tag === UTC_TIME || nextT.tag === GENERALIZED_TIME)
      ? timeOf(der, nextT)
      : null;
  if (thisUpdateMs === null) return `${bad}: thisUpdate is not a valid time`;
  // The BIT STRING's first content byte counts unused bits; signatures use whole bytes.
  if (sigT.end - sigT.start < 2 || der[sigT.start] !== 0) return bad;
  return {
    issuer: der.subarray(issuerT.head, issuerT.end),
    thisUpdateMs,
    nextUpdateMs,
    tbs: der.subarray(tbsT.head, tbsT.end),
    signatureAlgorithm: oidOf(der, alg[0]),
    signature: der.subarray(sigT.start + 1, sigT.end),
  };
}

/** DER of a certificate's subject Name, or null. */
function subjectOf(cert: X509Certificate): Buffer | null {
  const der = cert.raw;
  const outer = tlvAt(der, 0, der.length);
  const tbsT = outer && childrenOf(der, outer)?.[0];
  const tbs = tbsT ? childrenOf(der, tbsT) : null;
  if (tbs === null) return null;
  // [0] version, serialNumber, signature, issuer, validity, subject
  const subjectT = tbs[tbs[0]?.tag === 0xa0 ? 5 : 4];
  return subjectT === undefined ? null : der.subarray(subjectT.head, subjectT.end);
}

const CRL_PEM = /-----BEGIN X509 CRL-----([^-]*)-----END X509 CRL-----/g;
const CERT_PEM = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

export interface CrlFindings {
  /** The CRL cannot be used at all: the server must not serve with it. */
  readonly error: string | null;
  /** It loads, but some clients will be refused because of it (expired, a CA without CRL). */
  readonly warnings: readonly string[];
}

/**
 * Checks a PEM CRL file (one or more CRLs) against the client CA bundle: parseable, signed by one
 * of the CAs, current, and every CA covered (else that CA's clients are refused, as in Envoy).
 */
export function checkCrls(crlPem: string, caPem: string, nowMs: number): CrlFindings {
  const blocks = [...crlPem.matchAll(CRL_PEM)];
  if (blocks.length === 0)
    return { error: 'no -----BEGIN X509 CRL----- block (a PEM CRL is needed)', warnings: [] };
  const cas: { cert: X509Certificate; subject: Buffer | null }[] = [];
  for (const m of caPem.match(CERT_PEM) ?? []) {
    try {
      const cert = new X509Certificate(m);
      cas.push({ cert, subject: subjectOf(cert) });
    } catch {
      // the CA bundle is checked on its own
    }
  }
  const warnings: string[] = [];
  const covered = new Set<number>();
  for (const [n, m] of blocks.entries()) {
    const which = blocks.length > 1 ? `CRL ${n + 1}` : 'the CRL';
    const parsed = parseCrlDer(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
    if (typeof parsed === 'string') return { error: `${which} is ${parsed}`, warnings: [] };
    const digest = SIGNATURE_DIGESTS[parsed.signatureAlgorithm];
    let signer = -1;
    let nameMatch = -1;
    for (const [i, ca] of cas.entries()) {
      const sameName = ca.subject !== null && ca.subject.equals(parsed.issuer);
      if (sameName && nameMatch < 0) nameMatch = i;
      if (digest === undefined) {
        if (sameName) signer = i;
      } else if (verifies(digest, parsed, ca.cert)) signer = i;
      if (signer >= 0) break;
    }
    if (signer < 0) {
      if (nameMatch >= 0)
        return {
          error: `${which} names ${cas[nameMatch]!.cert.subject.replaceAll('\n', ', ')} as issuer but its signature does not verify with that CA`,
          warnings: [],
        };
      warnings.push(`${which} was not issued by any of the client CAs; it revokes nothing`);
      continue;
    }
    covered.add(signer);
    if (parsed.nextUpdateMs !== null && parsed.nextUpdateMs < nowMs)
      warnings.push(
        `${which} expired on ${new Date(parsed.nextUpdateMs).toISOString()} (nextUpdate): every client certificate of ${subjectText(cas[signer]!.cert)} is refused until it is replaced`,
      );
    if (parsed.thisUpdateMs > nowMs)
      warnings.push(
        `${which} is not valid before ${new Date(parsed.thisUpdateMs).toISOString()}: until then every client certificate of ${subjectText(cas[signer]!.cert)} is refused`,
      );
  }
  for (const [i, ca] of cas.entries())
    if (!covered.has(i))
      warnings.push(
        `no CRL from client CA ${subjectText(ca.cert)}: client certificates whose chain includes it are refused (once a CRL is given, every CA of a chain needs a current one, as in Envoy)`,
      );
  return { error: null, warnings };
}

function subjectText(cert: X509Certificate): string {
  return cert.subject.replaceAll('\n', ', ');
}

function verifies(digest: string | null, crl: ParsedCrl, ca: X509Certificate): boolean {
  try {
    return verify(digest, crl.tbs, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}

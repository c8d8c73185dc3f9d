/**
 * A certificate's subject or issuer as RFC 2253 writes it, from Node's `X509Certificate.subject` /
 * `.issuer`: what nginx puts in `$ssl_client_s_dn` and Envoy in the XFCC `Subject`, both through
 * OpenSSL's `XN_FLAG_RFC2253`.
 *
 * Node prints the name one RDN a line, most general first, the values already escaped as RFC
 * 2253 asks (`,` `+` `"` `\` `<` `>` `;` and leading `#` or spaces), and the values of a
 * multi-valued RDN joined by " + ". RFC 2253 reverses the order, most specific first, and OpenSSL
 * reverses every value of the name, so a multi-valued RDN's values come in reverse too, joined by a
 * bare "+". An unescaped " + " can only be that separator: a `+` inside a value is escaped.
 * OpenSSL's RFC 2253 form also escapes every byte above 0x7F as `\XX` (hex of its UTF-8), where
 * Node prints the characters themselves.
 */
export function rfc2253(name: string): string {
  const rdns = name.split('\n');
  let out = '';
  for (let i = rdns.length - 1; i >= 0; i--) {
    const rdn = rdns[i]!;
    const values = rdn.includes(' + ') ? rdn.split(' + ').reverse().join('+') : rdn;
    out += i === rdns.length - 1 ? values : ',' + values;
  }
  return out.replace(NON_ASCII_RUN, escapeUtf8);
}

const NON_ASCII_RUN = /[\u0080-\u{10ffff}]+/gu;

function escapeUtf8(run: string): string {
  let out = '';
  for (const byte of Buffer.from(run, 'utf8')) out += '\\' + byte.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

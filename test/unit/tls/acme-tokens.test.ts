import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import * as acme from 'acme-client';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import {
  ACME_IDENTIFIER_OID,
  ACME_TLS_ALPN_PROTOCOL,
  resolveAcmeAlpnContext,
  type SharedChallengeStore,
  createAcmeTokens,
  isAcmeAlpnSocket,
  makeAlpnChallengeCert,
  selectAcmeAlpn,
} from '../../../src/tls/acme-tokens.ts';

const keyPem = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

describe('ACME HTTP-01 token store', () => {
  it('answers /.well-known/acme-challenge/<token> with the key authorization, ignoring a query', async () => {
    const t = createAcmeTokens();
    expect(t.answerHttpChallenge('/.well-known/acme-challenge/abc')).toBeNull();
    await t.setHttpToken('abc', 'abc.thumb');
    expect(t.answerHttpChallenge('/.well-known/acme-challenge/abc')).toBe('abc.thumb');
    expect(t.answerHttpChallenge('/.well-known/acme-challenge/abc?x=1')).toBe('abc.thumb');
    expect(t.answerHttpChallenge('/.well-known/acme-challenge/other')).toBeNull();
    expect(t.answerHttpChallenge('/abc')).toBeNull();
    expect(await t.lookupHttpChallenge('/.well-known/acme-challenge/abc')).toBe('abc.thumb');
    expect(t.httpToken('abc')).toBe('abc.thumb');
    expect(t.httpToken('other')).toBeNull();
    await t.deleteHttpToken('abc');
    expect(t.answerHttpChallenge('/.well-known/acme-challenge/abc')).toBeNull();
    expect(t.size()).toEqual({ http: 0, alpn: 0 });
  });
});

describe('ACME TLS-ALPN-01 challenge certificate (RFC 8737)', () => {
  it('names the identifier and carries a critical acmeIdentifier extension with SHA-256(keyAuthorization)', () => {
    const pem = makeAlpnChallengeCert('shop.example.test', 'tok.thumb', keyPem);
    const x = new X509Certificate(pem);
    expect(x.subjectAltName).toBe('DNS:shop.example.test');
    expect(x.checkIssued(x)).toBe(true);
    const cert = forge.pki.certificateFromPem(pem);
    const ext = cert.extensions.find((e: { id: string }) => e.id === ACME_IDENTIFIER_OID) as {
      critical: boolean;
      value: string;
    };
    expect(ext.critical).toBe(true);
    const inner = forge.asn1.fromDer(ext.value);
    expect(inner.type).toBe(forge.asn1.Type.OCTETSTRING);
    expect(Buffer.from(inner.value as string, 'binary')).toEqual(
      createHash('sha256').update('tok.thumb').digest(),
    );
    // acme-client's own verifier agrees.
    expect(acme.crypto.isAlpnCertificateAuthorizationValid(pem, 'tok.thumb')).toBe(true);
    expect(acme.crypto.isAlpnCertificateAuthorizationValid(pem, 'other.thumb')).toBe(false);
  });

  it('serves the challenge context only to sockets whose ALPNCallback chose acme-tls/1', async () => {
    const t = createAcmeTokens();
    await t.setAlpnChallenge('Shop.Example.Test', 'tok.thumb');
    expect(t.alpnContext('shop.example.test')).not.toBeNull();
    expect(t.alpnContext('other.example.test')).toBeNull();

    const acmeSocket = {} as TLSSocket;
    const h2Socket = {} as TLSSocket;
    expect(selectAcmeAlpn(t, acmeSocket, 'shop.example.test', [ACME_TLS_ALPN_PROTOCOL])).toBe(true);
    expect(selectAcmeAlpn(t, h2Socket, 'shop.example.test', ['h2', 'http/1.1'])).toBe(false);
    expect(selectAcmeAlpn(t, {} as TLSSocket, 'other.example.test', [ACME_TLS_ALPN_PROTOCOL])).toBe(false);
    expect(await resolveAcmeAlpnContext(t, acmeSocket, 'shop.example.test')).toBe(
      t.alpnContext('shop.example.test'),
    );
    expect(resolveAcmeAlpnContext(t, h2Socket, 'shop.example.test')).toBeUndefined();
    expect(isAcmeAlpnSocket(acmeSocket)).toBe(true);
    expect(isAcmeAlpnSocket(h2Socket)).toBe(false);

    await t.deleteAlpnChallenge('shop.example.test');
    expect(t.alpnContext('shop.example.test')).toBeNull();
  });
});

describe('ACME challenges through a shared store (several replicas)', () => {
  function memoryStore(): SharedChallengeStore & { data: Map<string, string> } {
    const data = new Map<string, string>();
    return {
      data,
      put: async (k, v) => void data.set(k, v),
      get: async (k) => data.get(k) ?? null,
      delete: async (k) => void data.delete(k),
    };
  }

  it('lets a replica that did not order answer HTTP-01 and TLS-ALPN-01', async () => {
    const store = memoryStore();
    const orderer = createAcmeTokens({ shared: store });
    const other = createAcmeTokens({ shared: store });
    await orderer.setHttpToken('tok', 'tok.thumb');
    await orderer.setAlpnChallenge('a.example.test', 'alpn.thumb');
    expect(other.answerHttpChallenge('/.well-known/acme-challenge/tok')).toBeNull();
    expect(await other.lookupHttpChallenge('/.well-known/acme-challenge/tok')).toBe('tok.thumb');
    expect(await other.lookupHttpToken('tok')).toBe('tok.thumb');
    expect(other.httpToken('tok')).toBeNull();
    expect(await other.lookupHttpChallenge('/.well-known/acme-challenge/../../x')).toBeNull();
    // With a shared store, acme-tls/1 is chosen even without a local challenge (only validators offer it).
    const socket = {} as TLSSocket;
    expect(selectAcmeAlpn(other, socket, 'a.example.test', [ACME_TLS_ALPN_PROTOCOL])).toBe(true);
    expect(await resolveAcmeAlpnContext(other, socket, 'a.example.test')).not.toBeNull();
    expect(await resolveAcmeAlpnContext(other, socket, 'b.example.test')).toBeNull();
    await orderer.deleteHttpToken('tok');
    await orderer.deleteAlpnChallenge('a.example.test');
    expect(store.data.size).toBe(0);
  });
});

/**
 * ACME issuance and renewal end to end against the real pebble server (issue 5 item 6):
 * HTTP-01 and TLS-ALPN-01 answered from the token store by loopback responders, certificates
 * written to --certs-dir/<credentialName>/ and renewed past two thirds of their lifetime.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.ts';
import {
  createAcmeManager,
  type AcmeManager,
  type AcmeManagerOptions,
  type AcmeOrderResult,
} from '../../src/providers/acme.ts';
import { createFileLock } from '../../src/providers/acme-lock.ts';
import { createAcmeTokens } from '../../src/tls/acme-tokens.ts';
import type { AcmeIssuerSpec } from '../../src/model/sluice.ts';
import { until } from '../support/until.ts';
import {
  acmeGateway,
  startChallengeResponders,
  startPebble,
  type ChallengeResponders,
  type Pebble,
} from '../support/pebble.ts';

const tokens = createAcmeTokens();
let responders: ChallengeResponders;
let pebble: Pebble;
let certsDir: string;
const managers: AcmeManager[] = [];

beforeAll(async () => {
  responders = await startChallengeResponders(tokens);
  // Short-lived certificates (1 h), so the 2/3 point is a few fake minutes away.
  pebble = await startPebble({
    httpPort: responders.httpPort,
    tlsPort: responders.tlsPort,
    certificateValiditySeconds: 3600,
  });
});

afterAll(async () => {
  await pebble?.close();
  await responders?.close();
});

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
  if (certsDir) await rm(certsDir, { recursive: true, force: true });
});

function issuer(challenge: 'http-01' | 'tls-alpn-01'): AcmeIssuerSpec {
  return {
    name: 'pebble',
    directoryUrl: pebble.directoryUrl,
    caBundle: pebble.caPem,
    email: 'ops@example.test',
    challenge,
  };
}

async function manager(over: Partial<AcmeManagerOptions> & Pick<AcmeManagerOptions, 'issuers'>) {
  const results: AcmeOrderResult[] = [];
  const m = createAcmeManager({
    certsDir,
    logger: silentLogger(),
    lock: createFileLock(certsDir),
    tokens,
    pollMinMs: 100,
    requestRetries: 0,
    metrics: { orderResult: (_i, _c, r) => void results.push(r) },
    ...over,
  });
  managers.push(m);
  return { m, results };
}

async function readPair(credential: string) {
  const certPem = await readFile(join(certsDir, credential, 'tls.crt'), 'utf8');
  const keyPem = await readFile(join(certsDir, credential, 'tls.key'), 'utf8');
  return { certPem, keyPem, cert: new X509Certificate(certPem) };
}

describe('ACME against pebble', () => {
  it('issues a certificate over HTTP-01 for every TLS host of an annotated Gateway, into --certs-dir/<credentialName>/', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const { m, results } = await manager({ issuers: [issuer('http-01')] });
    const gw = acmeGateway('public', 'pebble', [
      { credentialName: 'shop-cert', hosts: ['shop.example.test', 'www.shop.example.test'] },
      { credentialName: 'api-cert', hosts: ['istio-system/api.example.test', '*.wild.example.test'] },
    ]);
    await m.reconcile([gw]);
    expect(results).toEqual(['issued', 'issued']);

    const shop = await readPair('shop-cert');
    expect(shop.cert.checkHost('shop.example.test')).toBe('shop.example.test');
    expect(shop.cert.checkHost('www.shop.example.test')).toBe('www.shop.example.test');
    expect(shop.cert.checkPrivateKey(createPrivateKey(shop.keyPem))).toBe(true);
    // The chain file holds the leaf then pebble's intermediate.
    expect(shop.certPem.match(/BEGIN CERTIFICATE/g)?.length).toBeGreaterThanOrEqual(2);
    const api = await readPair('api-cert');
    expect(api.cert.checkHost('api.example.test')).toBe('api.example.test');
    // The wildcard needs DNS-01: left out, not ordered.
    expect(api.cert.subjectAltName).not.toContain('*.wild');
    // Pebble's validation authority really fetched the tokens from our responder.
    expect(
      [...responders.httpHits.keys()].filter((p) => p.startsWith('/.well-known/acme-challenge/')).length,
    ).toBeGreaterThanOrEqual(3);
    expect(tokens.size()).toEqual({ http: 0, alpn: 0 });
    expect((await readFile(join(certsDir, 'shop-cert', 'tls.key'))).length).toBeGreaterThan(0);

    // Nothing to do on the next accepted config: the certificates are fresh.
    await m.reconcile([gw]);
    expect(results).toEqual(['issued', 'issued']);
    expect(m.targets().map((t) => t.renewAtMs !== undefined)).toEqual([true, true]);
  });

  it('issues a certificate over TLS-ALPN-01 (acme-tls/1 handshake with the acmeIdentifier certificate)', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const before = responders.alpnHandshakes();
    const { m, results } = await manager({ issuers: [{ ...issuer('tls-alpn-01'), keyType: 'RSA' }] });
    await m.reconcile([
      acmeGateway('public', 'pebble', [{ credentialName: 'alpn-cert', hosts: ['alpn.example.test'] }]),
    ]);
    expect(results).toEqual(['issued']);
    const { cert, keyPem } = await readPair('alpn-cert');
    expect(cert.checkHost('alpn.example.test')).toBe('alpn.example.test');
    expect(createPrivateKey(keyPem).asymmetricKeyType).toBe('rsa');
    expect(responders.alpnHandshakes()).toBeGreaterThan(before);
    expect(tokens.size()).toEqual({ http: 0, alpn: 0 });
  });

  it('renews only once the certificate is past two thirds of its lifetime', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    let nowMs = Date.now();
    const { m, results } = await manager({ issuers: [issuer('http-01')], now: () => nowMs });
    const gw = acmeGateway('public', 'pebble', [
      { credentialName: 'renew-cert', hosts: ['renew.example.test'] },
    ]);
    await m.reconcile([gw]);
    const first = (await readPair('renew-cert')).cert;
    const fromMs = first.validFromDate.getTime();
    const lifetimeMs = first.validToDate.getTime() - fromMs;

    nowMs = fromMs + Math.floor(lifetimeMs * 0.6);
    await m.reconcile([gw]);
    expect(results).toEqual(['issued']);
    expect((await readPair('renew-cert')).cert.serialNumber).toBe(first.serialNumber);

    nowMs = fromMs + Math.ceil(lifetimeMs * 0.7);
    await m.reconcile([gw]);
    expect(results).toEqual(['issued', 'issued']);
    const second = (await readPair('renew-cert')).cert;
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.checkHost('renew.example.test')).toBe('renew.example.test');
  });

  it('orders again when a host is added to the credential', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const { m, results } = await manager({ issuers: [issuer('http-01')] });
    await m.reconcile([
      acmeGateway('public', 'pebble', [{ credentialName: 'grow', hosts: ['a.example.test'] }]),
    ]);
    await m.reconcile([
      acmeGateway('public', 'pebble', [
        { credentialName: 'grow', hosts: ['a.example.test', 'b.example.test'] },
      ]),
    ]);
    expect(results).toEqual(['issued', 'issued']);
    expect((await readPair('grow')).cert.checkHost('b.example.test')).toBe('b.example.test');
  });

  it('renews by its own timer, without a new config', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    let nowMs = Date.now();
    const { m, results } = await manager({
      issuers: [issuer('http-01')],
      now: () => nowMs,
      recheckMaxMs: 1000,
    });
    await m.reconcile([
      acmeGateway('public', 'pebble', [{ credentialName: 'timer', hosts: ['timer.example.test'] }]),
    ]);
    const first = (await readPair('timer')).cert;
    nowMs = first.validToDate.getTime() - 60_000;
    await until(
      async () => results.length === 2 && (await readPair('timer')).cert.serialNumber !== first.serialNumber,
      {
        timeoutMs: 8000,
        what: 'the renewal timer to order again',
      },
    );
    expect(results).toEqual(['issued', 'issued']);
  });

  it('takes issuers from a new MeshConfig (setIssuers)', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const { m, results } = await manager({ issuers: [] });
    const gw = acmeGateway('public', 'pebble', [{ credentialName: 'late', hosts: ['late.example.test'] }]);
    await m.reconcile([gw]);
    expect(results).toEqual([]);
    m.setIssuers([issuer('http-01')]);
    await m.reconcile([gw]);
    expect(results).toEqual(['issued']);
  });

  it('registers with external account binding when the CA requires it, keeping the account key in accountKeySecret', async () => {
    certsDir = await mkdtemp(join(tmpdir(), 'sluice-acme-'));
    const hmacKey = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
    const eabPebble = await startPebble({
      httpPort: responders.httpPort,
      tlsPort: responders.tlsPort,
      eabKeys: { 'kid-1': hmacKey },
    });
    try {
      const base = { name: 'eab', directoryUrl: eabPebble.directoryUrl, caBundle: eabPebble.caPem };
      const gw = acmeGateway('public', 'eab', [{ credentialName: 'eab-cert', hosts: ['eab.example.test'] }]);
      const without = await manager({ issuers: [base] });
      await without.m.reconcile([gw]);
      expect(without.results).toEqual(['failed']);
      expect(without.m.targets()[0]?.lastError).toMatch(/externalAccountBinding|external account/i);

      const withEab = await manager({
        issuers: [{ ...base, eab: { kid: 'kid-1', hmacKey }, accountKeySecret: 'eab-account' }],
      });
      await withEab.m.reconcile([gw]);
      expect(withEab.results).toEqual(['issued']);
      expect((await readPair('eab-cert')).cert.checkHost('eab.example.test')).toBe('eab.example.test');
      expect(await readFile(join(certsDir, 'eab-account', 'tls.key'), 'utf8')).toMatch(/PRIVATE KEY/);
    } finally {
      await eabPebble.close();
    }
  });
});

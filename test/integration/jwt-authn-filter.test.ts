/**
 * jwt_authn (RA-1..RA-7) as compiled from RequestAuthentication YAML, against real signed tokens
 * and a real JWKS server on loopback: the outcome matrix, key rotation and outages, and attack
 * tokens (alg none, HS256 signed with the RSA public key, tampering, hostile kids).
 */
import { afterEach, beforeAll, afterAll, describe, expect, test } from 'vitest';
import { compileYaml } from '../simulate/compile-yaml.ts';
import { runJwtAuthn, type JwtDecision } from '../../src/dataplane/filters/jwt-authn.ts';
import { createJwksStore, type JwksStore } from '../../src/dataplane/filters/jwks-store.ts';
import type { JwtAuthnFilter } from '../../src/snapshot/types.ts';
import {
  forge,
  jwksOf,
  makeHmacKey,
  makeKey,
  sign,
  startJwksServer,
  type JwksServer,
  type TestKey,
} from '../support/jwt.ts';
import { until } from '../support/until.ts';

const ISS = 'https://id.example.com';

function filterFor(rules: string): JwtAuthnFilter {
  const c = compileYaml(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  jwtRules:
${rules}
`);
  expect(c.messages.filter((m) => m.startsWith('error'))).toEqual([]);
  const f = c.snapshot.listeners.get(8080)!.httpTable!.filters!.find((x) => x.kind === 'jwt-authn');
  return f as JwtAuthnFilter;
}

interface Req {
  method?: string;
  query?: string;
  headers?: Record<string, string>;
}

async function run(filter: JwtAuthnFilter, store: JwksStore, r: Req): Promise<JwtDecision> {
  return runJwtAuthn(
    { method: r.method ?? 'GET', query: r.query ?? '', headers: r.headers ?? {} },
    filter,
    store,
    Date.now(),
  );
}

function bearer(t: string): Req {
  return { headers: { authorization: `Bearer ${t}` } };
}

function outcome(d: JwtDecision): string {
  return d.kind === 'allow' ? `allow ${d.auth?.principal ?? '(none)'}` : `deny ${d.status}`;
}

let rsa: TestKey;
let ec: TestKey;
let ed: TestKey;
let other: TestKey;
let jwks: JwksServer;
const stores: JwksStore[] = [];

function store(opts: Parameters<typeof createJwksStore>[0] = {}): JwksStore {
  const s = createJwksStore(opts);
  stores.push(s);
  return s;
}

beforeAll(async () => {
  [rsa, ec, ed, other] = await Promise.all([
    makeKey('RS256', 'rsa-1'),
    makeKey('ES256', 'ec-1'),
    makeKey('EdDSA', 'ed-1'),
    makeKey('RS256', 'other'),
  ]);
  jwks = await startJwksServer(rsa, ec, ed);
});
afterAll(() => jwks.close());
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

describe('RA-3/RA-4 outcome matrix (remote JWKS)', () => {
  const rules = (): string => `  - issuer: ${ISS}\n    jwksUri: ${jwks.url}\n    audiences: [api]`;

  test('no token: allowed, unauthenticated', async () => {
    expect(outcome(await run(filterFor(rules()), store(), {}))).toBe('allow (none)');
  });

  test('valid RS256, ES256 and EdDSA tokens: principal iss/sub, token header removed', async () => {
    const f = filterFor(rules());
    const s = store();
    for (const k of [rsa, ec, ed]) {
      const d = await run(f, s, bearer(await sign(k, { iss: ISS, sub: `user-${k.alg}`, aud: 'api' })));
      expect(outcome(d)).toBe(`allow ${ISS}/user-${k.alg}`);
      expect(d.kind === 'allow' && d.edits?.remove).toContain('authorization');
    }
  });

  test.each([
    ['expired', { expiresIn: -3600 }, 'JwtExpired'],
    ['not yet valid', { notBefore: 3600 }, 'JwtNotYetValid'],
    ['wrong audience', { aud: 'other' }, 'JwtAudienceNotAllowed'],
    ['unknown issuer', { iss: 'https://evil.example.com' }, 'JwtUnknownIssuer'],
  ] as const)('%s', async (_name, o, status) => {
    const d = await run(
      filterFor(rules()),
      store(),
      bearer(await sign(rsa, { iss: ISS, sub: 's', aud: 'api', ...o })),
    );
    expect(outcome(d)).toBe(`deny ${status}`);
  });

  test('within the 60 s clock skew is still valid', async () => {
    const d = await run(
      filterFor(rules()),
      store(),
      bearer(await sign(rsa, { iss: ISS, sub: 's', aud: 'api', expiresIn: -30 })),
    );
    expect(outcome(d)).toBe(`allow ${ISS}/s`);
  });

  test('signed by a key the JWKS does not have, under a known kid: verification fails', async () => {
    const t = await sign(other, { iss: ISS, sub: 's', aud: 'api', header: { kid: 'rsa-1' } });
    expect(outcome(await run(filterFor(rules()), store(), bearer(t)))).toBe('deny JwtVerificationFail');
  });

  test('malformed tokens', async () => {
    const f = filterFor(rules());
    const s = store();
    expect(outcome(await run(f, s, bearer('abc')))).toBe('deny JwtBadFormat');
    expect(outcome(await run(f, s, bearer('a.b.c.d')))).toBe('deny JwtBadFormat');
    expect(outcome(await run(f, s, bearer('!!!.b.c')))).toBe('deny JwtBadFormat');
  });

  test('CORS preflights are not checked', async () => {
    const d = await run(filterFor(rules()), store(), {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app',
        'access-control-request-method': 'POST',
        authorization: 'Bearer junk.junk.junk',
      },
    });
    expect(outcome(d)).toBe('allow (none)');
  });
});

describe('attack tokens: no bypass', () => {
  const rules = (): string => `  - issuer: ${ISS}\n    jwksUri: ${jwks.url}`;

  test('alg none', async () => {
    const t = forge({ alg: 'none', typ: 'JWT' }, { iss: ISS, sub: 'admin' }, '');
    const d = await run(filterFor(rules()), store(), bearer(t + 'x'));
    expect(d.kind).toBe('deny');
    const bare = await run(
      filterFor(rules()),
      store(),
      bearer(forge({ alg: 'none' }, { iss: ISS, sub: 'admin' })),
    );
    expect(outcome(bare)).toBe('deny JwtHeaderNotImplementedAlg');
  });

  test('HS256 signed with the RSA public key as the HMAC secret', async () => {
    const pub = new TextEncoder().encode(JSON.stringify(rsa.jwk));
    const { SignJWT } = await import('jose');
    const t = await new SignJWT({ iss: ISS, sub: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .sign(pub);
    expect(outcome(await run(filterFor(rules()), store(), bearer(t)))).toBe('deny JwksKidAlgMismatch');
  });

  test('tampered payload keeps the signature', async () => {
    const t = await sign(rsa, { iss: ISS, sub: 'user' });
    const [h, , sig] = t.split('.');
    const evil = `${h}.${Buffer.from(JSON.stringify({ iss: ISS, sub: 'admin', exp: 9999999999 })).toString('base64url')}.${sig}`;
    expect(outcome(await run(filterFor(rules()), store(), bearer(evil)))).toBe('deny JwtVerificationFail');
  });

  test('hostile kids: unknown, huge, traversal, not a string', async () => {
    const f = filterFor(rules());
    const s = store({ unknownKidFloorMs: 60_000 });
    for (const kid of ['nope', 'x'.repeat(10_000), '../../etc/passwd', '"; DROP']) {
      const t = await sign(other, { iss: ISS, sub: 's', header: { kid } });
      expect(outcome(await run(f, s, bearer(t)))).toBe('deny JwksKidAlgMismatch');
    }
    const numeric = forge({ alg: 'RS256', kid: 7 }, { iss: ISS });
    expect(outcome(await run(f, s, bearer(numeric)))).toBe('deny JwtHeaderBadKid');
  });

  test('a flood of unknown kids fetches the JWKS at most once per floor', async () => {
    const f = filterFor(rules());
    const s = store({ unknownKidFloorMs: 60_000 });
    await run(f, s, bearer(await sign(rsa, { iss: ISS, sub: 's' })));
    const before = jwks.hits();
    for (let i = 0; i < 50; i++)
      await run(f, s, bearer(await sign(other, { iss: ISS, sub: 's', header: { kid: `k${i}` } })));
    expect(jwks.hits() - before).toBeLessThanOrEqual(1);
  });

  test('a good token beside a bad one in two locations fails', async () => {
    const good = await sign(rsa, { iss: ISS, sub: 's' });
    const d = await run(filterFor(rules()), store(), {
      headers: { authorization: `Bearer ${good}` },
      query: 'access_token=bad.bad.bad',
    });
    expect(d.kind).toBe('deny');
  });

  test('a 100 KiB token is refused without trouble', async () => {
    const big = forge({ alg: 'RS256', kid: 'rsa-1' }, { iss: ISS, pad: 'x'.repeat(100 * 1024) });
    expect(outcome(await run(filterFor(rules()), store(), { query: `access_token=${big}` }))).toBe(
      'deny JwtVerificationFail',
    );
  });
});

describe('RA-2 locations and RA-7 outputs', () => {
  test('fromHeaders with a prefix, fromParams, fromCookies replace the defaults', async () => {
    const f = filterFor(`  - issuer: ${ISS}
    jwks: '${jwksOf(rsa)}'
    fromHeaders: [{name: x-jwt, prefix: "Token "}]
    fromParams: [jwt]
    fromCookies: [session]`);
    const s = store();
    const t = await sign(rsa, { iss: ISS, sub: 's' });
    expect(outcome(await run(f, s, { headers: { 'x-jwt': `Token ${t}` } }))).toBe(`allow ${ISS}/s`);
    expect(outcome(await run(f, s, { query: `jwt=${t}` }))).toBe(`allow ${ISS}/s`);
    expect(outcome(await run(f, s, { headers: { cookie: `a=b; session=${t}` } }))).toBe(`allow ${ISS}/s`);
    // The default Authorization header is no longer a location: the token there is not seen.
    expect(outcome(await run(f, s, bearer(t)))).toBe('allow (none)');
    // Envoy's extractJWT: after the prefix, skip to the first run of base64url characters and
    // dots, and take that run (what follows it is not part of the token).
    expect(outcome(await run(f, s, { headers: { 'x-jwt': `Token  "${t}", more` } }))).toBe(`allow ${ISS}/s`);
    expect(outcome(await run(f, s, { headers: { 'x-jwt': `Token ${t.slice(0, 20)} ${t.slice(20)}` } }))).toBe(
      'deny JwtBadFormat',
    );
    expect(outcome(await run(f, s, { headers: { 'x-jwt': 'Token  ,;' } }))).toBe('allow (none)');
  });

  test('forwardOriginalToken, outputPayloadToHeader, outputClaimToHeaders (nested), forged outputs removed', async () => {
    const f = filterFor(`  - issuer: ${ISS}
    jwks: '${jwksOf(rsa)}'
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-user, claim: sub}, {header: x-team, claim: org.team}]`);
    const t = await sign(rsa, { iss: ISS, sub: 'alice', claims: { org: { team: 'core' } } });
    const d = await run(f, store(), { headers: { authorization: `Bearer ${t}`, 'x-user': 'forged' } });
    expect(d.kind).toBe('allow');
    if (d.kind !== 'allow') return;
    expect(d.edits!.remove).not.toContain('authorization');
    expect(d.edits!.remove).toEqual(expect.arrayContaining(['x-jwt-payload', 'x-user', 'x-team']));
    expect(Object.fromEntries(d.edits!.set)).toEqual({
      'x-jwt-payload': t.split('.')[1],
      'x-user': 'alice',
      'x-team': 'core',
    });
    // Without a token the forged header is still removed.
    const none = await run(f, store(), { headers: { 'x-user': 'forged' } });
    expect(none.kind === 'allow' && none.edits?.remove).toContain('x-user');
  });

  test('scope is split on spaces for matching', async () => {
    const f = filterFor(`  - issuer: ${ISS}\n    jwks: '${jwksOf(rsa)}'`);
    const d = await run(
      f,
      store(),
      bearer(await sign(rsa, { iss: ISS, sub: 's', claims: { scope: 'read write' } })),
    );
    expect(d.kind === 'allow' && d.auth?.claims['scope']).toEqual(['read', 'write']);
  });

  test('presence: REQUIRED refuses a request without a token (Jwt is missing)', async () => {
    const f = filterFor(`  - issuer: ${ISS}\n    jwks: '${jwksOf(rsa)}'\n    presence: REQUIRED`);
    expect(outcome(await run(f, store(), {}))).toBe('deny JwtMissed');
    expect(outcome(await run(f, store(), bearer(await sign(rsa, { iss: ISS, sub: 's' }))))).toBe(
      `allow ${ISS}/s`,
    );
  });

  test('HS256 with a kty oct key', async () => {
    const h = makeHmacKey('hmac-1');
    const f = filterFor(`  - issuer: ${ISS}\n    jwks: '${jwksOf(h)}'`);
    expect(outcome(await run(f, store(), bearer(await sign(h, { iss: ISS, sub: 's' }))))).toBe(
      `allow ${ISS}/s`,
    );
  });

  test('two issuers on the default location: each token goes to its provider', async () => {
    const f = filterFor(
      `  - issuer: ${ISS}\n    jwks: '${jwksOf(rsa)}'\n  - issuer: https://b.example.com\n    jwks: '${jwksOf(ec)}'`,
    );
    const s = store();
    expect(outcome(await run(f, s, bearer(await sign(ec, { iss: 'https://b.example.com', sub: 'x' }))))).toBe(
      'allow https://b.example.com/x',
    );
    expect(outcome(await run(f, s, bearer(await sign(ec, { iss: 'https://c.example.com', sub: 'x' }))))).toBe(
      'deny JwtUnknownIssuer',
    );
    expect(
      outcome(await run(f, s, bearer(await sign(other, { iss: ISS, sub: 'x', header: { kid: 'rsa-1' } })))),
    ).toBe('deny JwtVerificationFail');
  });
});

describe('RA-6 JWKS fetching', () => {
  test('rotation: a new kid is fetched on demand', async () => {
    const server = await startJwksServer(rsa);
    try {
      const f = filterFor(`  - issuer: ${ISS}\n    jwksUri: ${server.url}`);
      const s = store({ unknownKidFloorMs: 0 });
      expect(outcome(await run(f, s, bearer(await sign(rsa, { iss: ISS, sub: 's' }))))).toBe(
        `allow ${ISS}/s`,
      );
      server.setKeys(rsa, ec);
      expect(outcome(await run(f, s, bearer(await sign(ec, { iss: ISS, sub: 'e' }))))).toBe(`allow ${ISS}/e`);
    } finally {
      await server.close();
    }
  });

  test('never fetched (unreachable): tokens fail closed, tokenless requests pass', async () => {
    const server = await startJwksServer(rsa);
    const url = server.url;
    await server.close();
    const f = filterFor(`  - issuer: ${ISS}\n    jwksUri: ${url}`);
    const s = store();
    expect(outcome(await run(f, s, bearer(await sign(rsa, { iss: ISS, sub: 's' }))))).toBe(
      'deny JwksKidAlgMismatch',
    );
    expect(outcome(await run(f, s, {}))).toBe('allow (none)');
  });

  test('slow JWKS: the fetch times out (the rule timeout) and the token fails closed', async () => {
    const server = await startJwksServer(rsa);
    server.setMode('hang');
    try {
      const f = filterFor(`  - issuer: ${ISS}\n    jwksUri: ${server.url}\n    timeout: 300ms`);
      const started = Date.now();
      const d = await run(f, store(), bearer(await sign(rsa, { iss: ISS, sub: 's' })));
      expect(outcome(d)).toBe('deny JwksKidAlgMismatch');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await server.close();
    }
  });

  test('an outage after a good fetch keeps serving the cached keys', async () => {
    const server = await startJwksServer(rsa);
    try {
      const f = filterFor(`  - issuer: ${ISS}\n    jwksUri: ${server.url}`);
      const s = store({ refreshMs: 50, retryMs: 20 });
      expect(outcome(await run(f, s, bearer(await sign(rsa, { iss: ISS, sub: 'a' }))))).toBe(
        `allow ${ISS}/a`,
      );
      server.setMode('error');
      const hits = server.hits();
      await until(() => server.hits() > hits + 1, { what: 'JWKS refetched after the outage' });
      expect(s.status()[0]!.failures).toBeGreaterThan(0);
      expect(outcome(await run(f, s, bearer(await sign(rsa, { iss: ISS, sub: 'b' }))))).toBe(
        `allow ${ISS}/b`,
      );
    } finally {
      await server.close();
    }
  });
});

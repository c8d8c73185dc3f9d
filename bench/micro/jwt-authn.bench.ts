/**
 * jwt_authn per request (dataplane/filters/jwt-authn.ts runJwtAuthn) for a token verified before:
 * the security bench's RequestAuthentication (inline key set here, so nothing is fetched) and an
 * RS256 token of its size in `Authorization: Bearer`. Finding the token, the remembered
 * verification and the claim checks: what every request with the same token pays.
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createJwksStore } from '../../src/dataplane/filters/jwks-store.ts';
import { runJwtAuthn } from '../../src/dataplane/filters/jwt-authn.ts';
import { admitRequest, undecidedRequest } from '../../src/snapshot/route-request.ts';
import type { JwtAuthnFilter } from '../../src/snapshot/types.ts';
import { BENCH_REQUEST, generateConfig, render } from '../configs/generate.ts';
import { AUDIENCE, ISSUER } from '../configs/security.ts';
import { compileBenchYaml } from '../lib/compile-yaml.ts';
import { bench } from './timing.ts';

const { privateKey, publicKey } = await generateKeyPair('RS256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const token = await new SignJWT({})
  .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
  .setIssuer(ISSUER)
  .setSubject('user-0')
  .setAudience(AUDIENCE)
  .setIssuedAt()
  .setExpirationTime('24h')
  .sign(privateKey);

const text =
  generateConfig('one-rule', { gatewayPort: 8080, upstreamPort: 18081, decoyPort: 9 }).text +
  '---\n' +
  render([
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'bench-jwt', namespace: 'istio-system' },
      spec: { jwtRules: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: JSON.stringify({ keys: [jwk] }) }] },
    },
  ]);
const snapshot = compileBenchYaml(text);
const routed = undecidedRequest('GET', 'http', 8080, {});
if (admitRequest(routed, snapshot, BENCH_REQUEST.path, `${BENCH_REQUEST.host}:8080`, '') !== null)
  throw new Error('refused');
const filter = routed.table?.filters?.find((f): f is JwtAuthnFilter => f.kind === 'jwt-authn');
if (filter === undefined) throw new Error('no jwt_authn filter');

const store = createJwksStore({ offline: true });
const req = {
  method: 'GET',
  query: '',
  headers: { host: BENCH_REQUEST.host, 'x-tenant': 'bench', authorization: `Bearer ${token}` },
};
// The first sight of the token verifies its signature (asynchronously); later ones are remembered.
const first = await runJwtAuthn(req, filter, store, Date.now());
if (first.kind !== 'allow' || first.auth === null) throw new Error(`token refused: ${first.note}`);
const now = Date.now();
bench(`runJwtAuthn, the same ${token.length}-byte RS256 token`, () => {
  const d = runJwtAuthn(req, filter, store, now);
  if (d instanceof Promise || d.kind !== 'allow') throw new Error('not allowed at once');
  return d;
});
store.close();

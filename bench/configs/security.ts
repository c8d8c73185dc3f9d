/**
 * Configs of the security benchmark (bench/security.ts): the e2e bench's one-rule config, alone
 * (no policy) or with the policies of one leg added, all in the root namespace so they apply to
 * the gateway:
 *   jwt       RequestAuthentication (jwksUri on the loopback helper server) + ALLOW on
 *             `requestPrincipals: ["*"]`;
 *   deny50    a DENY AuthorizationPolicy of 50 rules, one path each (exact, prefix, suffix and
 *             `{*}` templates, 10 of each kind), none of which matches the benchmark request;
 *   extauthz  CUSTOM for `/bench/*` with an `envoyExtAuthzHttp` provider in MeshConfig and a
 *             STATIC ServiceEntry for the loopback authorizer.
 */
import { generateConfig, render, serviceEntryDoc, type GenerateOptions } from './generate.ts';

export type PolicyShape = 'none' | 'jwt' | 'deny50' | 'extauthz';

export const ISSUER = 'https://issuer.bench.test';
export const AUDIENCE = 'bench-api';
export const AUTHZ_HOST = 'authz.bench.internal';
export const AUTHZ_PATH_PREFIX = '/check';
const ROOT_NS = 'istio-system';

export interface SecurityOptions extends GenerateOptions {
  /** The loopback helper server: key set and authorizer (bench/lib/auth-server.ts). */
  readonly authPort: number;
}

/** The 50 DENY paths: exact, prefix, suffix and template, none matching GET /bench/item/42. */
export function denyPaths(): string[] {
  const paths: string[] = [];
  for (let k = 0; k < 50; k++) {
    switch (k % 5) {
      case 0:
        paths.push(`/admin/panel-${k}`);
        break;
      case 1:
        paths.push(`/internal-${k}/*`);
        break;
      case 2:
        paths.push(`*/debug-${k}`);
        break;
      case 3:
        // shares the request's first segment, so the template's regex runs past it
        paths.push(`/bench/{*}/private-${k}`);
        break;
      default:
        // differs from the request path only after /bench/item/
        paths.push(`/bench/item/${1000 + k}`);
    }
  }
  return paths;
}

/** A DENY AuthorizationPolicy in the root namespace with one rule per path. */
export function denyPolicyDoc(paths: readonly string[]): unknown {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'deny-paths', namespace: ROOT_NS },
    spec: { action: 'DENY', rules: paths.map((p) => ({ to: [{ operation: { paths: [p] } }] })) },
  };
}

function policyDocs(shape: PolicyShape, opts: SecurityOptions): unknown[] {
  const meta = (name: string): unknown => ({ name, namespace: ROOT_NS });
  switch (shape) {
    case 'none':
      return [];
    case 'jwt':
      return [
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'RequestAuthentication',
          metadata: meta('bench-jwt'),
          spec: {
            jwtRules: [
              {
                issuer: ISSUER,
                jwksUri: `http://127.0.0.1:${opts.authPort}/jwks.json`,
                audiences: [AUDIENCE],
              },
            ],
          },
        },
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'AuthorizationPolicy',
          metadata: meta('require-jwt'),
          spec: { action: 'ALLOW', rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
        },
      ];
    case 'deny50':
      return [denyPolicyDoc(denyPaths())];
    case 'extauthz':
      return [
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'AuthorizationPolicy',
          metadata: meta('ext-authz'),
          spec: {
            action: 'CUSTOM',
            provider: { name: 'bench-authz' },
            rules: [{ to: [{ operation: { paths: ['/bench/*'] } }] }],
          },
        },
        serviceEntryDoc('bench-authz', AUTHZ_HOST, opts.authPort),
        {
          apiVersion: 'sluice.dev/v1alpha1',
          kind: 'MeshConfig',
          metadata: meta('mesh'),
          spec: {
            extensionProviders: [
              {
                name: 'bench-authz',
                envoyExtAuthzHttp: {
                  service: AUTHZ_HOST,
                  port: opts.authPort,
                  pathPrefix: AUTHZ_PATH_PREFIX,
                  timeout: '2s',
                },
              },
            ],
          },
        },
      ];
  }
}

/** The one-rule config with the shape's policies added (YAML text). */
export function securityConfig(shape: PolicyShape, opts: SecurityOptions): string {
  const base = generateConfig('one-rule', opts).text;
  const extra = policyDocs(shape, opts);
  return extra.length === 0 ? base : `${base}---\n${render(extra)}`;
}

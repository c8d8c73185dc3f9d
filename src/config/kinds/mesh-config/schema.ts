import { z } from 'zod';
import type { MeshConfigSpec } from '../../../model/sluice.ts';
import { duration, str, uint32 } from '../schema-common.ts';
import { redisUrlProblem, urlHasPassword } from '../../../util/redis-url.ts';
import { redisNodeProblem } from '../../../util/redis-client.ts';

const record = z.record(z.string(), z.unknown());

const redisNodes = z
  .array(
    str.superRefine((node, ctx) => {
      const problem = redisNodeProblem(node);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    }),
  )
  .min(1);

export const MeshConfigSpecSchema: z.ZodType<MeshConfigSpec> = z.strictObject({
  outboundTrafficPolicy: z
    .strictObject({ mode: z.enum(['ALLOW_ANY', 'REGISTRY_ONLY']).optional() })
    .optional(),
  accessLogFile: str.optional(),
  accessLogEncoding: z.enum(['TEXT', 'JSON']).optional(),
  accessLogFormat: str.optional(),
  gatewayTopology: z
    .strictObject({ numTrustedProxies: uint32.optional(), proxyProtocol: record.optional() })
    .optional(),
  pathNormalization: z
    .strictObject({
      normalization: z
        .enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'])
        .optional(),
    })
    .optional(),
  extensionProviders: z.array(record).optional(),
  defaultHttpRetryPolicy: record.optional(),
  rootNamespace: str.optional(),
  // Strict on purpose: a typo here would silently fall back to file coordination.
  redis: z
    .strictObject({
      url: str
        .superRefine((url, ctx) => {
          const problem = redisUrlProblem(url);
          if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
      sentinel: z.strictObject({ masterName: str.min(1), nodes: redisNodes }).optional(),
      cluster: z.strictObject({ nodes: redisNodes }).optional(),
      username: str.min(1).optional(),
      passwordFile: str.min(1).optional(),
      passwordEnv: str.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
      tls: z
        .strictObject({
          caCertificates: str.min(1).optional(),
          serverName: str.min(1).optional(),
          insecureSkipVerify: z.boolean().optional(),
        })
        .optional(),
      keyPrefix: str.optional(),
      timeout: duration.optional(),
    })
    .superRefine((r, ctx) => {
      const modes = (['url', 'sentinel', 'cluster'] as const).filter((k) => r[k] !== undefined);
      if (modes.length !== 1)
        ctx.addIssue({
          code: 'custom',
          message:
            modes.length === 0
              ? 'one of url, sentinel and cluster is required'
              : `url, sentinel and cluster exclude one another; got ${modes.join(' and ')}`,
        });
      if (r.passwordFile !== undefined && r.passwordEnv !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['passwordEnv'],
          message: 'passwordFile and passwordEnv exclude one another',
        });
      if (
        (r.passwordFile !== undefined || r.passwordEnv !== undefined) &&
        r.url !== undefined &&
        urlHasPassword(r.url)
      )
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: 'the URL holds a password and passwordFile/passwordEnv names another; keep one',
        });
      // The scheme is what turns TLS on for a URL: a tls block beside redis:// would leave the
      // reader guessing which one wins.
      if (r.tls !== undefined && r.url !== undefined && !r.url.startsWith('rediss://'))
        ctx.addIssue({
          code: 'custom',
          path: ['tls'],
          message: 'tls applies to rediss:// URLs (redis:// is plaintext); use rediss:// or remove tls',
        });
      if (r.tls?.insecureSkipVerify === true && r.tls.caCertificates !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['tls', 'insecureSkipVerify'],
          message:
            'insecureSkipVerify accepts any certificate, so caCertificates would never be used; keep one',
        });
    })
    .optional(),
  acme: z
    .strictObject({
      issuers: z
        .array(
          z.strictObject({
            name: str.min(1),
            directoryUrl: z.url({ protocol: /^https?$/ }),
            email: str.optional(),
            contact: z.array(str).optional(),
            accountKeySecret: str.min(1).optional(),
            accountKeyFile: str.min(1).optional(),
            eab: z.strictObject({ kid: str.min(1), hmacKey: str.min(1) }).optional(),
            caBundle: str.min(1).optional(),
            challenge: z.enum(['http-01', 'tls-alpn-01']).optional(),
            keyType: z.enum(['ECDSA', 'RSA']).optional(),
          }),
        )
        .superRefine((issuers, ctx) => {
          const seen = new Set<string>();
          issuers.forEach((issuer, i) => {
            if (seen.has(issuer.name))
              ctx.addIssue({
                code: 'custom',
                path: [i, 'name'],
                message: `duplicate issuer name ${JSON.stringify(issuer.name)}`,
              });
            seen.add(issuer.name);
          });
        })
        .optional(),
    })
    .optional(),
  egressProxy: z
    .strictObject({ port: z.int().min(1).max(65535).optional(), learn: z.boolean().optional() })
    .optional(),
  h2UpgradePolicy: z.enum(['DO_NOT_UPGRADE', 'UPGRADE']).optional(),
  tracing: z
    .strictObject({
      provider: str.optional(),
      randomSamplingPercentage: z.number().min(0).max(100).optional(),
    })
    .optional(),
  shadowHostSuffix: z.boolean().optional(),
});

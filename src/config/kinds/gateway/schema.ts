import { z } from 'zod';
import type { GatewaySpec } from '../../../model/networking.ts';
import { bool, msg, protocol, str, stringMap, strList, uint32 } from '../schema-common.ts';

const TLS_MODES = [
  'PASSTHROUGH',
  'SIMPLE',
  'MUTUAL',
  'AUTO_PASSTHROUGH',
  'ISTIO_MUTUAL',
  'OPTIONAL_MUTUAL',
] as const;
export const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

export const ServerTlsSettingsSchema = msg({
  httpsRedirect: bool.optional(),
  mode: z.enum(TLS_MODES).optional(),
  serverCertificate: str.optional(),
  privateKey: str.optional(),
  caCertificates: str.optional(),
  caCrl: str.optional(),
  credentialName: str.optional(),
  credentialNames: strList.optional(),
  caCertCredentialName: str.optional(),
  tlsCertificates: z
    .array(
      msg({ serverCertificate: str.optional(), privateKey: str.optional(), caCertificates: str.optional() }),
    )
    .optional(),
  subjectAltNames: strList.optional(),
  verifyCertificateSpki: strList.optional(),
  verifyCertificateHash: strList.optional(),
  minProtocolVersion: z.enum(TLS_VERSIONS).optional(),
  maxProtocolVersion: z.enum(TLS_VERSIONS).optional(),
  cipherSuites: strList.optional(),
});

export const GatewayPortSchema = msg({
  number: uint32,
  protocol,
  name: str,
  targetPort: uint32.optional(),
});

export const GatewaySpecSchema: z.ZodType<GatewaySpec> = msg({
  servers: z
    .array(
      msg({
        port: GatewayPortSchema,
        bind: str.optional(),
        hosts: strList,
        tls: ServerTlsSettingsSchema.optional(),
        defaultEndpoint: str.optional(),
        name: str.optional(),
      }),
    )
    .optional()
    .transform((s) => s ?? []),
  selector: stringMap.optional(),
});

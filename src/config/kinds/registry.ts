import { z } from 'zod';
import type { Kind } from '../../model/resource.ts';
import { metadata, type Metadata } from './schema-common.ts';
import { AuthorizationPolicySpecSchema } from './authorization-policy/schema.ts';
import { DestinationRuleSpecSchema } from './destination-rule/schema.ts';
import { EndpointSliceDocumentSchema, endpointSliceSpec } from './endpoint-slice/schema.ts';
import { GatewaySpecSchema } from './gateway/schema.ts';
import { IngressClassSpecSchema, IngressSpecSchema } from './ingress/schema.ts';
import { MeshConfigSpecSchema } from './mesh-config/schema.ts';
import { NamespaceSpecSchema } from './namespace/schema.ts';
import { PodSpecSchema } from './pod/schema.ts';
import { RateLimitPolicySpecSchema } from './rate-limit-policy/schema.ts';
import { RequestAuthenticationSpecSchema } from './request-authentication/schema.ts';
import { SecretDocumentSchema, secretSpec } from './secret/schema.ts';
import { ServiceSpecSchema } from './service/schema.ts';
import { ServiceEntrySpecSchema } from './service-entry/schema.ts';
import { VirtualServiceSpecSchema } from './virtual-service/schema.ts';

/** What a kind schema yields from a whole document (paths in its issues start at the document root). */
export interface ParsedObject {
  readonly metadata: Metadata;
  readonly spec: unknown;
}

export interface KindDef {
  readonly kind: Kind;
  /** group/version strings served for this kind (Istio serves every version with one schema). */
  readonly apiVersions: readonly string[];
  /** Cluster-scoped kinds have no namespace. */
  readonly namespaced: boolean;
  /** Secrets: diagnostics never show values. */
  readonly secret: boolean;
  readonly schema: z.ZodType<ParsedObject>;
}

const NETWORKING = ['networking.istio.io/v1alpha3', 'networking.istio.io/v1beta1', 'networking.istio.io/v1'];
const SECURITY = ['security.istio.io/v1beta1', 'security.istio.io/v1'];
const SLUICE = ['sluice.dev/v1alpha1'];

const envelope = { apiVersion: z.string(), kind: z.string(), metadata, status: z.unknown().optional() };

/** Istio objects: strict at the top level too; `spec` required unless an empty spec means something. */
function istio(spec: z.ZodType<unknown>, specRequired: boolean): z.ZodType<ParsedObject> {
  return z.strictObject({
    ...envelope,
    spec: specRequired ? spec : spec.nullish().transform((s) => s ?? {}),
  }) as z.ZodType<ParsedObject>;
}

function kube(spec: z.ZodType<unknown>): z.ZodType<ParsedObject> {
  return z.looseObject({ ...envelope, spec }) as unknown as z.ZodType<ParsedObject>;
}

function def(
  kind: Kind,
  apiVersions: readonly string[],
  schema: z.ZodType<ParsedObject>,
  extra: Partial<KindDef> = {},
): KindDef {
  return { kind, apiVersions, namespaced: true, secret: false, schema, ...extra };
}

export const KINDS: readonly KindDef[] = [
  def('Gateway', NETWORKING, istio(GatewaySpecSchema, true)),
  def('VirtualService', NETWORKING, istio(VirtualServiceSpecSchema, true)),
  def('DestinationRule', NETWORKING, istio(DestinationRuleSpecSchema, true)),
  def('ServiceEntry', NETWORKING, istio(ServiceEntrySpecSchema, true)),
  def('RequestAuthentication', SECURITY, istio(RequestAuthenticationSpecSchema, false)),
  def('AuthorizationPolicy', SECURITY, istio(AuthorizationPolicySpecSchema, false)),
  def(
    'Secret',
    ['v1'],
    SecretDocumentSchema.transform((d) => ({ metadata: d.metadata, spec: secretSpec(d) })),
    { secret: true },
  ),
  def('Service', ['v1'], kube(ServiceSpecSchema.optional().transform((s) => s ?? { ports: [] }))),
  def(
    'EndpointSlice',
    ['discovery.k8s.io/v1'],
    EndpointSliceDocumentSchema.transform((d) => ({ metadata: d.metadata, spec: endpointSliceSpec(d) })),
  ),
  def('Ingress', ['networking.k8s.io/v1'], kube(IngressSpecSchema.optional().transform((s) => s ?? {}))),
  def('IngressClass', ['networking.k8s.io/v1'], kube(IngressClassSpecSchema), { namespaced: false }),
  def('Namespace', ['v1'], kube(NamespaceSpecSchema), { namespaced: false }),
  def('Pod', ['v1'], kube(PodSpecSchema)),
  def('MeshConfig', SLUICE, istio(MeshConfigSpecSchema, false)),
  def('RateLimitPolicy', SLUICE, istio(RateLimitPolicySpecSchema, true)),
];

const BY_KEY = new Map<string, KindDef>();
for (const d of KINDS) for (const v of d.apiVersions) BY_KEY.set(`${v} ${d.kind}`, d);

export function findKind(apiVersion: string, kind: string): KindDef | undefined {
  return BY_KEY.get(`${apiVersion} ${kind}`);
}

/** `networking.istio.io/v1` → `networking.istio.io`; the core group (`v1`) is ''. */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

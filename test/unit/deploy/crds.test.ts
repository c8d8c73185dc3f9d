/**
 * deploy/kubernetes/base/sluice-crds.yaml is sluice's own kinds as CustomResourceDefinitions whose
 * structural schemas come from the same zod schemas the loader validates with, so `kubectl apply`
 * refuses what sluice would refuse and the two cannot drift: the file is rendered here and
 * compared (update with `vitest run test/unit/deploy -u` and review the diff).
 *
 * deploy/kubernetes/istio-crds/crds.yaml (Istio's kinds, for clusters without Istio) is rendered
 * the same way from the loader's Istio spec schemas: a reduced structural schema typing every field
 * sluice reads (not istiod's full schemas), with unknown fields preserved at every level, so the API
 * server never prunes a field sluice would warn about or refuse. Their `status` declares the two
 * lists sluice writes by server-side apply as map lists (conditions by `type`, validationMessages
 * by `documentationUrl`), so each field manager owns its own entries.
 */
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { z } from 'zod';
import { AuthorizationPolicySpecSchema } from '../../../src/config/kinds/authorization-policy/schema.ts';
import { DestinationRuleSpecSchema } from '../../../src/config/kinds/destination-rule/schema.ts';
import { GatewaySpecSchema } from '../../../src/config/kinds/gateway/schema.ts';
import { MeshConfigSpecSchema } from '../../../src/config/kinds/mesh-config/schema.ts';
import { RequestAuthenticationSpecSchema } from '../../../src/config/kinds/request-authentication/schema.ts';
import { ServiceEntrySpecSchema } from '../../../src/config/kinds/service-entry/schema.ts';
import { VirtualServiceSpecSchema } from '../../../src/config/kinds/virtual-service/schema.ts';
import { CONFIG_KINDS } from '../../../src/providers/kubernetes/kinds.ts';

type Json = Record<string, unknown>;

const KEEP = [
  'type',
  'description',
  'enum',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
];

/**
 * JSON Schema → a Kubernetes structural schema: every node typed; unions, open maps and
 * unknowns kept as `x-kubernetes-preserve-unknown-fields`; `additionalProperties: false` (not
 * allowed beside `properties`) dropped; patterns dropped (ECMAScript regexes, not Kubernetes').
 */
function structural(node: Json, keepUnknown = false): Json {
  if (node.const !== undefined)
    return structural({ ...node, enum: [node.const], type: typeof node.const }, keepUnknown);
  if (node.anyOf !== undefined || node.oneOf !== undefined || node.type === undefined)
    return { 'x-kubernetes-preserve-unknown-fields': true };
  const out: Json = {};
  for (const k of KEEP) if (node[k] !== undefined) out[k] = node[k];
  if (node.type === 'object') {
    const props = node.properties as Record<string, Json> | undefined;
    // A loose object (any extra field, as the loader reports unknown fields itself) keeps its
    // properties when unknown fields are preserved anyway.
    const open = typeof node.additionalProperties === 'object';
    const loose = open && Object.keys(node.additionalProperties as Json).length === 0;
    if (props === undefined || (open && !(keepUnknown && loose)))
      return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    out.properties = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, structural(v, keepUnknown)]),
    );
    if (Array.isArray(node.required) && node.required.length > 0) out.required = node.required;
    if (keepUnknown) out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  if (node.type === 'array') out.items = structural((node.items as Json | undefined) ?? {}, keepUnknown);
  return out;
}

const specOf = (schema: z.ZodType): Json =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;

function crd(kind: string, plural: string, spec: Json): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.sluice.dev`, labels: { 'app.kubernetes.io/part-of': 'sluice' } },
    spec: {
      group: 'sluice.dev',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), categories: ['sluice'] },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec,
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  };
}

/** A list of objects owned entry by entry under server-side apply, each named by `key`. */
const mapList = (key: string): Json => ({
  type: 'array',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': [key],
  items: {
    type: 'object',
    required: [key],
    properties: { [key]: { type: 'string' } },
    'x-kubernetes-preserve-unknown-fields': true,
  },
});

const ISTIO_STATUS = {
  type: 'object',
  properties: { conditions: mapList('type'), validationMessages: mapList('documentationUrl') },
  'x-kubernetes-preserve-unknown-fields': true,
};

const ISTIO_SPECS: Readonly<Record<string, { schema: z.ZodType; shortName: string }>> = {
  Gateway: { schema: GatewaySpecSchema, shortName: 'gw' },
  VirtualService: { schema: VirtualServiceSpecSchema, shortName: 'vs' },
  DestinationRule: { schema: DestinationRuleSpecSchema, shortName: 'dr' },
  ServiceEntry: { schema: ServiceEntrySpecSchema, shortName: 'se' },
  RequestAuthentication: { schema: RequestAuthenticationSpecSchema, shortName: 'ra' },
  AuthorizationPolicy: { schema: AuthorizationPolicySpecSchema, shortName: 'ap' },
};

export function renderIstioCrds(): string {
  return CONFIG_KINDS.filter((k) => k.group.endsWith('.istio.io'))
    .map((k) => {
      const { schema, shortName } = ISTIO_SPECS[k.kind]!;
      const openAPIV3Schema = {
        type: 'object',
        properties: { spec: structural(specOf(schema), true), status: ISTIO_STATUS },
      };
      return {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${k.plural}.${k.group}`, labels: { 'app.kubernetes.io/part-of': 'sluice' } },
        spec: {
          group: k.group,
          names: {
            kind: k.kind,
            listKind: `${k.kind}List`,
            plural: k.plural,
            singular: k.kind.toLowerCase(),
            shortNames: [shortName],
            categories: ['istio-io', `${k.group.replace(/\./g, '-').replace(/-io$/, '')}-io`],
          },
          scope: 'Namespaced',
          // Every version serves the same schema (one object: written once, as a YAML anchor that
          // kustomize and kubectl expand); the newest is stored.
          versions: k.versions.map((name, i) => ({
            name,
            served: true,
            storage: i === 0,
            subresources: { status: {} },
            schema: { openAPIV3Schema },
          })),
        },
      };
    })
    .map((d) => stringify(d, { lineWidth: 0 }))
    .join('---\n');
}

export function renderSluiceCrds(): string {
  const mesh = structural(
    z.toJSONSchema(MeshConfigSpecSchema, { io: 'input', unrepresentable: 'any' }) as Json,
  );
  // RateLimitPolicy's fields are not read yet: any object is accepted (and warned about by sluice).
  const rateLimit = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return [crd('MeshConfig', 'meshconfigs', mesh), crd('RateLimitPolicy', 'ratelimitpolicies', rateLimit)]
    .map((d) => stringify(d, { lineWidth: 0 }))
    .join('---\n');
}

describe('sluice CRDs', () => {
  it('are rendered from the loader schemas', async () => {
    await expect(
      `# Generated by test/unit/deploy/crds.test.ts from the loader's schemas; do not edit.\n${renderSluiceCrds()}`,
    ).toMatchFileSnapshot('../../../deploy/kubernetes/base/sluice-crds.yaml');
  });

  it("Istio's CRDs are rendered from the loader's Istio spec schemas", async () => {
    await expect(
      `# Istio's CRDs for clusters without Istio, so \`kubectl apply\` accepts Istio objects for sluice.
# Generated by test/unit/deploy/crds.test.ts from the loader's schemas; do not edit. Reduced
# structural schemas: the fields sluice reads, typed, with unknown fields preserved (never pruned:
# sluice warns about or refuses them itself). A cluster with Istio installed already has these,
# with istiod's full schemas, and must not apply this. Each CRD's versions share one schema, written
# once as a YAML anchor.
${renderIstioCrds()}`,
    ).toMatchFileSnapshot('../../../deploy/kubernetes/istio-crds/crds.yaml');
  });

  it('every MeshConfig field is in the CRD schema, typed', () => {
    const [mesh] = parseAllDocuments(renderSluiceCrds()).map((d) => d.toJSON() as Json);
    const spec = (mesh as { spec: { versions: { schema: { openAPIV3Schema: Json } }[] } }).spec.versions[0]!
      .schema.openAPIV3Schema as { properties: { spec: { properties: Record<string, Json> } } };
    const fields = spec.properties.spec.properties;
    const shape = (MeshConfigSpecSchema as unknown as { shape: Record<string, unknown> }).shape;
    expect(Object.keys(fields).sort()).toEqual(Object.keys(shape).sort());
    for (const [name, node] of Object.entries(fields))
      expect(node.type ?? node['x-kubernetes-preserve-unknown-fields'], name).toBeTruthy();
  });
});

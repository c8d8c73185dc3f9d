import { z } from 'zod';
import type { AuthorizationPolicySpec } from '../../../model/security.ts';
import { msg, str, strList } from '../schema-common.ts';
import { PolicyTargetRefSchema, WorkloadSelectorSchema } from '../request-authentication/schema.ts';

const Source = msg({
  principals: strList.optional(),
  notPrincipals: strList.optional(),
  requestPrincipals: strList.optional(),
  notRequestPrincipals: strList.optional(),
  namespaces: strList.optional(),
  notNamespaces: strList.optional(),
  serviceAccounts: strList.optional(),
  notServiceAccounts: strList.optional(),
  ipBlocks: strList.optional(),
  notIpBlocks: strList.optional(),
  remoteIpBlocks: strList.optional(),
  notRemoteIpBlocks: strList.optional(),
  trustDomains: strList.optional(),
  notTrustDomains: strList.optional(),
});

export const OperationSchema = msg({
  hosts: strList.optional(),
  notHosts: strList.optional(),
  ports: strList.optional(),
  notPorts: strList.optional(),
  methods: strList.optional(),
  notMethods: strList.optional(),
  paths: strList.optional(),
  notPaths: strList.optional(),
});

export const ConditionSchema = msg({ key: str, values: strList.optional(), notValues: strList.optional() });

export const AuthorizationPolicySpecSchema: z.ZodType<AuthorizationPolicySpec> = msg({
  selector: WorkloadSelectorSchema.optional(),
  targetRef: PolicyTargetRefSchema.optional(),
  targetRefs: z.array(PolicyTargetRefSchema).optional(),
  rules: z
    .array(
      msg({
        from: z.array(msg({ source: Source.optional() })).optional(),
        to: z.array(msg({ operation: OperationSchema.optional() })).optional(),
        when: z.array(ConditionSchema).optional(),
      }),
    )
    .optional(),
  action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
  provider: msg({ name: str.optional() }).optional(),
});

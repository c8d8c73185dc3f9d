/**
 * The registry of stable error and diagnostic codes. A code is never reused or renamed once
 * released; retire it by moving it to RETIRED_CODES. A unit test checks each code is unique,
 * used somewhere in src/ and documented in docs/errors.md.
 */
export const CODES = {
  // config: documents and schema
  SLUICE_CONFIG_READ: 'a config file or directory could not be read',
  SLUICE_CONFIG_PARSE: 'a document is not valid YAML or JSON',
  SLUICE_CONFIG_SCHEMA: 'a field does not have the shape its kind requires',
  SLUICE_CONFIG_INVALID: 'a resource breaks a rule Istio validation enforces',
  SLUICE_CONFIG_UNSUPPORTED: 'a field is valid Istio but sluice does not implement it',
  SLUICE_CONFIG_DUPLICATE: 'two documents define the same kind, namespace and name',
  SLUICE_CONFIG_UNKNOWN_KIND:
    'a kind or apiVersion in an API group sluice reads is not one it knows (likely misspelt)',
  SLUICE_CONFIG_NOT_APPLICABLE: 'a resource that never applies to this gateway, so it is ignored',
  SLUICE_REGEX_INVALID: 'a regex is not valid RE2 or is too long',
  SLUICE_INGRESS_ANNOTATION:
    'an ingress-nginx annotation or Ingress field sluice does not act on, or with a value it cannot use',
  SLUICE_INGRESS_REFUSED:
    'an Ingress carries raw nginx configuration (a *-snippet annotation) and is refused',
  // cross-resource
  SLUICE_REF_NOT_FOUND: 'a resource refers to another that does not exist',
  SLUICE_PORT_CONFLICT: 'two Gateway servers claim one port with conflicting protocols',
  SLUICE_CONFIG_EMPTY: 'a change would leave no Gateway server bound, and was refused',
  SLUICE_HOST_CONFLICT: 'the same host is served twice on one TLS port',
  SLUICE_HOST_NOT_IN_GATEWAY: 'a VirtualService host is not served by the Gateway it binds to',
  SLUICE_NO_ENDPOINTS: 'a destination host or subset has no known endpoints',
  SLUICE_ROUTE_UNREACHABLE: 'a route can never match because an earlier one always does',
  SLUICE_ROUTE_OVERLAP: 'a route overlaps an earlier one and may never match',
  SLUICE_POLICY_UNENFORCEABLE:
    'a security policy applies to this gateway but sluice cannot enforce it exactly, so the change is refused',
  SLUICE_TLS_CONFIG: 'a TLS setting is missing, contradictory or unusable',
  SLUICE_ANALYSIS: 'an istioctl-analyze style finding about the configuration',
  // kubernetes provider
  SLUICE_KUBE_KIND_NOT_SERVED: 'the API server does not serve a kind sluice watches, so it is skipped',
  SLUICE_KUBE_NO_SERVER: 'the synced Kubernetes state binds no Gateway server; it is applied',
  SLUICE_KUBE_POLICY_KEPT:
    'an invalid or unenforceable security policy from the API; its last good version stays in force',
  SLUICE_KUBE_POLICY_DENY:
    'an invalid or unenforceable security policy from the API with no good version; its scope is denied',
  SLUICE_KUBE_WATCH_FORBIDDEN:
    'the API server refuses a Secret or Pod watch (RBAC); what it would read is left out and the rest applies',
  SLUICE_KUBE_CONFIG: 'no usable Kubernetes credentials (kubeconfig or service account)',
  // process
  SLUICE_CLI_USAGE: 'the command line is not understood',
  SLUICE_LISTEN_FAILED: 'a listener port could not be bound',
  SLUICE_ADMIN_UNREACHABLE: 'a command that asks a running gateway could not reach its admin port',
  SLUICE_INTERNAL: 'a bug: something sluice did not expect',
} as const;

export type Code = keyof typeof CODES;

/** Codes that once existed; never assign them again. */
export const RETIRED_CODES: readonly string[] = [
  // RequestAuthentication and AuthorizationPolicy are enforced now (SLUICE_POLICY_UNENFORCEABLE refuses what cannot be).
  'SLUICE_POLICY_NOT_ENFORCED',
];

/**
 * The Envoy command operators sluice substitutes in VirtualService header values (VS-21), each
 * with whether it takes `(args)`. Envoy refuses a route configuration naming an operator it does
 * not know; sluice refuses one it does not implement, so a value never reaches a client or an
 * upstream half-substituted. upstream/header-template.ts renders exactly these.
 */
export const HEADER_OPERATORS: ReadonlyMap<string, 'none' | 'required'> = new Map([
  ['REQ', 'required'],
  ['START_TIME', 'none'],
  ['PROTOCOL', 'none'],
  ['HOSTNAME', 'none'],
  ['REQUESTED_SERVER_NAME', 'none'],
  ['DOWNSTREAM_REMOTE_ADDRESS', 'none'],
  ['DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', 'none'],
  ['DOWNSTREAM_REMOTE_PORT', 'none'],
  ['DOWNSTREAM_DIRECT_REMOTE_ADDRESS', 'none'],
  ['DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT', 'none'],
  ['DOWNSTREAM_LOCAL_ADDRESS', 'none'],
  ['DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'none'],
  ['DOWNSTREAM_LOCAL_PORT', 'none'],
  ['DOWNSTREAM_TLS_VERSION', 'none'],
  ['DOWNSTREAM_PEER_SUBJECT', 'none'],
  ['DOWNSTREAM_PEER_ISSUER', 'none'],
  ['DOWNSTREAM_PEER_URI_SAN', 'none'],
  ['DOWNSTREAM_PEER_FINGERPRINT_256', 'none'],
  ['UPSTREAM_CLUSTER', 'none'],
  ['UPSTREAM_REMOTE_ADDRESS', 'none'],
  ['RESPONSE_CODE', 'none'],
  ['RESPONSE_FLAGS', 'none'],
  ['ROUTE_NAME', 'none'],
]);

/**
 * undici / socket errors → what Envoy would call them (DP-4, DP-5). local-reply.ts turns the
 * result into status and body; retry.ts decides with the route's retryOn whether to try again.
 */
import { transportFailureReasonOf } from './tls-origination.ts';

/** Envoy %RESPONSE_FLAGS% values sluice sets. */
export type ResponseFlag =
  | '-'
  | 'NR'
  | 'NC'
  | 'UH'
  | 'UF'
  | 'UO'
  | 'UT'
  | 'UC'
  | 'UR'
  | 'UPE'
  | 'URX'
  | 'DC'
  | 'DPE'
  | 'LR'
  | 'FI'
  | 'DI'
  | 'RL'
  | 'UAEX'
  | 'DF';

/** Envoy's order of flags in %RESPONSE_FLAGS% (its flag bits, lowest first), as it joins several. */
const FLAG_ORDER: readonly string[] =
  'LH UH UT LR UR UF UC UO NR DI FI RL UAEX RLSE DC URX SI IH DPE UMSDR RFCF NFCF DT UPE NC OM DF DO'.split(
    ' ',
  );

/** `flags` (comma-joined, '-' = none) with `flag` added in Envoy's order. */
export function withResponseFlag(flags: string, flag: string): string {
  if (flags === '-' || flags === '') return flag;
  const list = flags.split(',');
  if (list.includes(flag)) return flags;
  list.push(flag);
  return list.sort((a, b) => FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b)).join(',');
}

/**
 * Why an attempt failed, in retryOn vocabulary (VS-24): `connect-failure` is covered by the
 * `connect-failure` token, `reset` by `reset` (and `reset-before-request` when nothing was sent),
 * `timeout` is a per-try timeout (retried under `5xx`/`gateway-error`), `protocol` and `internal`
 * are never retried.
 */
export type FailureKind = 'connect-failure' | 'reset' | 'timeout' | 'protocol' | 'internal';

export interface UpstreamFailure {
  readonly flag: ResponseFlag;
  readonly kind: FailureKind;
  /** Which side caused it; `downstream` failures get no reply (the client is gone). */
  readonly source: 'upstream' | 'downstream' | 'internal';
  /** True when some retryOn token can cover it (the policy still decides). */
  readonly retryable: boolean;
  /** Envoy's reset reason text used in the local reply body. */
  readonly resetReason: string;
  readonly status: number;
  /** TLS failures: Envoy's `transport failure reason` (appended to the body, access-logged). */
  readonly transportFailureReason?: string;
}

const CONNECT_FAILURE: UpstreamFailure = {
  flag: 'UF',
  kind: 'connect-failure',
  source: 'upstream',
  retryable: true,
  resetReason: 'remote connection failure',
  status: 503,
};
const CONNECT_TIMEOUT: UpstreamFailure = {
  flag: 'UF',
  kind: 'connect-failure',
  source: 'upstream',
  retryable: true,
  resetReason: 'connection timeout',
  status: 503,
};
const CONNECTION_TERMINATION: UpstreamFailure = {
  flag: 'UC',
  kind: 'reset',
  source: 'upstream',
  retryable: true,
  resetReason: 'connection termination',
  status: 503,
};
const REMOTE_RESET: UpstreamFailure = {
  flag: 'UR',
  kind: 'reset',
  source: 'upstream',
  retryable: true,
  resetReason: 'remote reset',
  status: 503,
};
const PROTOCOL_ERROR: UpstreamFailure = {
  flag: 'UPE',
  kind: 'protocol',
  source: 'upstream',
  retryable: false,
  resetReason: 'protocol error',
  status: 502,
};
const UPSTREAM_TIMEOUT: UpstreamFailure = {
  flag: 'UT',
  kind: 'timeout',
  source: 'upstream',
  retryable: true,
  resetReason: 'upstream request timeout',
  status: 504,
};
const INTERNAL: UpstreamFailure = {
  flag: 'UPE',
  kind: 'internal',
  source: 'internal',
  retryable: false,
  resetReason: 'protocol error',
  status: 502,
};
const DOWNSTREAM_BODY: UpstreamFailure = {
  flag: 'DPE',
  kind: 'internal',
  source: 'downstream',
  retryable: false,
  resetReason: 'downstream protocol error',
  status: 400,
};

export const PER_TRY_TIMEOUT: UpstreamFailure = UPSTREAM_TIMEOUT;

/** The response flags of a failure: URX added when retries were made first, except to a timeout's UT. */
export function failureFlag(f: UpstreamFailure, retried: boolean): string {
  return retried && f.flag !== 'UT' ? f.flag + ',URX' : f.flag;
}

/** An Error with a Node-style `code`, as the upstream connections raise them for classifyUpstreamError. */
export function codedError(message: string, code: string): Error {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: unknown } | null)?.code;
  const tls = transportFailureReasonOf(err);
  // A failed handshake or verification is a connection failure (UF) that says why (DR-8).
  if (tls !== null) return { ...CONNECT_FAILURE, transportFailureReason: tls };
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return CONNECT_FAILURE;
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return CONNECT_TIMEOUT;
    case 'ECONNRESET':
    case 'EPIPE':
      return REMOTE_RESET;
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      // "other side closed" before or during the response; "bad response" is the parser's.
      return (err as Error).message === 'bad response' || (err as Error).message === 'bad upgrade'
        ? PROTOCOL_ERROR
        : CONNECTION_TERMINATION;
    case 'ERR_HTTP2_STREAM_ERROR':
      // RST_STREAM from the upstream ("Stream closed with error code NGHTTP2_…").
      return (err as Error).message.includes('PROTOCOL_ERROR') ? PROTOCOL_ERROR : REMOTE_RESET;
    case 'ERR_HTTP2_SESSION_ERROR':
      // GOAWAY with an error ("Session closed with error code N"); 1 is PROTOCOL_ERROR.
      return (err as Error).message.endsWith(' 1') ? PROTOCOL_ERROR : CONNECTION_TERMINATION;
    case 'ERR_HTTP2_ERROR':
    case 'ERR_HTTP2_INVALID_HEADER_VALUE':
    case 'ERR_HTTP2_INVALID_CONNECTION_HEADERS':
    case 'ERR_INVALID_HTTP_TOKEN':
    case 'ERR_INVALID_CHAR':
      return PROTOCOL_ERROR;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return UPSTREAM_TIMEOUT;
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return PROTOCOL_ERROR;
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return DOWNSTREAM_BODY;
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
      return INTERNAL;
    default:
      // llhttp parse errors of the upstream response (HPE_*) surface as HTTPParserError.
      if (typeof code === 'string' && code.startsWith('HPE_')) return PROTOCOL_ERROR;
      if ((err as Error | null)?.name === 'HTTPParserError') return PROTOCOL_ERROR;
      return CONNECTION_TERMINATION;
  }
}

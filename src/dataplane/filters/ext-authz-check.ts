/**
 * What an ext_authz check sends and what it gets back, shared by the HTTP and gRPC clients.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderNamePattern, PolicyRequest } from '../../snapshot/types.ts';
import type { HeaderEdits } from './filter.ts';

/** What the authorizer is asked about (beyond PolicyRequest). */
export interface CheckInput {
  readonly req: PolicyRequest;
  readonly requestId: string;
  readonly protocol: string;
  /** Body prefix (includeRequestBodyInCheck), null = not sent. */
  readonly body: Buffer | null;
  readonly bodyComplete: boolean;
  /** Wall-clock ms the request arrived. */
  readonly startTimeMs: number;
}

/** The authorizer's answer, already filtered by the provider's header lists. */
export type CheckAnswer =
  | {
      readonly kind: 'allow';
      readonly edits: HeaderEdits | null;
      /** Flat name/value list added to the client's response. */
      readonly responseHeaders: string[] | null;
    }
  | { readonly kind: 'deny'; readonly status: number; readonly headers: string[]; readonly body: Buffer }
  | { readonly kind: 'error'; readonly reason: string };

/** Headers never copied between a client and an authorizer: hop-by-hop, and framing the check sets itself. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'host',
]);

export function patternMatches(list: readonly HeaderNamePattern[], name: string): boolean {
  for (const p of list) {
    if (
      p.kind === 'exact'
        ? name === p.value
        : p.kind === 'prefix'
          ? name.startsWith(p.value)
          : name.endsWith(p.value)
    )
      return true;
  }
  return false;
}

/** A header as a single string (repeats comma-joined), undefined when absent. */
export function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

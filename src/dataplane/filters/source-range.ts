import type { SourceRangeFilter } from '../../snapshot/types.ts';
import type { FilterContext, FilterReply } from './filter.ts';

const FORBIDDEN: FilterReply = {
  status: 403,
  body: Buffer.from('Forbidden'),
  headers: null,
  flag: '-',
  details: 'ingress_source_range_denied',
};

/** nginx `deny` then `allow … deny all`: true when the client address may not pass. */
export function sourceRangeRefuses(f: SourceRangeFilter, remoteIp: string): boolean {
  if (f.denied !== null && f.denied(remoteIp)) return true;
  return f.allowed !== null && !f.allowed(remoteIp);
}

export function runSourceRange(ctx: FilterContext, f: SourceRangeFilter): FilterReply | null {
  return sourceRangeRefuses(f, ctx.remoteIp) ? FORBIDDEN : null;
}

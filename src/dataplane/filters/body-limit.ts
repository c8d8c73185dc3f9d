import type { BodyLimitFilter } from '../../snapshot/types.ts';
import type { FilterContext, FilterReply } from './filter.ts';
import { PAYLOAD_TOO_LARGE, readBodyPrefix } from './read-body.ts';

const TOO_LARGE: FilterReply = {
  status: 413,
  body: PAYLOAD_TOO_LARGE,
  headers: null,
  flag: '-',
  details: 'request_payload_too_large',
};

/** What the body limit decides from the headers alone: too large, fits, or the body must be read. */
export function bodyLimitVerdict(
  f: BodyLimitFilter,
  contentLength: string | undefined,
  chunked: boolean,
): 'too-large' | 'fits' | 'read' {
  if (contentLength !== undefined) {
    const n = Number(contentLength);
    return Number.isFinite(n) && n > f.maxBytes ? 'too-large' : 'fits';
  }
  return chunked ? 'read' : 'fits';
}

/**
 * ingress-nginx's proxy-body-size: a Content-Length over the limit is refused at once; a chunked
 * body is read ahead up to the limit (nginx buffers bodies before proxying) and refused if longer.
 */
export function runBodyLimit(
  ctx: FilterContext,
  f: BodyLimitFilter,
): FilterReply | null | Promise<FilterReply | null> {
  const h = ctx.req.headers;
  const v = bodyLimitVerdict(f, h['content-length'], h['transfer-encoding'] !== undefined);
  if (v === 'too-large') return TOO_LARGE;
  // A body another filter already read ahead is not read again.
  if (v === 'fits' || ctx.bodyPrefix !== null) return null;
  return readBodyPrefix(ctx.req, f.maxBytes).then((b) => {
    if (!b.complete) return TOO_LARGE;
    ctx.bodyPrefix = b.buffer.length > 0 ? b.buffer : null;
    return null;
  });
}

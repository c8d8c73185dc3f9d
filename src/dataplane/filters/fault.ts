/**
 * VS-26: Envoy's fault filter on a route. The delay is rolled first; while it runs nothing is
 * read from the client and nothing reaches an upstream, and a client that leaves ends it. Once
 * the delay is over (or when there is none) the abort is rolled on its own: an abort answers
 * `fault filter abort` with flag FI; otherwise the request goes on to the router, whose route
 * timeout therefore starts after the delay, as in Envoy (fault runs before the router).
 */
import type { FaultFilter } from '../../snapshot/types.ts';
import { rollPerMillion } from '../../util/chance.ts';
import type { FilterContext, FilterReply } from './filter.ts';

const ABORT_BODY = Buffer.from('fault filter abort');

export function runFault(
  ctx: FilterContext,
  f: FaultFilter,
): FilterReply | null | Promise<FilterReply | null> {
  const d = f.delay;
  if (d !== null && rollPerMillion(d.perMillion)) {
    // Envoy sets DI when the delay starts: a client gone during it is logged DI and DC.
    ctx.delayInjected = true;
    return delayed(ctx, d.ms, f);
  }
  return abortOf(f);
}

function delayed(ctx: FilterContext, ms: number, f: FaultFilter): Promise<FilterReply | null> {
  return new Promise((resolve) => {
    const res = ctx.res;
    const onClose = (): void => {
      clearTimeout(timer);
      // The pipeline sees the response destroyed and goes no further.
      resolve(null);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(abortOf(f));
    }, ms);
    res.once('close', onClose);
  });
}

function abortOf(f: FaultFilter): FilterReply | null {
  const a = f.abort;
  if (a === null || !rollPerMillion(a.perMillion)) return null;
  return a.grpcStatus === null
    ? { status: a.httpStatus, body: ABORT_BODY, headers: null, flag: 'FI', details: 'fault_filter_abort' }
    : {
        status: a.httpStatus,
        body: ABORT_BODY,
        headers: null,
        flag: 'FI',
        details: 'fault_filter_abort',
        grpcStatus: a.grpcStatus,
      };
}

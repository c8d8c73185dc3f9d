/**
 * VS-28/VS-29: Envoy's CORS filter on a route (extensions/filters/http/cors/cors_filter.cc).
 *  - No `Origin` (or an empty one): not a CORS request; nothing is added but `Vary: Origin`.
 *  - A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here with
 *    200 when the origin is allowed, or when it is not and `unmatchedPreflights: IGNORE` (then
 *    without access-control-allow-origin); an unmatched preflight otherwise goes upstream.
 *  - Any other request from an allowed origin gets access-control-allow-origin (the origin
 *    itself, never `*`), -allow-credentials and -expose-headers on whatever answers it.
 * sluice adds `Vary: Origin` to every response of a CORS route (Envoy adds none), so a cache
 * between the gateway and browsers never serves one origin's answer to another.
 */
import type { CorsFilter } from '../../snapshot/types.ts';
import { rawHeader } from '../../observability/request-facts.ts';
import type { FilterContext, FilterReply } from './filter.ts';

const VARY = 'vary';
const ORIGIN = 'Origin';

export type CorsVerdict =
  | { readonly kind: 'not-cors' }
  | { readonly kind: 'preflight'; readonly allowed: boolean; readonly answered: boolean }
  | { readonly kind: 'actual'; readonly allowed: boolean };

export function isOriginAllowed(f: CorsFilter, origin: string): boolean {
  if (f.anyOrigin) return true;
  const list = f.allowOrigins;
  for (let i = 0; i < list.length; i++) if (list[i]!.test(origin)) return true;
  return false;
}

/** What the filter does with a request, without doing it (also `sluice explain`). */
export function corsVerdict(
  f: CorsFilter,
  method: string,
  origin: string | null,
  requestMethod: string | null,
): CorsVerdict {
  if (origin === null || origin === '') return { kind: 'not-cors' };
  const allowed = isOriginAllowed(f, origin);
  if (method === 'OPTIONS' && requestMethod !== null && requestMethod !== '')
    return { kind: 'preflight', allowed, answered: allowed || !f.forwardUnmatchedPreflights };
  return { kind: 'actual', allowed };
}

function addResponseHeaders(ctx: FilterContext, list: string[]): void {
  if (ctx.responseHeadersToAdd === null) ctx.responseHeadersToAdd = list;
  else ctx.responseHeadersToAdd.push(...list);
}

export function runCors(ctx: FilterContext, f: CorsFilter): FilterReply | null {
  const raw = ctx.req.rawHeaders;
  const origin = rawHeader(raw, 'origin');
  const method = ctx.method;
  const acrm = method === 'OPTIONS' ? rawHeader(raw, 'access-control-request-method') : null;
  const v = corsVerdict(f, method, origin, acrm);
  if (v.kind === 'preflight' && v.answered) return preflightAnswer(ctx, f, origin!, v.allowed, acrm!);
  const out = [VARY, ORIGIN];
  if (v.kind === 'actual' && v.allowed) {
    out.push('access-control-allow-origin', origin!);
    if (f.allowCredentials) out.push('access-control-allow-credentials', 'true');
    if (f.exposeHeaders !== '') out.push('access-control-expose-headers', f.exposeHeaders);
  }
  addResponseHeaders(ctx, out);
  return null;
}

function preflightAnswer(
  ctx: FilterContext,
  f: CorsFilter,
  origin: string,
  allowed: boolean,
  requestMethod: string,
): FilterReply {
  const h: string[] = [];
  if (allowed) h.push('access-control-allow-origin', origin);
  if (f.allowCredentials) h.push('access-control-allow-credentials', 'true');
  if (f.allowMethods !== '')
    h.push('access-control-allow-methods', f.allowMethods === '*' ? requestMethod : f.allowMethods);
  if (f.allowHeaders !== '') {
    const value =
      f.allowHeaders === '*'
        ? (rawHeader(ctx.req.rawHeaders, 'access-control-request-headers') ?? '')
        : f.allowHeaders;
    // Echoing a preflight that names no headers: Envoy sends the header empty, which browsers read as none.
    if (value !== '') h.push('access-control-allow-headers', value);
  }
  if (f.maxAge !== '') h.push('access-control-max-age', f.maxAge);
  h.push(VARY, ORIGIN);
  return { status: 200, body: null, headers: h, flag: '-', details: 'cors_response', headersOnly: true };
}

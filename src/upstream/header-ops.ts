/**
 * VS-21 header operations on a flat `[name, value, name, value, ...]` list, the shape both
 * undici (request) and ServerResponse.writeHead (response) take. Names in HeaderOps are lowercase.
 */
import type { HeaderOps } from '../snapshot/types.ts';
import type { FinishedRequest } from '../observability/finished-request.ts';
import { renderHeaderValue } from './header-template.ts';

/** `ctx` feeds `%VAR%` values; a value that renders empty sets (or adds) nothing. */
export function applyHeaderOps(headers: string[], ops: HeaderOps, ctx: FinishedRequest): void {
  const remove = ops.remove;
  for (let i = 0; i < remove.length; i++) removeHeader(headers, remove[i]!);
  const set = ops.set;
  for (let i = 0; i < set.length; i++) {
    const op = set[i]!;
    removeHeader(headers, op[0]);
    const v = op[1];
    const value = typeof v === 'string' ? v : renderHeaderValue(v, ctx);
    if (value !== '' || typeof v === 'string') headers.push(op[0], value);
  }
  const add = ops.add;
  for (let i = 0; i < add.length; i++) {
    const op = add[i]!;
    const v = op[1];
    const value = typeof v === 'string' ? v : renderHeaderValue(v, ctx);
    if (value !== '' || typeof v === 'string') headers.push(op[0], value);
  }
}

/** Removes every `name` (lowercase) in place. */
export function removeHeader(headers: string[], name: string): void {
  let w = 0;
  const n = headers.length;
  for (let r = 0; r < n; r += 2) {
    const k = headers[r]!;
    if (k.length === name.length && (k === name || k.toLowerCase() === name)) continue;
    headers[w] = k;
    headers[w + 1] = headers[r + 1]!;
    w += 2;
  }
  headers.length = w;
}

/**
 * Sets each name/value of `extra` (flat list), replacing headers of the same name in `headers`.
 * `vary` is the exception: it lists what the response depends on, so a value is added to the
 * upstream's list (once), never put in its place.
 */
export function replaceHeaders(headers: string[], extra: readonly string[]): void {
  for (let i = 0; i < extra.length; i += 2) {
    const name = extra[i]!;
    if (name === 'vary') continue;
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      if (headers[r]!.toLowerCase() === name) continue;
      headers[w] = headers[r]!;
      headers[w + 1] = headers[r + 1]!;
      w += 2;
    }
    headers.length = w;
  }
  for (let i = 0; i < extra.length; i += 2) {
    if (extra[i] === 'vary') addVary(headers, extra[i + 1]!);
    else headers.push(extra[i]!, extra[i + 1]!);
  }
}

/** Adds `token` to the response's Vary unless one of its Vary headers names it (or is `*`). */
function addVary(headers: string[], token: string): void {
  const lower = token.toLowerCase();
  let first = -1;
  for (let r = 0; r < headers.length; r += 2) {
    if (headers[r]!.toLowerCase() !== 'vary') continue;
    if (first < 0) first = r;
    for (const t of headers[r + 1]!.split(',')) {
      const x = t.trim().toLowerCase();
      if (x === lower || x === '*') return;
    }
  }
  if (first < 0) headers.push('vary', token);
  else headers[first + 1] = headers[first + 1] === '' ? token : headers[first + 1] + ', ' + token;
}

export function hasHeader(headers: readonly string[], name: string): boolean {
  for (let r = 0; r < headers.length; r += 2) {
    const k = headers[r]!;
    if (k.length === name.length && (k === name || k.toLowerCase() === name)) return true;
  }
  return false;
}

/**
 * Route and destination operations in Envoy's order (VS-21): with one destination the route's ops
 * run first and the destination's `set` wins; with several (weighted) the destination's run first.
 */
export function applyRouteAndDestinationOps(
  headers: string[],
  routeOps: HeaderOps | null,
  destOps: HeaderOps | null,
  singleDestination: boolean,
  ctx: FinishedRequest,
): void {
  if (singleDestination) {
    if (routeOps !== null) applyHeaderOps(headers, routeOps, ctx);
    if (destOps !== null) applyHeaderOps(headers, destOps, ctx);
  } else {
    if (destOps !== null) applyHeaderOps(headers, destOps, ctx);
    if (routeOps !== null) applyHeaderOps(headers, routeOps, ctx);
  }
}

/**
 * VS-21 `%VAR%` header values rendered per request, by the same evaluator as the access log
 * (observability/operator-values.ts). A template is turned into getters the first time it is used
 * and cached on the (immutable) template object, so a request pays one WeakMap lookup and the
 * getters; values without operators never come here.
 */
import type { HeaderTemplate, HeaderValue } from '../snapshot/types.ts';
import type { FinishedRequest } from '../observability/finished-request.ts';
import { operatorGetter, type OperatorGetter } from '../observability/operator-values.ts';

const compiled = new WeakMap<HeaderTemplate, readonly (string | OperatorGetter)[]>();
const UNSAFE_IN_VALUE = /[\r\n\0]/;
const UNSAFE_IN_VALUE_ALL = /[\r\n\0]/g;

/** The value to send; '' means the header is left out (Envoy keeps no empty substituted value). */
export function renderHeaderValue(value: HeaderValue, r: FinishedRequest): string {
  if (typeof value === 'string') return value;
  let pieces = compiled.get(value);
  if (pieces === undefined) {
    pieces = value.parts.map((p) => (typeof p === 'string' ? p : operatorGetter(p)));
    compiled.set(value, pieces);
  }
  let out = '';
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    if (typeof p === 'string') out += p;
    else {
      const v = p(r);
      if (v !== null) out += v;
    }
  }
  // Header values may not carry CR, LF or NUL, whatever a client put in the header copied here.
  return UNSAFE_IN_VALUE.test(out) ? out.replaceAll(UNSAFE_IN_VALUE_ALL, '') : out;
}

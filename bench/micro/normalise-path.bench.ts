/** AP-9 path normalisation, per request before routing: clean paths must not allocate. */
import { normalisePath } from '../../src/util/normalise-path.ts';
import { bench } from './timing.ts';

bench('clean /bench/item/42 (BASE)', () => normalisePath('/bench/item/42', 'BASE'));
bench('clean /api/v1/users/123/orders (MERGE_SLASHES)', () =>
  normalisePath('/api/v1/users/123/orders', 'MERGE_SLASHES'),
);
bench('dot segments /a/./b/../c', () => normalisePath('/a/./b/../c', 'BASE'));
bench('encoded /%61dmin/%2e%2e/x', () => normalisePath('/%61dmin/%2e%2e/x', 'BASE'));
bench('slashes //a//b (DECODE_AND_MERGE)', () => normalisePath('//a//b%2Fc', 'DECODE_AND_MERGE_SLASHES'));

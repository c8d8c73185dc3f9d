/** AP-9 path normalisation, per request before routing: clean paths must not allocate. */
import { normalisePath } from '../../src/util/normalise-path.ts';

function bench(name: string, fn: () => unknown, iterations = 2_000_000): void {
  for (let i = 0; i < 100_000; i++) fn();
  const t0 = process.hrtime.bigint();
  let sink: unknown;
  for (let i = 0; i < iterations; i++) sink = fn();
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  process.stdout.write(
    `${name.padEnd(48)} ${ns.toFixed(1).padStart(8)} ns/op${sink === undefined ? ' ' : ''}\n`,
  );
}

bench('clean /bench/item/42 (BASE)', () => normalisePath('/bench/item/42', 'BASE'));
bench('clean /api/v1/users/123/orders (MERGE_SLASHES)', () =>
  normalisePath('/api/v1/users/123/orders', 'MERGE_SLASHES'),
);
bench('dot segments /a/./b/../c', () => normalisePath('/a/./b/../c', 'BASE'));
bench('encoded /%61dmin/%2e%2e/x', () => normalisePath('/%61dmin/%2e%2e/x', 'BASE'));
bench('slashes //a//b (DECODE_AND_MERGE)', () => normalisePath('//a//b%2Fc', 'DECODE_AND_MERGE_SLASHES'));

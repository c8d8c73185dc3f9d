/** The one timing loop of the micro-benchmarks: a warm-up, then ns per call over `iterations`. */
export function bench(name: string, fn: () => unknown, iterations = 1_000_000): void {
  for (let i = 0; i < 100_000; i++) fn();
  const t0 = process.hrtime.bigint();
  let sink: unknown;
  for (let i = 0; i < iterations; i++) sink = fn();
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  process.stdout.write(
    `${name.padEnd(48)} ${ns.toFixed(1).padStart(8)} ns/op${sink === undefined ? ' ' : ''}\n`,
  );
}

import { describe, it } from 'vitest';
import { GATEWAY_CASES } from './cases/gateway.ts';
import { runCase } from './simulate.ts';

describe('simulation: Gateway', () => {
  it.each(GATEWAY_CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => runCase(c));
});

import { describe, it } from 'vitest';
import { VIRTUALSERVICE_CASES, VIRTUALSERVICE_EDGE_CASES } from './cases/virtualservice.ts';
import { runCase } from './simulate.ts';

describe('simulation: VirtualService', () => {
  it.each(VIRTUALSERVICE_CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => runCase(c));
});

describe('simulation: VirtualService edge cases', () => {
  it.each(VIRTUALSERVICE_EDGE_CASES)('$name', (c) => runCase(c));
});
